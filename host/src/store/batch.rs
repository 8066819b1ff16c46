//! Group commit of feature-storage writes.
//!
//! Why: a storage write costs its transaction far more than its statements. On
//! Postgres each commit waits for a WAL flush (about 300 a second on a plain disk), and
//! on both backends writers to one scope queue on the scope's lock; so one transaction
//! per write caps a busy guild's features at a few hundred writes a second, however
//! many callers there are. Instead each [`Store`] has writer tasks ("lanes") fed by a
//! bounded queue. A lane waits for one write, takes whatever else has queued up (while
//! its previous commit was in flight) up to [`MAX_BATCH`] writes or
//! [`MAX_BATCH_BYTES`], applies them all in one transaction ([`storage::apply`]),
//! commits, and only then answers each caller. "Durable when the call returns" still
//! holds, commits per second stay flat, and writes per second grow with the number of
//! concurrent callers. Nothing waits for a batch to fill: a lone write commits at once.
//!
//! - Quotas stay exact: the batch's transaction locks each scope's usage row and checks
//!   every write against the usage so far, its batch neighbours included.
//! - A batch is sorted by scope before it is applied (stably, so one scope's writes
//!   keep their order): every lane of every process locks scopes in the same order, so
//!   two batches never wait on each other in a cycle.
//! - A refusal (quota, not an integer, overflow, a failed set-if condition) is decided
//!   before the write runs a data statement: only its caller hears of it.
//! - A database error in a statement makes the transaction unusable: it is rolled
//!   back and every write of the batch is retried alone, so one bad write never fails
//!   its neighbours. A failed begin or commit is every write's failure: each caller
//!   gets [`StoreError::Batch`].
//! - Postgres commits on several connections at once, so it gets [`POSTGRES_LANES`]
//!   lanes; a scope always goes to the same lane (by hash), so its writes stay in
//!   order and lanes of one process never contend for a scope. SQLite has one writer
//!   whatever we do: one lane.
//! - A caller that stops waiting (its future dropped) does not withdraw its write: it
//!   may still be committed, as a dropped single transaction might have been.
//!
//! The lanes hold the pool, not the store: they end when the last [`Store`] clone is
//! dropped, which drops the queues' senders.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::storage::{self, Answer, Failed, Write};
use super::{Db, Scope, Store, StoreError};

/// Most writes one transaction carries: enough to absorb bursts, few enough that a
/// batch holds its scopes' locks for milliseconds, not seconds.
const MAX_BATCH: usize = 256;

/// Most bytes of keys and values one transaction carries (checked before each write
/// is added, so a batch can pass it by one write's size).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Writes a lane's queue holds; callers beyond it wait to enqueue (backpressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// Lanes on Postgres: commits overlap on as many connections, well inside the pool.
const POSTGRES_LANES: usize = 4;

/// A queued write and where its answer goes.
struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<Answer, StoreError>>,
}

/// The store's side of the lanes. Cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    lanes: Arc<[mpsc::Sender<Pending>]>,
    counts: Arc<Counts>,
}

/// How storage writes were committed since the store was opened: for tests and
/// benchmarks (the process-wide figure is the `townes_storage_batch_writes`
/// histogram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageCommits {
    /// Transactions committed.
    pub commits: u64,
    /// Writes those transactions held (refused writes included).
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counts {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Counts {
    fn committed(&self, writes: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        crate::metrics::metrics().record_storage_commit(writes);
    }
}

impl Writer {
    /// Starts the lanes on the current Tokio runtime.
    pub(super) fn spawn(db: &Db) -> Writer {
        let lanes = match db {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => POSTGRES_LANES,
        };
        let counts = Arc::new(Counts::default());
        let lanes = (0..lanes)
            .map(|_| {
                let (sender, queue) = mpsc::channel(QUEUE);
                tokio::spawn(run(db.clone(), queue, counts.clone()));
                sender
            })
            .collect();
        Writer { lanes, counts }
    }

    /// Queues `write` on its scope's lane and waits for its answer.
    pub(super) async fn submit(&self, write: Write) -> Result<Answer, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lane = &self.lanes[lane_of(&write.scope, self.lanes.len())];
        // Both fail only when the lane is gone: its runtime shut down, or it panicked.
        let gone = || StoreError::Database(sqlx::Error::WorkerCrashed);
        let pending = Pending { write, reply };
        lane.send(pending).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn lane_of(scope: &Scope, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    scope.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

/// A lane: batches until the queue closes.
async fn run(db: Db, mut queue: mpsc::Receiver<Pending>, counts: Arc<Counts>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        let mut bytes = first.write.bytes();
        batch.push(first);
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = queue.try_recv() else { break };
            bytes += next.write.bytes();
            batch.push(next);
        }
        commit(&db, &mut batch, &counts).await;
    }
}

/// Commits `batch` (emptying it) and answers its callers.
async fn commit(db: &Db, batch: &mut Vec<Pending>, counts: &Counts) {
    batch.sort_by(|a, b| {
        let (a, b) = (&a.write.scope, &b.write.scope);
        (a.guild_id, &a.feature_id).cmp(&(b.guild_id, &b.feature_id))
    });
    let (writes, replies): (Vec<Write>, Vec<_>) =
        batch.drain(..).map(|p| (p.write, p.reply)).unzip();
    let answers = match storage::apply(db, &writes).await {
        Ok(answers) => {
            counts.committed(writes.len());
            answers
        }
        Err(failed) if writes.len() == 1 => vec![Err(failed.into())],
        Err(Failed::Statement(error)) => {
            tracing::warn!(%error, writes = writes.len(), "a batch of storage writes failed; retrying each alone");
            let mut answers = Vec::with_capacity(writes.len());
            for write in &writes {
                answers.push(
                    match storage::apply(db, std::slice::from_ref(write)).await {
                        Ok(mut answer) => {
                            counts.committed(1);
                            answer.remove(0)
                        }
                        Err(failed) => Err(failed.into()),
                    },
                );
            }
            answers
        }
        Err(Failed::Transaction(error)) => {
            let error = Arc::new(error);
            writes
                .iter()
                .map(|_| Err(StoreError::Batch(error.clone())))
                .collect()
        }
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A caller that stopped waiting has nobody to tell.
        let _ = reply.send(answer);
    }
}

impl Store {
    /// How this store's storage writes were grouped into commits so far.
    pub fn storage_commits(&self) -> StorageCommits {
        StorageCommits {
            commits: self.writes.counts.commits.load(Ordering::Relaxed),
            writes: self.writes.counts.writes.load(Ordering::Relaxed),
        }
    }
}
