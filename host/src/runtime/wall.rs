//! The wall-clock budget of one invocation.
//!
//! The budget bounds how long a feature may hold an instance, host calls included,
//! except while it waits on Discord: a 429 storm must delay a feature's message,
//! not kill the feature and count a fault against it. Those waits have an
//! allowance of their own per invocation: once it is used up the clock runs
//! again, paused or not, so no invocation lives longer than its wall budget plus
//! its Discord allowance.
//!
//! Waiting on a model's answer (`ai`) is excluded the same way, from an
//! allowance of its own (`ai_wait_ms`): an answer takes seconds, far beyond a
//! feature's wall budget, and each call also has the operator's timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a paused clock waits on, and so which allowance the pause spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    Discord,
    Ai,
}

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
    /// What is left of the allowance for waiting on Discord.
    pause_left: Duration,
    /// What is left of the allowance for waiting on `ai` answers.
    ai_left: Duration,
    /// What the outermost pause waits on.
    paused_for: Wait,
    /// `Some` while the clock runs; `None` while paused.
    running_since: Option<Instant>,
    /// `Some` while paused.
    paused_since: Option<Instant>,
    /// Nested pauses (a host call may be made while another is parked).
    pauses: u32,
}

impl WallClock {
    /// A running clock with `budget` left, which may be paused for at most
    /// `pause_allowance` in all.
    pub(crate) fn start(budget: Duration, pause_allowance: Duration) -> WallClock {
        WallClock {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    left: budget,
                    pause_left: pause_allowance,
                    ai_left: Duration::ZERO,
                    paused_for: Wait::Discord,
                    running_since: Some(Instant::now()),
                    paused_since: None,
                    pauses: 0,
                }),
                resumed: Notify::new(),
            }),
        }
    }

    /// The clock with `allowance` for waiting on `ai` answers.
    pub(crate) fn with_ai_allowance(self, allowance: Duration) -> WallClock {
        self.inner.state.lock().unwrap().ai_left = allowance;
        self
    }

    /// Runs `work` (a wait on Discord) with the clock stopped.
    pub(crate) async fn excluding<T>(&self, work: impl Future<Output = T>) -> T {
        self.excluding_as(Wait::Discord, work).await
    }

    /// Runs `work` with the clock stopped, spending the allowance of `wait`.
    pub(crate) async fn excluding_as<T>(&self, wait: Wait, work: impl Future<Output = T>) -> T {
        self.pause(wait);
        let _resume = ResumeOnDrop(self);
        work.await
    }

    fn pause(&self, wait: Wait) {
        let mut s = self.inner.state.lock().unwrap();
        s.pauses += 1;
        if let Some(since) = s.running_since.take() {
            s.left = s.left.saturating_sub(since.elapsed());
            s.paused_since = Some(Instant::now());
            s.paused_for = wait;
        }
    }

    fn resume(&self) {
        let mut s = self.inner.state.lock().unwrap();
        s.pauses -= 1;
        if s.pauses == 0 {
            let paused = s
                .paused_since
                .take()
                .map_or(Duration::ZERO, |p| p.elapsed());
            let allowance = s.allowance();
            let over = paused.saturating_sub(allowance);
            *s.allowance_mut() = allowance.saturating_sub(paused);
            s.left = s.left.saturating_sub(over);
            s.running_since = Some(Instant::now());
            self.inner.resumed.notify_one();
        }
    }

    /// When the budget runs out if nothing changes: while paused, after the
    /// rest of the allowance and then the rest of the budget.
    fn deadline(&self) -> Instant {
        let s = self.inner.state.lock().unwrap();
        match (s.running_since, s.paused_since) {
            (Some(since), _) => since + s.left,
            (None, Some(paused)) => paused + s.allowance() + s.left,
            (None, None) => Instant::now() + s.left,
        }
    }

    /// Resolves once the budget is spent.
    pub(crate) async fn expired(&self) {
        loop {
            let deadline = self.deadline();
            if deadline <= Instant::now() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                // A pause and resume moved the deadline: look again.
                _ = self.inner.resumed.notified() => {}
            }
        }
    }
}

impl State {
    /// What is left of the allowance the current pause spends.
    fn allowance(&self) -> Duration {
        match self.paused_for {
            Wait::Discord => self.pause_left,
            Wait::Ai => self.ai_left,
        }
    }

    fn allowance_mut(&mut self) -> &mut Duration {
        match self.paused_for {
            Wait::Discord => &mut self.pause_left,
            Wait::Ai => &mut self.ai_left,
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
        let clock = WallClock::start(Duration::from_millis(100), Duration::from_secs(30));
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
        let clock = WallClock::start(Duration::from_millis(250), Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        clock.expired().await;
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_past_the_allowance_count_against_the_budget() {
        let clock = WallClock::start(Duration::from_millis(100), Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        let waiting = clock.excluding(tokio::time::sleep(Duration::from_secs(3600)));
        tokio::select! {
            _ = waiting => panic!("the wait outlived the clock"),
            _ = clock.expired() => {}
        }
        // The whole allowance, then the whole budget, though still paused.
        assert_eq!(started.elapsed(), Duration::from_millis(1_100));
    }

    #[tokio::test(start_paused = true)]
    async fn ai_waits_spend_their_own_allowance() {
        let clock = WallClock::start(Duration::from_millis(100), Duration::from_secs(1))
            .with_ai_allowance(Duration::from_secs(20));
        let started = tokio::time::Instant::now();
        clock
            .excluding_as(Wait::Ai, tokio::time::sleep(Duration::from_secs(10)))
            .await;
        let waiting = clock.excluding_as(Wait::Ai, tokio::time::sleep(Duration::from_secs(3600)));
        tokio::select! {
            _ = waiting => panic!("the wait outlived the clock"),
            _ = clock.expired() => {}
        }
        // 10 s, then the other 10 s of the AI allowance, then the budget;
        // the Discord allowance is untouched.
        assert_eq!(started.elapsed(), Duration::from_millis(20_100));
        assert_eq!(
            clock.inner.state.lock().unwrap().pause_left,
            Duration::from_secs(1)
        );
    }
}
