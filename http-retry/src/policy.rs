//! The retry policy: how many times, how long to wait (exponential backoff with full jitter),
//! and which answers are worth another try.

use std::time::Duration;

use rand::Rng;

/// How failed requests are retried.
///
/// Defaults: 5 retries after the first attempt, waiting a random time between 0 and
/// `min(max_backoff, initial_backoff × 2^n)` before retry `n` (full jitter, so that many clients
/// failing together do not retry together): at most 0.2 s, 0.4 s, 0.8 s, 1.6 s, 3.2 s.
/// Connection errors, timeouts, HTTP 408, 429 and 5xx are retried; other statuses are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Ceiling of the first wait.
    pub initial_backoff: Duration,
    /// Ceiling of any wait.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }

    /// Whether an HTTP status is worth retrying.
    pub fn retryable_status(status: u16) -> bool {
        matches!(status, 408 | 429) || (500..600).contains(&status)
    }

    /// The wait before retry number `attempt` after an answer that said how long to wait
    /// (`Retry-After` in seconds, on a 429 or 503): that long, but never beyond
    /// `max_backoff`, and never less than the backoff.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(attempt);
        match retry_after {
            Some(asked) => asked.min(self.max_backoff).max(backoff),
            None => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let r = RetryConfig::default();
        for attempt in 0..40 {
            let ceiling = (r.initial_backoff * 2u32.pow(attempt.min(20))).min(r.max_backoff);
            assert!(r.backoff(attempt) <= ceiling);
        }
    }
}
