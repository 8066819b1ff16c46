//! Idempotent Discord effects for work that may be handled twice.
//!
//! Work handed out at least once — a dispatch from the event stream, a
//! scheduled job — can be handled again after its handler died before
//! acknowledging it. The messages handled work posts carry a nonce derived
//! from the work's key, the caller and how many messages that caller posted
//! in it before, with `enforce_nonce`: Discord answers a repeat with the
//! message it already created instead of posting a second one. A caller
//! doing the same thing again sends the same nonces; one that behaves
//! differently the second time is not deduplicated.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The work being handled on this task, and the messages each caller has
/// posted in it so far.
struct Handled {
    key: String,
    posted: Mutex<HashMap<Option<(u64, String)>, u32>>,
}

tokio::task_local! {
    static HANDLED: Arc<Handled>;
}

/// Runs `work` as the handling of the work called `key` (a stream entry id,
/// `job:<id>`): messages created meanwhile get nonces from it.
pub async fn handling<F: Future>(key: String, work: F) -> F::Output {
    let handled = Arc::new(Handled {
        key,
        posted: Mutex::default(),
    });
    HANDLED.scope(handled, work).await
}

/// The nonce of the next message `origin` (a feature in a guild, or the host)
/// creates in the work this task handles; `None` outside [`handling`].
pub fn next_nonce(origin: Option<(u64, &str)>) -> Option<String> {
    HANDLED
        .try_with(|handled| {
            let origin = origin.map(|(guild, feature)| (guild, feature.to_string()));
            let n = {
                let mut posted = handled
                    .posted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let count = posted.entry(origin.clone()).or_default();
                *count += 1;
                *count
            };
            let mut hash = Sha256::new();
            hash.update(handled.key.as_bytes());
            if let Some((guild, feature)) = &origin {
                hash.update(guild.to_be_bytes());
                hash.update(feature.as_bytes());
            }
            hash.update(n.to_be_bytes());
            // Discord takes nonces of up to 25 characters.
            hex::encode(&hash.finalize()[..12])
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
