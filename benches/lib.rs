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

/// How many interleaved rounds to run: `HANGUP_ROUNDS`, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("HANGUP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
