//! `townes worker`: handles the dispatches gateways relayed into the event
//! stream, with the same handler `serve` gives serenity (ADR 0023).
//!
//! An entry is acknowledged only once its handling returned, so a worker
//! killed midway leaves it for another (see `event_stream`); the messages
//! its handling posts carry nonces derived from the entry id
//! (`discord::delivery`), so handling it again does not post them twice.

use super::handler::Handler;
use crate::discord::delivery;
use crate::event_stream::{Delivered, EventStream};
use crate::platform::Platform;
use serenity::model::event::GatewayEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Entries handled at once: like serenity, which spawns a task per event.
const AT_ONCE: usize = 256;
/// How long one read waits for new entries.
const BLOCK: Duration = Duration::from_millis(500);
/// Pause after Redis failed.
const RETRY: Duration = Duration::from_secs(1);

/// Handles the stream's entries as `consumer` until `stop` resolves; what is
/// being handled then is finished first. Entries are read as soon as a slot
/// frees, not batch after batch, so an interaction read among slow events
/// starts at once.
pub async fn consume(
    platform: Arc<Platform>,
    stream: EventStream,
    consumer: String,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    stream.ensure_group().await?;
    let handler = Arc::new(Handler::new(platform));
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    let mut running = JoinSet::new();
    tokio::pin!(stop);
    // Restarted under the same name: first what this worker held when it
    // died. All of it in one read: a worker never holds more than AT_ONCE.
    let held = stream.own_pending(&consumer, AT_ONCE).await?;
    if !held.is_empty() {
        tracing::info!(
            entries = held.len(),
            "event stream: handling what this worker held before it stopped"
        );
    }
    for entry in held {
        let slot = slots.clone().acquire_owned().await?;
        let (handler, stream) = (handler.clone(), stream.clone());
        running.spawn(async move {
            handle(&handler, &stream, entry).await;
            drop(slot);
        });
    }
    loop {
        let first = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot?,
        };
        let wanted = 1 + slots.available_permits();
        let read = tokio::select! {
            _ = &mut stop => break,
            read = stream.next(&consumer, wanted, BLOCK) => read,
        };
        let entries = match read {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "event stream: could not read; retrying");
                drop(first);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut first = Some(first);
        for entry in entries {
            let slot = match first.take() {
                Some(slot) => slot,
                None => slots.clone().acquire_owned().await?,
            };
            let (handler, stream) = (handler.clone(), stream.clone());
            running.spawn(async move {
                handle(&handler, &stream, entry).await;
                drop(slot);
            });
        }
        // Reap what finished, so the set does not grow with the stream.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
    Ok(())
}
async fn handle(handler: &Handler, stream: &EventStream, entry: Delivered) {
    let done = match serde_json::from_str::<GatewayEvent>(&entry.frame) {
        Ok(GatewayEvent::Dispatch(_, event)) => {
            delivery::handling(entry.id.clone(), handler.handle(event)).await;
            stream.ack(entry.stream, &entry.id).await
        }
        Ok(_) => stream.ack(entry.stream, &entry.id).await,
        Err(error) => {
            stream
                .dead_letter(&entry, &format!("unreadable dispatch: {error}"))
                .await
        }
    };
    if let Err(error) = done {
        // Left pending: it is handled again after the claim timeout.
        tracing::warn!(id = %entry.id, %error, "event stream: could not acknowledge a handled dispatch");
    }
}
