//! When to ask a registry again. Registries and the CDNs in front of them
//! answer 429 (rate limit) and 502/503/504 (overload, deploys) as a matter of
//! course, and connections drop; podman and containerd retry such failures a
//! few times, and so does vessel: only idempotent requests (GET, HEAD; a
//! blob download resumes from where it broke with a `Range` request), a few
//! times, waiting longer each time or as long as `Retry-After` says (capped).

use std::time::Duration;

/// Longest wait between two attempts, whatever `Retry-After` asks.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub retries: u32,
    /// The first wait; each later one doubles it.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), from the answer's
    /// `Retry-After` (seconds) when it has one.
    pub fn delay(&self, retry: u32, retry_after: Option<&str>) -> Duration {
        let asked = retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let backoff = self
            .base_delay
            .checked_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
            .unwrap_or(MAX_DELAY);
        asked.unwrap_or(backoff).min(MAX_DELAY)
    }
}

/// Whether an HTTP status is worth asking again for: the registry is
/// rate-limiting or briefly unwell. 500 is included (distribution answers it
/// for storage-driver hiccups); 501 and 505 are not (they will not change).
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a request method may be sent twice without harm.
pub fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// Whether a transport failure may go away on its own (a refused, reset or
/// dropped connection, a timeout), unlike a bad URL, a DNS name that does
/// not exist or a TLS certificate that does not verify.
pub fn retryable_transport(t: &ureq::Transport) -> bool {
    matches!(
        t.kind(),
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_and_honours_retry_after_capped() {
        let p = RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(100),
        };
        assert_eq!(p.delay(0, None), Duration::from_millis(100));
        assert_eq!(p.delay(2, None), Duration::from_millis(400));
        assert_eq!(p.delay(1, Some(" 2 ")), Duration::from_secs(2));
        // A registry cannot make vessel sleep for a day, nor overflow it.
        assert_eq!(p.delay(0, Some("86400")), MAX_DELAY);
        assert_eq!(p.delay(40, None), MAX_DELAY);
        assert_eq!(p.delay(u32::MAX, None), MAX_DELAY);
        // An HTTP-date or garbage falls back to the backoff.
        assert_eq!(
            p.delay(0, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Duration::from_millis(100)
        );
        assert_eq!(p.delay(0, Some("-5")), Duration::from_millis(100));
    }

    #[test]
    fn what_is_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 416, 501, 505] {
            assert!(!retryable_status(s), "{s}");
        }
        assert!(idempotent("GET") && idempotent("HEAD"));
        assert!(!idempotent("PUT") && !idempotent("POST") && !idempotent("PATCH"));
    }
}
