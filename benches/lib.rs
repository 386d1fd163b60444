//! What the benches of this package share besides their servers
//! (`common/`): the median of interleaved rounds and how many rounds to
//! run. The benches themselves are the `[[bench]]` targets (the comparison
//! of hangup with raw mio and tokio). A package needs a library or a binary
//! to be built by `cargo test`, which then compiles none of the benches'
//! dependencies.

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The lower quartile, median and upper quartile of `v` (sorted in place;
/// each the nearest sample, no interpolation, but the median of an even
/// count, which is the mean of the middle two).
pub fn quartiles(v: &mut [f64]) -> (f64, f64, f64) {
    let med = median(v);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.25), med, at(0.75))
}

/// How many interleaved rounds to run: `HANGUP_ROUNDS`, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("HANGUP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
