//! Token buckets for per-peer inbound request limits.

use std::time::Instant;

/// A token bucket: `burst` tokens at most, refilled continuously at `per_second`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            burst,
            per_second: f64::from(per_second),
            last: now,
        }
    }

    /// Whether the bucket has refilled to its burst by `now`.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.burst
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 20, t0);
        assert!(bucket.is_full(t0));
        assert_eq!((0..25).filter(|_| bucket.try_take(t0)).count(), 20);
        assert!(!bucket.is_full(t0 + Duration::from_millis(1900)));
        assert!(bucket.is_full(t0 + Duration::from_secs(2)));
        // 100 ms at 10/s refills exactly one token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(bucket.try_take(t1));
        assert!(!bucket.try_take(t1));
        // A long pause refills to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..25).filter(|_| bucket.try_take(t2)).count(), 20);
    }
}
