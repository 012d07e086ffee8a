//! Waiting for a condition without fixed sleeps.
//!
//! Tests never sleep for a guessed duration; they poll with [`eventually`] until the condition
//! holds or a timeout (an upper bound, not an expected duration) passes.

use std::time::{Duration, Instant};

/// The longest pause between two polls.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Calls `poll` until it returns `Some`, and returns that; `None` once `timeout` has passed.
///
/// Polls start 5 ms apart and back off to [`MAX_PAUSE`]; `poll` runs once more at the deadline.
/// Typical use: `eventually(Duration::from_secs(10), || job_is_running().then_some(())).expect("…")`.
pub fn eventually<T>(timeout: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = poll() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::poll::eventually;

    #[test]
    fn eventually_returns_the_first_value_produced() {
        let mut n_polls = 0;
        let res = eventually(Duration::from_secs(5), || {
            n_polls += 1;
            (n_polls == 3).then_some(n_polls)
        });
        assert_eq!(res, Some(3));
    }

    #[test]
    fn eventually_gives_up_after_the_timeout() {
        let mut n_polls = 0;
        let res: Option<()> = eventually(Duration::from_millis(20), || {
            n_polls += 1;
            None
        });
        assert_eq!(res, None);
        assert!(n_polls >= 2, "polled {n_polls} times");
    }
}
