//! Rate limits of log-in and sign-up, per client address and per account name.
//!
//! A sliding window: an attempt is refused when `max` counted events of the same key
//! happened within the last `window`. Log-in counts failures only, so the 11th failed
//! log-in within a minute is refused (and so is any further attempt, right or wrong,
//! until the window has moved on). Kept in memory: a restart forgets it, which only
//! helps an attacker who can restart the daemon.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed log-ins allowed per minute per address and per account.
pub const LOGIN_FAILURES_PER_MINUTE: usize = 10;
/// Sign-up attempts allowed per minute per address and per user name.
pub const SIGNUPS_PER_MINUTE: usize = 10;

/// One sliding-window limiter.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    max: usize,
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// At most `max` events per key within `window`.
    pub fn new(window: Duration, max: usize) -> Self {
        Self {
            window,
            max,
            events: Mutex::default(),
        }
    }

    /// Whether `key` has used up its allowance at `now`.
    pub fn exhausted(&self, key: &str, now: Instant) -> bool {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(times) = events.get_mut(key) else {
            return false;
        };
        prune(times, now, self.window);
        times.len() >= self.max
    }

    /// Counts one event of `key` at `now`.
    pub fn record(&self, key: &str, now: Instant) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep memory bounded: forget keys whose events all left the window.
        if events.len() > 10_000 {
            events.retain(|_, times| {
                prune(times, now, self.window);
                !times.is_empty()
            });
        }
        let times = events.entry(key.to_owned()).or_default();
        prune(times, now, self.window);
        times.push_back(now);
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|first| now.saturating_duration_since(*first) >= window)
    {
        times.pop_front();
    }
}

/// The dashboard's limiters.
#[derive(Debug)]
pub struct RateLimits {
    /// Failed log-ins, keyed `addr:<ip>` and `user:<name>`.
    pub login_failures: Limiter,
    /// Sign-up attempts, keyed `addr:<ip>` and `user:<name>`.
    pub signups: Limiter,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_failures: Limiter::new(Duration::from_secs(60), LOGIN_FAILURES_PER_MINUTE),
            signups: Limiter::new(Duration::from_secs(60), SIGNUPS_PER_MINUTE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_event_within_the_window_is_refused_and_allowed_again_after_it() {
        let limiter = Limiter::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        for idx in 0..10 {
            assert!(!limiter.exhausted("k", start), "event {idx}");
            limiter.record("k", start + Duration::from_secs(idx));
        }
        assert!(limiter.exhausted("k", start + Duration::from_secs(10)));
        assert!(!limiter.exhausted("other", start));
        assert!(!limiter.exhausted("k", start + Duration::from_secs(60)));
    }
}
