//! When to try a request again: after a 429 or a 5xx answer, or a connection that failed,
//! with exponential backoff, honouring the server's `Retry-After` (within a bound).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub retries: u32,
    /// The first wait; each later one doubles.
    pub base: Duration,
    /// No wait is longer, whatever the server asks.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// What went wrong with one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An HTTP status, and the `Retry-After` the server sent with it.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// The connection could not be made, or broke before an answer.
    Connection,
    /// The whole request took too long: trying again would take as long.
    Timeout,
}

impl RetryPolicy {
    /// How long to wait before try `attempt + 1` (`attempt` counts from 0), or `None` to
    /// give up.
    pub fn delay(&self, attempt: u32, failure: Failure) -> Option<Duration> {
        if attempt >= self.retries {
            return None;
        }
        let backoff = self.base.saturating_mul(1 << attempt.min(16));
        let delay = match failure {
            Failure::Status { code, retry_after } if code == 429 || (500..600).contains(&code) => {
                retry_after.unwrap_or(backoff)
            }
            Failure::Connection => backoff,
            Failure::Status { .. } | Failure::Timeout => return None,
        };
        Some(delay.min(self.max_delay))
    }
}

/// A `Retry-After` header's seconds (the HTTP-date form is not honoured: the backoff applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        base: Duration::from_millis(100),
        max_delay: Duration::from_secs(5),
    };

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            code,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn server_errors_and_rate_limits_back_off_exponentially() {
        let delays: Vec<_> = (0..4).map(|n| POLICY.delay(n, status(503, None))).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                None
            ]
        );
        assert_eq!(
            POLICY.delay(0, Failure::Connection),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_bound() {
        assert_eq!(
            POLICY.delay(0, status(429, Some(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            POLICY.delay(1, status(429, Some(60))),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn client_errors_and_timeouts_are_not_retried() {
        assert_eq!(POLICY.delay(0, status(400, None)), None);
        assert_eq!(POLICY.delay(0, status(401, Some(1))), None);
        assert_eq!(POLICY.delay(0, Failure::Timeout), None);
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }
}
