//! The wall-clock budget of one invocation.
//!
//! The budget bounds how long a feature may hold an instance, host calls included,
//! except while it waits on Discord: a 429 storm must delay a feature's message,
//! not kill the feature and count a fault against it. Discord waits have their own
//! bound (the executor's `max_wait`), so pausing the clock never lets a guest run
//! unbounded: it cannot execute while parked in a host call.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Clone)]
pub(crate) struct WallClock {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    resumed: Notify,
}

struct State {
    left: Duration,
    /// `Some` while the clock runs; `None` while paused.
    running_since: Option<Instant>,
    /// Nested pauses (a host call may be made while another is parked).
    pauses: u32,
}

impl WallClock {
    /// A running clock with `budget` left.
    pub(crate) fn start(budget: Duration) -> WallClock {
        WallClock {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    left: budget,
                    running_since: Some(Instant::now()),
                    pauses: 0,
                }),
                resumed: Notify::new(),
            }),
        }
    }

    /// Runs `work` with the clock stopped.
    pub(crate) async fn excluding<T>(&self, work: impl Future<Output = T>) -> T {
        self.pause();
        let _resume = ResumeOnDrop(self);
        work.await
    }

    fn pause(&self) {
        let mut s = self.inner.state.lock().unwrap();
        s.pauses += 1;
        if let Some(since) = s.running_since.take() {
            s.left = s.left.saturating_sub(since.elapsed());
        }
    }

    fn resume(&self) {
        let mut s = self.inner.state.lock().unwrap();
        s.pauses -= 1;
        if s.pauses == 0 {
            s.running_since = Some(Instant::now());
            self.inner.resumed.notify_one();
        }
    }

    /// When the budget runs out if the clock keeps running; `None` while paused.
    fn deadline(&self) -> Option<Instant> {
        let s = self.inner.state.lock().unwrap();
        s.running_since.map(|since| since + s.left)
    }

    /// Resolves once the budget is spent.
    pub(crate) async fn expired(&self) {
        loop {
            match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        // A pause and resume moved the deadline: look again.
                        _ = self.inner.resumed.notified() => {}
                    }
                }
                None => self.inner.resumed.notified().await,
            }
        }
    }
}

/// Resumes the clock even when the paused work is cancelled (the invocation was
/// dropped mid-call).
struct ResumeOnDrop<'a>(&'a WallClock);

impl Drop for ResumeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn time_spent_excluded_does_not_count() {
        let clock = WallClock::start(Duration::from_millis(100));
        let started = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(60)).await;
        clock
            .excluding(tokio::time::sleep(Duration::from_secs(5)))
            .await;
        clock.expired().await;
        // 60 ms before the pause, 5 s paused, then the remaining 40 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(5_100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_clock_expires_on_time() {
        let clock = WallClock::start(Duration::from_millis(250));
        let started = tokio::time::Instant::now();
        clock.expired().await;
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }
}
