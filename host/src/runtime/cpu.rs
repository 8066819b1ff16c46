//! The CPU budget of one invocation, measured as real CPU time.
//!
//! Counting epoch ticks only counts time the guest spends in its own code: a
//! guest that loops on a host call (say `wasi:random` for megabytes at a time)
//! would burn the host's CPU for free. Instead the whole invocation future —
//! guest code, capability and WASI host code alike — is polled inside
//! [`Metered`], which reads the thread's CPU clock around every poll. The epoch
//! callback and the poll wrapper both stop the invocation once the budget is
//! spent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// What an invocation has spent, shared between the poll wrapper and the epoch
/// callback (which runs inside a poll, on the same thread).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    budget: Duration,
    /// Nanoseconds spent in finished polls.
    spent_ns: AtomicU64,
    /// The thread's CPU clock when the current poll began, in nanoseconds.
    poll_started_ns: AtomicU64,
}

impl CpuMeter {
    pub(crate) fn new(budget: Duration) -> Arc<Self> {
        Arc::new(CpuMeter {
            budget,
            spent_ns: AtomicU64::new(0),
            poll_started_ns: AtomicU64::new(0),
        })
    }

    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    /// CPU spent so far, the poll in progress included. Call it only from
    /// inside a poll of the metered future (the epoch callback is).
    pub(crate) fn spent_now(&self) -> Duration {
        let started = self.poll_started_ns.load(Ordering::Relaxed);
        let running = (thread_cpu().as_nanos() as u64).saturating_sub(started);
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed) + running)
    }

    /// CPU spent in finished polls.
    pub(crate) fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed))
    }

    pub(crate) fn exhausted_now(&self) -> bool {
        self.spent_now() >= self.budget
    }
}

/// Polls `inner` while charging its CPU time to `meter`. Resolves to `None`
/// when the budget is spent while the guest is not running (inside a host call
/// that awaits), where the epoch callback cannot interrupt it.
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Arc<CpuMeter>,
    /// Tolerance past the budget before a host call is cut off: the epoch
    /// callback should get the chance to stop the guest with a proper trap.
    grace: Duration,
}

impl<F: Future> Metered<F> {
    pub(crate) fn new(inner: F, meter: Arc<CpuMeter>) -> Self {
        let grace = (meter.budget / 4).max(Duration::from_millis(5));
        Metered {
            inner: Box::pin(inner),
            meter,
            grace,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = thread_cpu().as_nanos() as u64;
        self.meter.poll_started_ns.store(started, Ordering::Relaxed);
        let polled = self.inner.as_mut().poll(cx);
        let used = (thread_cpu().as_nanos() as u64).saturating_sub(started);
        let spent = self.meter.spent_ns.fetch_add(used, Ordering::Relaxed) + used;
        match polled {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if Duration::from_nanos(spent) > self.meter.budget + self.grace => {
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(d: Duration) {
        let start = thread_cpu();
        while thread_cpu() - start < d {
            std::hint::black_box(0u64);
        }
    }

    #[tokio::test]
    async fn cpu_spent_across_awaits_is_counted_and_cut_off() {
        let meter = CpuMeter::new(Duration::from_millis(20));
        let work = async {
            for _ in 0..100 {
                burn(Duration::from_millis(2));
                tokio::task::yield_now().await;
            }
        };
        let finished = Metered::new(work, meter.clone()).await;
        assert!(finished.is_none(), "the work ran to its end");
        let spent = meter.spent();
        assert!(
            spent >= Duration::from_millis(20) && spent < Duration::from_millis(60),
            "{spent:?}"
        );
    }

    #[tokio::test]
    async fn sleeping_costs_nothing() {
        let meter = CpuMeter::new(Duration::from_millis(5));
        let finished =
            Metered::new(tokio::time::sleep(Duration::from_millis(30)), meter.clone()).await;
        assert!(finished.is_some());
        assert!(
            meter.spent() < Duration::from_millis(5),
            "{:?}",
            meter.spent()
        );
    }
}
