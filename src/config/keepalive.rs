//! [`Keepalive`]: TCP keepalive settings, and their bounds.

use std::io;
use std::time::Duration;

use super::invalid;

/// TCP keepalive settings: `Keepalive::new(idle).interval(every).retries(n)`.
///
/// A peer that vanished while the connection was idle is reported as
/// [`CloseReason::TimedOut`](crate::CloseReason::TimedOut) about
/// `idle + interval * retries` after it went silent (the
/// [`worst_case`](Keepalive::worst_case)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use hangup::Keepalive;
///
/// let k = Keepalive::new(Duration::from_secs(1)).interval(Duration::from_secs(1)).retries(3);
/// assert_eq!(k.worst_case(), Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    idle: Duration,
    interval: Duration,
    retries: u32,
}

/// Linux's limits: `MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`, `MAX_TCP_KEEPCNT`.
const MAX_KEEPALIVE_SECS: u64 = 32_767;
const MAX_KEEPALIVE_RETRIES: u32 = 127;

impl Keepalive {
    /// Probes start after `idle` without traffic. Defaults: `interval` = `idle`,
    /// `retries` = 3.
    pub fn new(idle: Duration) -> Self {
        Keepalive {
            idle,
            interval: idle,
            retries: 3,
        }
    }

    /// Time between unanswered probes. Whole seconds, at least one.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// Unanswered probes before the connection is declared dead; 1 to 127.
    ///
    /// # Notes
    ///
    /// Not every OS can set the count; where it cannot, the system default applies.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The configured idle time.
    pub fn get_idle(&self) -> Duration {
        self.idle
    }

    /// The configured probe interval.
    pub fn get_interval(&self) -> Duration {
        self.interval
    }

    /// The configured probe count.
    pub fn get_retries(&self) -> u32 {
        self.retries
    }

    /// `idle + interval * retries`: how long after the peer went silent an idle
    /// connection is reported as timed out, at worst.
    pub fn worst_case(&self) -> Duration {
        self.idle + self.interval * self.retries
    }

    pub(super) fn validate(&self) -> io::Result<()> {
        for (name, t) in [
            ("keepalive idle", self.idle),
            ("keepalive interval", self.interval),
        ] {
            if t < Duration::from_secs(1) {
                return Err(invalid(&format!("{name} must be at least one second")));
            }
            if t.subsec_nanos() != 0 {
                return Err(invalid(&format!(
                    "{name} must be whole seconds (the kernel would truncate it)"
                )));
            }
            if t.as_secs() > MAX_KEEPALIVE_SECS {
                return Err(invalid(&format!(
                    "{name} must be at most {MAX_KEEPALIVE_SECS} seconds"
                )));
            }
        }
        if self.retries == 0 || self.retries > MAX_KEEPALIVE_RETRIES {
            return Err(invalid(&format!(
                "keepalive retries must be 1 to {MAX_KEEPALIVE_RETRIES}"
            )));
        }
        Ok(())
    }
}
