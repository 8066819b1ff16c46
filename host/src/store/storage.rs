//! Feature storage: key-value pairs and score boards per (guild, feature), under a quota.
//!
//! Every write runs in one transaction that starts by locking the scope's row in
//! `feature_storage_usage` (an upsert that changes nothing, so its first statement is a
//! write: on Postgres it takes the row lock, on SQLite the database write lock, waiting
//! under the busy timeout instead of failing). Writers to one scope are therefore
//! serialised: the usage they read is exact, increments are atomic, and a write refused
//! for quota rolls back with nothing changed.

use super::{Scope, ScoreEntry, Store, StoreError, Usage, api_id, count, db_id, db_limit};
use crate::grants::Quota;

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
fn prefix_upper_bound(prefix: &str) -> Option<String> {
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

impl Store {
    pub async fn kv_get(&self, s: &Scope, key: &str) -> Result<Option<String>, StoreError> {
        let value = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT value FROM feature_kv
                 WHERE guild_id = $1 AND feature_id = $2 AND key = $3",
            )
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
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<String> = sqlx::query_scalar(
                "SELECT value FROM feature_kv
                 WHERE guild_id = $1 AND feature_id = $2 AND key = $3",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if expected.is_some_and(|expected| expected != old.as_deref()) {
                tx.rollback().await?;
                return Ok(false);
            }
            let after = before.replace(
                old.as_deref().map(|v| kv_bytes(key, v)),
                Some(kv_bytes(key, value)),
            );
            if let Err(refused) = check_quota(q, before, after) {
                // Roll back now: a dropped transaction is only rolled back when its
                // connection is next used, and until then it holds the usage row lock.
                tx.rollback().await?;
                return Err(refused);
            }
            sqlx::query(
                "INSERT INTO feature_kv (guild_id, feature_id, key, value)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (guild_id, feature_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
            save_usage!(tx, s, before, after);
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Deletes `key`, releasing its bytes and row. Returns whether it existed.
    pub async fn kv_delete(&self, s: &Scope, key: &str) -> Result<bool, StoreError> {
        let deleted = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<String> = sqlx::query_scalar(
                "DELETE FROM feature_kv
                 WHERE guild_id = $1 AND feature_id = $2 AND key = $3
                 RETURNING value",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let after = before.replace(old.as_deref().map(|v| kv_bytes(key, v)), None);
            save_usage!(tx, s, before, after);
            tx.commit().await?;
            old.is_some()
        });
        Ok(deleted)
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
        let next = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<String> = sqlx::query_scalar(
                "SELECT value FROM feature_kv
                 WHERE guild_id = $1 AND feature_id = $2 AND key = $3",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let current = match old.as_deref() {
                None => 0,
                Some(v) => v.parse::<i64>().map_err(|_| {
                    StoreError::NotInteger(format!(
                        "key {key:?} holds {}, not a 64-bit integer",
                        shown(v)
                    ))
                })?,
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                StoreError::InvalidArgument(format!(
                    "adding {delta} to {current} at key {key:?} overflows a 64-bit integer"
                ))
            })?;
            let text = next.to_string();
            let after = before.replace(
                old.as_deref().map(|v| kv_bytes(key, v)),
                Some(kv_bytes(key, &text)),
            );
            if let Err(refused) = check_quota(q, before, after) {
                // Roll back now: a dropped transaction is only rolled back when its
                // connection is next used, and until then it holds the usage row lock.
                tx.rollback().await?;
                return Err(refused);
            }
            sqlx::query(
                "INSERT INTO feature_kv (guild_id, feature_id, key, value)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (guild_id, feature_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(key)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
            save_usage!(tx, s, before, after);
            tx.commit().await?;
            next
        });
        Ok(next)
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
        let next = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<i64> = sqlx::query_scalar(
                "SELECT score FROM feature_scores
                 WHERE guild_id = $1 AND feature_id = $2 AND board = $3 AND subject = $4",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .fetch_optional(&mut *tx)
            .await?;
            let current = old.unwrap_or(0);
            let next = current.checked_add(delta).ok_or_else(|| {
                StoreError::InvalidArgument(format!(
                    "score {current} + {delta} on board {board:?} overflows a 64-bit integer"
                ))
            })?;
            let after = before.replace(old.map(|_| board_bytes(board)), Some(board_bytes(board)));
            if let Err(refused) = check_quota(q, before, after) {
                // Roll back now: a dropped transaction is only rolled back when its
                // connection is next used, and until then it holds the usage row lock.
                tx.rollback().await?;
                return Err(refused);
            }
            sqlx::query(
                "INSERT INTO feature_scores (guild_id, feature_id, board, subject, score)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (guild_id, feature_id, board, subject) DO UPDATE
                 SET score = excluded.score",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .bind(next)
            .execute(&mut *tx)
            .await?;
            save_usage!(tx, s, before, after);
            tx.commit().await?;
            next
        });
        Ok(next)
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
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<i64> = sqlx::query_scalar(
                "SELECT score FROM feature_scores
                 WHERE guild_id = $1 AND feature_id = $2 AND board = $3 AND subject = $4",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .fetch_optional(&mut *tx)
            .await?;
            let after = before.replace(old.map(|_| board_bytes(board)), Some(board_bytes(board)));
            if let Err(refused) = check_quota(q, before, after) {
                // Roll back now: a dropped transaction is only rolled back when its
                // connection is next used, and until then it holds the usage row lock.
                tx.rollback().await?;
                return Err(refused);
            }
            sqlx::query(
                "INSERT INTO feature_scores (guild_id, feature_id, board, subject, score)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (guild_id, feature_id, board, subject) DO UPDATE
                 SET score = excluded.score",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .bind(score)
            .execute(&mut *tx)
            .await?;
            save_usage!(tx, s, before, after);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a subject from a board. Returns whether it was there.
    pub async fn board_remove(
        &self,
        s: &Scope,
        board: &str,
        subject: u64,
    ) -> Result<bool, StoreError> {
        let removed = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let before = lock_usage!(tx, s);
            let old: Option<i64> = sqlx::query_scalar(
                "DELETE FROM feature_scores
                 WHERE guild_id = $1 AND feature_id = $2 AND board = $3 AND subject = $4
                 RETURNING score",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(board)
            .bind(db_id(subject))
            .fetch_optional(&mut *tx)
            .await?;
            let after = before.replace(old.map(|_| board_bytes(board)), None);
            save_usage!(tx, s, before, after);
            tx.commit().await?;
            old.is_some()
        });
        Ok(removed)
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
