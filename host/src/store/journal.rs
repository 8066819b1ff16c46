//! The event journal (migration 0014): the events dispatched to a guild's
//! features, kept a few days so support can deliver a guild's last events
//! again (`POST /admin/guilds/{id}/replay`).
//!
//! Why a queue: the gateway dispatches tens of thousands of events a second
//! and must never wait on a database write for a log it reads back rarely. So
//! [`Store::journal`] only offers the event to a bounded queue; one writer
//! task takes whatever has queued up, up to [`MAX_BATCH`], and writes it in
//! one transaction. When the queue is full the entry is dropped and counted
//! (the writer logs how many after its next batch; [`Store::journal_dropped`]
//! gives the total): losing journal entries under overload is acceptable,
//! slowing the gateway is not.
//!
//! The payload is serialized by the writer, not the caller, to keep that
//! cost off the dispatch path too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use tokio::sync::mpsc;

use super::{Db, Store, StoreError, api_id, count, db_id, db_limit, now, ts};
use crate::wit::Event;

/// Most entries one transaction writes.
const MAX_BATCH: usize = 512;

/// Entries waiting for the writer: about a second of a busy platform's
/// events, beyond which new ones are dropped.
const QUEUE: usize = 32 * 1024;

/// An event as it was delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalEntry {
    pub id: i64,
    pub guild_id: u64,
    /// The event's kind (`message_created`, `member_joined`, …).
    pub kind: String,
    pub event: Event,
    pub received_at: DateTime<Utc>,
}

struct Queued {
    guild_id: u64,
    kind: &'static str,
    event: Event,
    at: DateTime<Utc>,
}

/// The store's side of the writer. Cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct Journal {
    queue: mpsc::Sender<Queued>,
    dropped: Arc<Dropped>,
}

#[derive(Debug, Default)]
struct Dropped {
    /// Since the store was opened.
    total: AtomicU64,
    /// Since the writer last logged them.
    unreported: AtomicU64,
}

impl Journal {
    /// Starts the writer on the current Tokio runtime; it ends when the last
    /// [`Store`] clone is dropped.
    pub(super) fn spawn(db: &Db) -> Journal {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let dropped = Arc::new(Dropped::default());
        tokio::spawn(write(db.clone(), receiver, dropped.clone()));
        Journal { queue, dropped }
    }
}

async fn write(db: Db, mut queue: mpsc::Receiver<Queued>, dropped: Arc<Dropped>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if let Err(error) = insert(&db, &batch).await {
            // Retrying would let a failing database grow the queue until it
            // drops entries anyway; these are lost, and said so.
            tracing::warn!(%error, entries = batch.len(), "event journal: could not write a batch; its entries are lost");
        }
        batch.clear();
        let lost = dropped.unreported.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                dropped = lost,
                "event journal: its queue was full, entries were dropped (the gateway never waits for the journal)"
            );
        }
    }
}

async fn insert(db: &Db, batch: &[Queued]) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(batch.len());
    for entry in batch {
        match serde_json::value::to_raw_value(&entry.event) {
            Ok(payload) => rows.push((entry, payload)),
            Err(error) => {
                tracing::warn!(%error, guild = entry.guild_id, "event journal: an event did not serialize")
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO event_journal (guild_id, kind, payload, received_at) ",
        );
        insert.push_values(&rows, |mut row, (entry, payload): &(&Queued, Box<RawValue>)| {
            row.push_bind(db_id(entry.guild_id))
                .push_bind(entry.kind)
                .push_bind(Json(payload.clone()))
                .push_bind(entry.at);
        });
        insert.build().execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(())
}

#[derive(sqlx::FromRow)]
struct JournalRow {
    id: i64,
    guild_id: i64,
    kind: String,
    payload: Json<Event>,
    received_at: DateTime<Utc>,
}

impl From<JournalRow> for JournalEntry {
    fn from(r: JournalRow) -> JournalEntry {
        JournalEntry {
            id: r.id,
            guild_id: api_id(r.guild_id),
            kind: r.kind,
            event: r.payload.0,
            received_at: r.received_at,
        }
    }
}

impl Store {
    /// Offers an event delivered to `guild_id`'s features to the journal,
    /// without waiting: when the writer is behind, the entry is dropped and
    /// counted.
    pub fn journal(&self, guild_id: u64, kind: &'static str, event: &Event) {
        let queued = Queued {
            guild_id,
            kind,
            event: event.clone(),
            at: now(),
        };
        if self.journal.queue.try_send(queued).is_err() {
            let dropped = &self.journal.dropped;
            dropped.total.fetch_add(1, Ordering::Relaxed);
            dropped.unreported.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Journal entries dropped (queue full) since this store was opened.
    pub fn journal_dropped(&self) -> u64 {
        self.journal.dropped.total.load(Ordering::Relaxed)
    }

    /// The last `last` events journaled for a guild, oldest first (the order
    /// they were delivered in). Entries whose payload this build cannot read
    /// (written by another version) are skipped.
    pub async fn journal_tail(
        &self,
        guild_id: u64,
        last: u32,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        // Decoded row by row, so one entry this build cannot read (written by
        // another version) is skipped rather than failing the replay.
        let rows: Vec<Result<JournalRow, sqlx::Error>> = on_db!(&self.db, pool => {
            sqlx::query(
                "SELECT id, guild_id, kind, payload, received_at FROM event_journal
                 WHERE guild_id = $1
                 ORDER BY id DESC
                 LIMIT $2",
            )
            .bind(db_id(guild_id))
            .bind(db_limit(last))
            .fetch_all(pool)
            .await?
            .iter()
            .map(sqlx::FromRow::from_row)
            .collect()
        });
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows.into_iter().rev() {
            match row {
                Ok(row) => entries.push(JournalEntry::from(row)),
                Err(error) => {
                    tracing::warn!(%error, guild = guild_id, "event journal: skipping an entry this build cannot read")
                }
            }
        }
        Ok(entries)
    }

    /// Deletes journal entries received before `older_than`, and each guild's
    /// entries beyond its newest `per_guild`; returns how many went.
    pub async fn sweep_journal(
        &self,
        older_than: DateTime<Utc>,
        per_guild: u32,
    ) -> Result<u64, StoreError> {
        let deleted = on_db!(&self.db, pool => {
            let old = sqlx::query("DELETE FROM event_journal WHERE received_at < $1")
                .bind(ts(older_than))
                .execute(pool)
                .await?
                .rows_affected();
            let over = sqlx::query(
                "DELETE FROM event_journal WHERE id IN (
                     SELECT id FROM (
                         SELECT id, ROW_NUMBER() OVER (PARTITION BY guild_id ORDER BY id DESC) AS newer
                         FROM event_journal
                     ) ranked
                     WHERE newer > $1
                 )",
            )
            .bind(db_limit(per_guild))
            .execute(pool)
            .await?
            .rows_affected();
            old + over
        });
        Ok(deleted)
    }

    /// How many entries the journal holds for a guild.
    pub async fn journal_len(&self, guild_id: u64) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM event_journal WHERE guild_id = $1")
                .bind(db_id(guild_id))
                .fetch_one(pool)
                .await?
        });
        Ok(count(n))
    }
}
