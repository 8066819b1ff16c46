//! Feature storage: key-value pairs and score boards per (guild, feature), under a quota.
//!
//! Reads query the pool. Writes go to the store's writer (`batch.rs`), which commits
//! the writes of many callers in one transaction and answers each caller after that
//! commit; [`apply`] is what such a transaction does. For each scope among its writes it
//! first locks the scope's row in `feature_storage_usage` (an upsert that changes
//! nothing, so its first statement is a write: on Postgres it takes the row lock, on
//! SQLite the database write lock, waiting under the busy timeout instead of failing),
//! then applies that scope's writes in arrival order against the usage it keeps in
//! memory, and stores the usage once. Writers to one scope are therefore serialised: the
//! usage each write is checked against is exact (it includes the writes before it in the
//! same transaction), increments are atomic, and a refused write (over quota, not an
//! integer, overflow, a set-if whose condition fails) is refused before it runs any data
//! statement, so it changes nothing and its neighbours in the transaction go on.

use std::borrow::Cow;

use super::{Db, Scope, ScoreEntry, Store, StoreError, Usage, api_id, count, db_id, db_limit};
use crate::grants::Quota;

/// The stored value of a key: `$1` guild, `$2` feature, `$3` key.
const KV_VALUE: &str = "SELECT value FROM feature_kv
                        WHERE guild_id = $1 AND feature_id = $2 AND key = $3";

/// Inside transaction `$tx`: creates the scope's usage row if missing, locks it, and
/// evaluates to its [`Usage`].
macro_rules! lock_usage {
    ($tx:ident, $s:expr) => {{
        let (bytes, rows): (i64, i64) = sqlx::query_as(
            "INSERT INTO feature_storage_usage (guild_id, feature_id, bytes, rows)
             VALUES ($1, $2, 0, 0)
             ON CONFLICT (guild_id, feature_id) DO UPDATE
             SET bytes = feature_storage_usage.bytes
             RETURNING bytes, rows",
        )
        .bind(db_id($s.guild_id))
        .bind(&$s.feature_id)
        .fetch_one(&mut *$tx)
        .await?;
        Usage {
            bytes: count(bytes),
            rows: count(rows),
        }
    }};
}

/// Inside transaction `$tx`: stores the scope's new usage if it changed.
macro_rules! save_usage {
    ($tx:ident, $s:expr, $before:expr, $after:expr) => {
        if $after != $before {
            sqlx::query(
                "UPDATE feature_storage_usage SET bytes = $3, rows = $4
                 WHERE guild_id = $1 AND feature_id = $2",
            )
            .bind(db_id($s.guild_id))
            .bind(&$s.feature_id)
            .bind(stored_count($after.bytes))
            .bind(stored_count($after.rows))
            .execute(&mut *$tx)
            .await?;
        }
    };
}

use townes_limits::storage::{board_row_bytes as board_bytes, kv_row_bytes as kv_bytes};

fn stored_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Usage {
    /// Usage after a row of `old` bytes (if there was one) is replaced by a row of `new`
    /// bytes (if there is one).
    fn replace(self, old: Option<u64>, new: Option<u64>) -> Usage {
        let mut u = self;
        if let Some(bytes) = old {
            u.bytes = u.bytes.saturating_sub(bytes);
            u.rows = u.rows.saturating_sub(1);
        }
        if let Some(bytes) = new {
            u.bytes = u.bytes.saturating_add(bytes);
            u.rows = u.rows.saturating_add(1);
        }
        u
    }
}

/// Refuses a write that takes usage past the quota. A write that does not grow a
/// measure is allowed even when the scope is already over (e.g. after a quota cut),
/// so features can always shrink.
fn check_quota(q: Quota, before: Usage, after: Usage) -> Result<(), StoreError> {
    if after.bytes > q.max_bytes && after.bytes > before.bytes {
        return Err(StoreError::QuotaExceeded(format!(
            "storage bytes: {} of {} used, this write needs {} more",
            before.bytes,
            q.max_bytes,
            after.bytes - before.bytes
        )));
    }
    if after.rows > q.max_rows && after.rows > before.rows {
        return Err(StoreError::QuotaExceeded(format!(
            "storage rows: {} of {} used, this write needs {} more",
            before.rows,
            q.max_rows,
            after.rows - before.rows
        )));
    }
    Ok(())
}

