//! Close-detection latency, opt-in ([`Config::close_latency`](crate::Config::close_latency)):
//! per [`CloseKind`], a histogram of how long each close took to be told
//! once the reactor could know it. For a close seen from a socket event:
//! from the return of the poll that carried it to `on_close`; for a close
//! a timer made: how late the timer fired. Fixed log-scale buckets (about
//! 3 KiB per reactor, no allocation per sample), updated with one relaxed
//! atomic add per close, readable from any thread, merged by adding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::counters::CloseKind;

/// Buckets per kind: bucket 0 holds samples under 1 µs, bucket `b` those
/// in [2^(b-1), 2^b) µs; the last one everything from about 18 minutes.
const BUCKETS: usize = 32;
const KINDS: usize = CloseKind::ALL.len();

/// The bucket of a latency: the number of significant bits of its µs.
fn bucket(d: Duration) -> usize {
    let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
    ((64 - us.leading_zeros()) as usize).min(BUCKETS - 1)
}

/// The upper bound of bucket `b`, in µs.
fn upper_us(b: usize) -> u64 {
    if b == 0 {
        1
    } else {
        1u64 << b
    }
}

/// The histograms the reactor updates (shared with its handles).
#[derive(Debug)]
pub(crate) struct Recorder {
    counts: Vec<AtomicU64>,
    max_us: Vec<AtomicU64>,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            counts: (0..KINDS * BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: (0..KINDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn record(&self, kind: CloseKind, d: Duration) {
        let k = kind.index();
        self.counts[k * BUCKETS + bucket(d)].fetch_add(1, Ordering::Relaxed);
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.max_us[k].fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Latency {
        let mut l = Latency::default();
        for (i, c) in self.counts.iter().enumerate() {
            l.counts[i / BUCKETS][i % BUCKETS] = c.load(Ordering::Relaxed);
        }
        for (k, m) in self.max_us.iter().enumerate() {
            l.max_us[k] = m.load(Ordering::Relaxed);
        }
        l
    }
}

/// Close-detection latency per [`CloseKind`] (a snapshot): percentiles to
/// within a bucket (a factor of 2, reported as the bucket's upper bound),
/// and the exact maximum. [`merge`](Latency::merge) adds another reactor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    counts: [[u64; BUCKETS]; KINDS],
    max_us: [u64; KINDS],
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            counts: [[0; BUCKETS]; KINDS],
            max_us: [0; KINDS],
        }
    }
}

impl Latency {
    fn index(kind: CloseKind) -> usize {
        kind.index()
    }

    /// How many closes of this kind were measured.
    pub fn count(&self, kind: CloseKind) -> u64 {
        self.counts[Self::index(kind)].iter().sum()
    }

    /// The `p`-th percentile (0.0 to 1.0) for this kind, as the upper bound
    /// of the bucket it falls in; `None` with no sample.
    pub fn percentile(&self, kind: CloseKind, p: f64) -> Option<Duration> {
        let row = &self.counts[Self::index(kind)];
        let n: u64 = row.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in row.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let max = self.max_us[Self::index(kind)];
                return Some(Duration::from_micros(upper_us(b).min(max)));
            }
        }
        None
    }

    /// The largest latency measured for this kind.
    pub fn max(&self, kind: CloseKind) -> Option<Duration> {
        (self.count(kind) > 0).then(|| Duration::from_micros(self.max_us[Self::index(kind)]))
    }

    /// Adds `other` (another worker's) to this one.
    pub fn merge(&mut self, other: &Latency) {
        for k in 0..KINDS {
            for b in 0..BUCKETS {
                self.counts[k][b] += other.counts[k][b];
            }
            self.max_us[k] = self.max_us[k].max(other.max_us[k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_in_microseconds() {
        assert_eq!(bucket(Duration::ZERO), 0);
        assert_eq!(bucket(Duration::from_micros(1)), 1);
        assert_eq!(bucket(Duration::from_micros(3)), 2);
        assert_eq!(bucket(Duration::from_micros(1000)), 10);
        assert_eq!(bucket(Duration::from_secs(100_000)), BUCKETS - 1);
    }

    #[test]
    fn percentiles_fall_within_a_bucket_of_the_truth() {
        let r = Recorder::new();
        for us in 1..=1000u64 {
            r.record(CloseKind::Reset, Duration::from_micros(us));
        }
        let l = r.snapshot();
        assert_eq!(l.count(CloseKind::Reset), 1000);
        let p50 = l.percentile(CloseKind::Reset, 0.5).unwrap();
        assert!(
            p50 >= Duration::from_micros(500) && p50 <= Duration::from_micros(1024),
            "{p50:?}"
        );
        let p99 = l.percentile(CloseKind::Reset, 0.99).unwrap();
        assert!(
            p99 >= Duration::from_micros(990) && p99 <= Duration::from_micros(1000),
            "{p99:?}"
        );
        assert_eq!(l.max(CloseKind::Reset), Some(Duration::from_micros(1000)));
        assert_eq!(l.percentile(CloseKind::Idle, 0.5), None);
        let mut two = l.clone();
        two.merge(&l);
        assert_eq!(two.count(CloseKind::Reset), 2000);
    }
}
