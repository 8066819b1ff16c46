//! Idempotent effects for work that may be handled twice.
//!
//! Work handed out at least once — a dispatch from the event stream, a
//! scheduled job — can be handled again after its handler died before
//! acknowledging it. What handled work creates is named after the work's key,
//! the caller and how many of the same kind the caller created in it before:
//! - messages carry that name as their nonce, with `enforce_nonce`: Discord
//!   answers a repeat with the message it already created;
//! - scheduled jobs take it as their id: scheduling it again changes nothing.
//!
//! A caller doing the same thing again makes the same names; one that behaves
//! differently the second time is not deduplicated. Storage writes are not
//! covered: features that count must tolerate a repeat (ADR 0023).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The work being handled on this task, and the messages each caller has
/// posted in it so far.
struct Handled {
    key: String,
    /// How many of each kind each caller created so far.
    made: Mutex<HashMap<(Kind, Origin), u32>>,
}

/// A feature in a guild, or the host.
type Origin = Option<(u64, String)>;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Message,
    Job,
}

tokio::task_local! {
    static HANDLED: Arc<Handled>;
}

/// Runs `work` as the handling of the work called `key` (a stream entry id,
/// `job:<id>`): messages created meanwhile get nonces from it.
pub async fn handling<F: Future>(key: String, work: F) -> F::Output {
    let handled = Arc::new(Handled {
        key,
        made: Mutex::default(),
    });
    HANDLED.scope(handled, work).await
}

/// The nonce of the next message `origin` (a feature in a guild, or the host)
/// creates in the work this task handles; `None` outside [`handling`].
pub fn next_nonce(origin: Option<(u64, &str)>) -> Option<String> {
    // Discord takes nonces of up to 25 characters.
    next_name(Kind::Message, origin, 12)
}

/// The id of the next job the feature `origin` schedules in the work this
/// task handles (32 hex digits, like a random one); `None` outside
/// [`handling`].
pub fn next_job_id(origin: (u64, &str)) -> Option<String> {
    next_name(Kind::Job, Some(origin), 16)
}

fn next_name(kind: Kind, origin: Option<(u64, &str)>, bytes: usize) -> Option<String> {
    HANDLED
        .try_with(|handled| {
            let origin = origin.map(|(guild, feature)| (guild, feature.to_string()));
            let n = {
                let mut made = handled.made.lock().unwrap_or_else(PoisonError::into_inner);
                let count = made.entry((kind, origin.clone())).or_default();
                *count += 1;
                *count
            };
            let mut hash = Sha256::new();
            hash.update(handled.key.as_bytes());
            hash.update([kind as u8]);
            if let Some((guild, feature)) = &origin {
                hash.update(guild.to_be_bytes());
                hash.update(feature.as_bytes());
            }
            hash.update(n.to_be_bytes());
            hex::encode(&hash.finalize()[..bytes])
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_work_gets_the_same_nonces_and_other_work_others() {
        assert_eq!(next_nonce(None), None);
        let first = handling("1-0".into(), async {
            [
                next_nonce(Some((1, "a"))),
                next_nonce(Some((1, "a"))),
                next_nonce(Some((1, "b"))),
                next_nonce(None),
            ]
        })
        .await;
        let again = handling("1-0".into(), async {
            [
                next_nonce(Some((1, "a"))),
                next_nonce(Some((1, "a"))),
                next_nonce(Some((1, "b"))),
                next_nonce(None),
            ]
        })
        .await;
        let other = handling("2-0".into(), async { next_nonce(Some((1, "a"))) }).await;
        let jobs = handling("1-0".into(), async {
            [next_job_id((1, "a")), next_job_id((1, "a"))]
        })
        .await;
        assert_ne!(jobs[0], jobs[1]);
        assert!(jobs.iter().flatten().all(|id| id.len() == 32));
        assert!(
            !first.contains(&jobs[0]),
            "jobs and messages are named apart"
        );
        assert_eq!(first, again);
        let nonces: std::collections::HashSet<_> = first.iter().flatten().collect();
        assert_eq!(
            nonces.len(),
            4,
            "every message of one handling has its own nonce"
        );
        assert!(first.iter().flatten().all(|n| n.len() <= 25));
        assert_ne!(other, first[0]);
    }
}