/// Keys, values and board names must be text Postgres can store (no NUL); keys and
/// board names must not be empty. Checked on both backends so they behave alike.
fn check_text(what: &str, text: &str, may_be_empty: bool) -> Result<(), StoreError> {
    if !may_be_empty && text.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "{what} must not be empty"
        )));
    }
    if text.contains('\0') {
        return Err(StoreError::InvalidArgument(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`, in
/// code-point (= UTF-8 byte) order, or `None` when there is none (empty prefix, or one
/// made only of U+10FFFF). `key >= prefix AND key < bound` is then exactly "starts with
/// prefix", with no wildcard characters to escape and no collation surprises.
pub(super) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A stored value shown in an error message: at most 64 characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// One caller's write, as the writer queues it (owned: it outlives the call's borrows).
#[derive(Debug)]
pub(super) struct Write {
    pub scope: Scope,
    pub op: Op,
}

#[derive(Debug)]
pub(super) enum Op {
    Kv {
        key: String,
        change: KvChange,
    },
    Score {
        board: String,
        subject: u64,
        change: ScoreChange,
    },
}

#[derive(Debug)]
pub(super) enum KvChange {
    /// `expected` as in [`Store::kv_set_if`].
    Set {
        expected: Option<Option<String>>,
        value: String,
        quota: Quota,
    },
    Increment {
        delta: i64,
        quota: Quota,
    },
    Delete,
}

#[derive(Debug)]
pub(super) enum ScoreChange {
    Set { score: i64, quota: Quota },
    Increment { delta: i64, quota: Quota },
    Remove,
}

/// What a write tells its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Whether it changed anything: a set-if's condition held, a delete or remove
    /// found its row (plain sets always answer `true`).
    Changed(bool),
    /// The value an increment reached.
    Reached(i64),
}

impl Answer {
    fn changed(self) -> bool {
        matches!(self, Answer::Changed(true))
    }

    fn reached(self) -> i64 {
        match self {
            Answer::Reached(n) => n,
            Answer::Changed(_) => unreachable!("only increments are asked what they reached"),
        }
    }
}

/// A write decided against its row's current content and the scope's usage: what to
/// store in the row (`None`: nothing, or the row is already deleted), the usage
/// afterwards, and the caller's answer.
struct Decided<T> {
    store: Option<T>,
    after: Usage,
    answer: Answer,
}

impl Write {
    /// The bytes of text it carries, to bound the size of a batch.
    pub(super) fn bytes(&self) -> usize {
        self.scope.feature_id.len()
            + match &self.op {
                Op::Kv {
                    key,
                    change:
                        KvChange::Set {
                            expected, value, ..
                        },
                } => {
                    key.len()
                        + value.len()
                        + expected.iter().flatten().map(String::len).sum::<usize>()
                }
                Op::Kv { key, .. } => key.len(),
                Op::Score { board, .. } => board.len(),
            }
    }
}

impl KvChange {
    /// The change to `key`, which holds `old`, in a scope using `before`; refusals
    /// come out here, before any data statement.
    fn decide(
        &self,
        key: &str,
        old: Option<&str>,
        before: Usage,
    ) -> Result<Decided<Cow<'_, str>>, StoreError> {
        let old_bytes = old.map(|v| kv_bytes(key, v));
        let (new, quota, answer) = match self {
            KvChange::Delete => {
                return Ok(Decided {
                    store: None,
                    after: before.replace(old_bytes, None),
                    answer: Answer::Changed(old.is_some()),
                });
            }
            KvChange::Set {
                expected: Some(expected),
                ..
            } if expected.as_deref() != old => {
                return Ok(Decided {
                    store: None,
                    after: before,
                    answer: Answer::Changed(false),
                });
            }
            KvChange::Set { value, quota, .. } => {
                (Cow::Borrowed(value.as_str()), *quota, Answer::Changed(true))
            }
            KvChange::Increment { delta, quota } => {
                let current = match old {
                    None => 0,
                    Some(v) => v.parse::<i64>().map_err(|_| {
                        StoreError::NotInteger(format!(
                            "key {key:?} holds {}, not a 64-bit integer",
                            shown(v)
                        ))
                    })?,
                };
                let next = current.checked_add(*delta).ok_or_else(|| {
                    StoreError::InvalidArgument(format!(
                        "adding {delta} to {current} at key {key:?} overflows a 64-bit integer"
                    ))
                })?;
                (Cow::Owned(next.to_string()), *quota, Answer::Reached(next))
            }
        };
        let after = before.replace(old_bytes, Some(kv_bytes(key, &new)));
        check_quota(quota, before, after)?;
        Ok(Decided {
            store: Some(new),
            after,
            answer,
        })
    }
}

impl ScoreChange {
    /// The change to a subject's entry on `board`, which holds `old`, in a scope using
    /// `before`; refusals come out here, before any data statement.
    fn decide(
        &self,
        board: &str,
        old: Option<i64>,
        before: Usage,
    ) -> Result<Decided<i64>, StoreError> {
        let old_bytes = old.map(|_| board_bytes(board));
        let (score, quota, answer) = match self {
            ScoreChange::Remove => {
                return Ok(Decided {
                    store: None,
                    after: before.replace(old_bytes, None),
                    answer: Answer::Changed(old.is_some()),
                });
            }
            ScoreChange::Set { score, quota } => (*score, *quota, Answer::Changed(true)),
            ScoreChange::Increment { delta, quota } => {
                let current = old.unwrap_or(0);
                let next = current.checked_add(*delta).ok_or_else(|| {
                    StoreError::InvalidArgument(format!(
                        "score {current} + {delta} on board {board:?} overflows a 64-bit integer"
                    ))
                })?;
                (next, *quota, Answer::Reached(next))
            }
        };
        let after = before.replace(old_bytes, Some(board_bytes(board)));
        check_quota(quota, before, after)?;
        Ok(Decided {
            store: Some(score),
            after,
            answer,
        })
    }
}

/// Why [`apply`] committed nothing.
pub(super) enum Failed {
    /// A statement failed and the transaction was rolled back: a database error (a
    /// lost connection, a deadlock, a row Postgres cannot index), not a refusal. Each
    /// write may still succeed on its own.
    Statement(sqlx::Error),
    /// The transaction could not begin or commit: the error is every write's.
    Transaction(sqlx::Error),
}

/// A write applied alone owns its failure, whichever it is.
impl From<Failed> for StoreError {
    fn from(failed: Failed) -> StoreError {
        match failed {
            Failed::Statement(error) | Failed::Transaction(error) => StoreError::Database(error),
        }
    }
}

/// Applies `writes` in one transaction and commits it; evaluates to each write's
/// answer or refusal, in order. Writes to one scope must be adjacent (the writer sorts
/// them), so each scope is locked, and its usage stored, once per transaction.
pub(super) async fn apply(
    db: &Db,
    writes: &[Write],
) -> Result<Vec<Result<Answer, StoreError>>, Failed> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await.map_err(Failed::Transaction)?;
        let applied: Result<_, sqlx::Error> = async {
            let mut answers = Vec::with_capacity(writes.len());
            for group in writes.chunk_by(|a, b| a.scope == b.scope) {
                let s = &group[0].scope;
                let before = lock_usage!(tx, s);
                let mut usage = before;
                for write in group {
                    let answer = match &write.op {
                        Op::Kv { key, change } => {
                            let old: Option<String> = if let KvChange::Delete = change {
                                sqlx::query_scalar(
                                    "DELETE FROM feature_kv
                                     WHERE guild_id = $1 AND feature_id = $2 AND key = $3
                                     RETURNING value",
                                )
                            } else {
                                sqlx::query_scalar(KV_VALUE)
                            }
                            .bind(db_id(s.guild_id))
                            .bind(&s.feature_id)
                            .bind(key)
                            .fetch_optional(&mut *tx)
                            .await?;
                            let decided = change.decide(key, old.as_deref(), usage);
                            if let Ok(Decided { store: Some(value), .. }) = &decided {
                                sqlx::query(
                                    "INSERT INTO feature_kv (guild_id, feature_id, key, value)
                                     VALUES ($1, $2, $3, $4)
                                     ON CONFLICT (guild_id, feature_id, key) DO UPDATE
                                     SET value = excluded.value",
                                )
                                .bind(db_id(s.guild_id))
                                .bind(&s.feature_id)
                                .bind(key)
                                .bind(value.as_ref())
                                .execute(&mut *tx)
                                .await?;
                            }
                            decided.map(|d| {
                                usage = d.after;
                                d.answer
                            })
                        }
                        Op::Score { board, subject, change } => {
                            let old: Option<i64> = if let ScoreChange::Remove = change {
                                sqlx::query_scalar(
                                    "DELETE FROM feature_scores
                                     WHERE guild_id = $1 AND feature_id = $2 AND board = $3
                                       AND subject = $4
                                     RETURNING score",
                                )
                            } else {
                                sqlx::query_scalar(
                                    "SELECT score FROM feature_scores
                                     WHERE guild_id = $1 AND feature_id = $2 AND board = $3
                                       AND subject = $4",
                                )
                            }
                            .bind(db_id(s.guild_id))
                            .bind(&s.feature_id)
                            .bind(board)
                            .bind(db_id(*subject))
                            .fetch_optional(&mut *tx)
                            .await?;
                            let decided = change.decide(board, old, usage);
                            if let Ok(Decided { store: Some(score), .. }) = &decided {
                                sqlx::query(
                                    "INSERT INTO feature_scores
                                         (guild_id, feature_id, board, subject, score)
                                     VALUES ($1, $2, $3, $4, $5)
                                     ON CONFLICT (guild_id, feature_id, board, subject) DO UPDATE
                                     SET score = excluded.score",
                                )
                                .bind(db_id(s.guild_id))
                                .bind(&s.feature_id)
                                .bind(board)
                                .bind(db_id(*subject))
                                .bind(*score)
                                .execute(&mut *tx)
                                .await?;
                            }
                            decided.map(|d| {
                                usage = d.after;
                                d.answer
                            })
                        }
                    };
                    answers.push(answer);
                }
                save_usage!(tx, s, before, usage);
            }
            Ok(answers)
        }
        .await;
        match applied {
            Ok(answers) => {
                tx.commit().await.map_err(Failed::Transaction)?;
                Ok(answers)
            }
            Err(error) => {
                // Roll back now: a dropped transaction is only rolled back when its
                // connection is next used, and until then it holds the scopes' locks,
                // which the writes about to be retried one by one need. A failed
                // rollback adds nothing to the statement's error.
                let _ = tx.rollback().await;
                Err(Failed::Statement(error))
            }
        }
    })
}

impl Store {
    /// Hands a write to the store's writer; answers once the commit that holds it
    /// is done.
    async fn write(&self, s: &Scope, op: Op) -> Result<Answer, StoreError> {
        self.writes
            .submit(Write {
                scope: s.clone(),
                op,
            })
            .await
    }

    pub async fn kv_get(&self, s: &Scope, key: &str) -> Result<Option<String>, StoreError> {
        let value = on_db!(&self.db, pool => {
            sqlx::query_scalar(KV_VALUE)
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(value)
    }

    /// Sets `key` to `value`. An overwrite counts the difference against the quota.
    pub async fn kv_set(
        &self,
        s: &Scope,
        key: &str,
        value: &str,
        q: Quota,
    ) -> Result<(), StoreError> {
        self.kv_set_if(s, key, None, value, q).await.map(|_| ())
    }

    /// Sets `key` to `value` when `expected` is `None`, or only when the key's
    /// current value is `Some(expected)` (`Some(None)`: only when it is
    /// absent). Returns whether it wrote. The comparison and the write happen
    /// under the scope's lock, so of two racing writers expecting the same
    /// value exactly one wins.
    pub async fn kv_set_if(
        &self,
        s: &Scope,
        key: &str,
        expected: Option<Option<&str>>,
        value: &str,
        q: Quota,
    ) -> Result<bool, StoreError> {
        check_text("key", key, false)?;
        check_text("value", value, true)?;
        let change = KvChange::Set {
            expected: expected.map(|e| e.map(str::to_owned)),
            value: value.to_owned(),
            quota: q,
        };
        let key = key.to_owned();
        Ok(self.write(s, Op::Kv { key, change }).await?.changed())
    }

    /// Deletes `key`, releasing its bytes and row. Returns whether it existed.
    pub async fn kv_delete(&self, s: &Scope, key: &str) -> Result<bool, StoreError> {
        let (key, change) = (key.to_owned(), KvChange::Delete);
        Ok(self.write(s, Op::Kv { key, change }).await?.changed())
    }

    /// Adds `delta` to the integer stored at `key` (a missing key counts as 0) and
    /// returns the new value. Atomic. Fails with [`StoreError::NotInteger`] if the
    /// stored value does not parse as an `i64`, and with
    /// [`StoreError::InvalidArgument`] if the sum overflows. A longer or shorter
    /// number adjusts the bytes used.
    pub async fn kv_increment(
        &self,
        s: &Scope,
        key: &str,
        delta: i64,
        q: Quota,
    ) -> Result<i64, StoreError> {
        check_text("key", key, false)?;
        let change = KvChange::Increment { delta, quota: q };
        let key = key.to_owned();
        Ok(self.write(s, Op::Kv { key, change }).await?.reached())
    }

    /// Up to `limit` pairs whose key starts with `prefix` (taken literally: `%` and `_`
    /// are ordinary characters), in key order (byte-wise).
    pub async fn kv_list(
        &self,
        s: &Scope,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let upper = prefix_upper_bound(prefix);
        let pairs = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT key, value FROM feature_kv
                 WHERE guild_id = $1 AND feature_id = $2
                   AND key >= $3 AND ($4 IS NULL OR key < $4)
                 ORDER BY key
                 LIMIT $5",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(prefix)
            .bind(upper.as_deref())
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(pairs)
    }

    /// Adds `delta` to a subject's score on a board (a missing entry counts as 0) and
    /// returns the new score. Atomic.
    pub async fn board_increment(
        &self,
        s: &Scope,
        board: &str,
        subject: u64,
        delta: i64,
        q: Quota,
    ) -> Result<i64, StoreError> {
        check_text("board", board, false)?;
        let change = ScoreChange::Increment { delta, quota: q };
        let board = board.to_owned();
        let op = Op::Score {
            board,
            subject,
            change,
        };
        Ok(self.write(s, op).await?.reached())
    }

    /// Sets a subject's score on a board.
    pub async fn board_set(
        &self,
        s: &Scope,
        board: &str,
        subject: u64,
        score: i64,
        q: Quota,
    ) -> Result<(), StoreError> {
        check_text("board", board, false)?;
        let change = ScoreChange::Set { score, quota: q };
        let board = board.to_owned();
        let op = Op::Score {
            board,
            subject,
            change,
        };
        self.write(s, op).await.map(|_| ())
    }

    /// Removes a subject from a board. Returns whether it was there.
    pub async fn board_remove(
        &self,
        s: &Scope,
        board: &str,
        subject: u64,
    ) -> Result<bool, StoreError> {
        let (board, change) = (board.to_owned(), ScoreChange::Remove);
        let op = Op::Score {
            board,
            subject,
            change,
        };
        Ok(self.write(s, op).await?.changed())
    }

    /// The best `limit` entries of a board: highest score first, ties by subject
    /// ascending; ranks are 1-based.
    pub async fn board_top(
        &self,
        s: &Scope,
        board: &str,
        limit: u32,
    ) -> Result<Vec<ScoreEntry>, StoreError> {
        let rows: Vec<(i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT subject, score FROM feature_scores
                 WHERE guild_id = $1 AND feature_id = $2 AND board = $3
                 ORDER BY score DESC, subject
                 LIMIT $4",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .zip(1u32..)
            .map(|((subject, score), rank)| ScoreEntry {
                subject: api_id(subject),
                score,
                rank,
            })
            .collect())
    }

    /// A subject's entry on a board, or `None` if it has none. Its rank is 1 + the
    /// number of entries ahead of it (higher score, or equal score and lower subject).
    pub async fn board_rank(
        &self,
        s: &Scope,
        board: &str,
        subject: u64,
    ) -> Result<Option<ScoreEntry>, StoreError> {
        let row: Option<(i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT me.score,
                        (SELECT COUNT(*) FROM feature_scores ahead
                         WHERE ahead.guild_id = me.guild_id
                           AND ahead.feature_id = me.feature_id
                           AND ahead.board = me.board
                           AND (ahead.score > me.score
                                OR (ahead.score = me.score AND ahead.subject < me.subject)))
                 FROM feature_scores me
                 WHERE me.guild_id = $1 AND me.feature_id = $2 AND me.board = $3
                   AND me.subject = $4",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(score, ahead)| ScoreEntry {
            subject,
            score,
            rank: u32::try_from(ahead.saturating_add(1)).unwrap_or(u32::MAX),
        }))
    }

    /// What a scope stores now (key-value and board rows together).
    pub async fn storage_usage(&self, s: &Scope) -> Result<Usage, StoreError> {
        let row: Option<(i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT bytes, rows FROM feature_storage_usage
                 WHERE guild_id = $1 AND feature_id = $2",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row
            .map(|(bytes, rows)| Usage {
                bytes: count(bytes),
                rows: count(rows),
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_covers_exactly_the_prefix() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a%").as_deref(), Some("a&"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    #[test]
    fn quota_allows_shrinking_when_over() {
        let q = Quota {
            max_bytes: 10,
            max_rows: 1,
        };
        let over = Usage { bytes: 20, rows: 2 };
        assert!(check_quota(q, over, Usage { bytes: 15, rows: 2 }).is_ok());
        assert!(check_quota(q, over, Usage { bytes: 21, rows: 2 }).is_err());
        assert!(check_quota(q, over, Usage { bytes: 20, rows: 3 }).is_err());
    }
}
