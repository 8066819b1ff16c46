//! Files features keep per (guild, feature) — transcripts, copied attachments —
//! under a quota of total bytes, files and bytes per file; and the secrets the
//! host makes once and every process shares (the key that signs file links).
//!
//! Every write runs in one transaction that first locks the scope's row in
//! `feature_files_usage` (an upsert that changes nothing, as feature storage
//! does), so concurrent writers to one scope are serialised and the usage each
//! is checked against is exact.

use super::{Scope, Store, StoreError, count, db_id, db_limit, now, storage::prefix_upper_bound};
use chrono::{DateTime, Utc};

/// A stored file, without its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

/// What a scope may keep in files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileQuota {
    pub max_bytes: u64,
    pub max_files: u64,
    pub max_file_bytes: u64,
}

/// What a scope keeps in files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileUsage {
    pub bytes: u64,
    pub files: u64,
}

type FileRow = (String, String, i64, DateTime<Utc>);
/// A [`FileRow`] and the file's bytes.
type FileWithData = (String, String, i64, DateTime<Utc>, Vec<u8>);

fn info((name, content_type, size, created_at): FileRow) -> FileInfo {
    FileInfo {
        name,
        content_type,
        size: count(size),
        created_at,
    }
}

/// Inside transaction `$tx`: creates the scope's files usage row if missing,
/// locks it, and evaluates to its [`FileUsage`].
macro_rules! lock_file_usage {
    ($tx:ident, $s:expr) => {{
        let (bytes, files): (i64, i64) = sqlx::query_as(
            "INSERT INTO feature_files_usage (guild_id, feature_id, bytes, files)
             VALUES ($1, $2, 0, 0)
             ON CONFLICT (guild_id, feature_id) DO UPDATE
             SET bytes = feature_files_usage.bytes
             RETURNING bytes, files",
        )
        .bind(db_id($s.guild_id))
        .bind(&$s.feature_id)
        .fetch_one(&mut *$tx)
        .await?;
        FileUsage {
            bytes: count(bytes),
            files: count(files),
        }
    }};
}

/// Inside transaction `$tx`: stores the scope's new files usage.
macro_rules! save_file_usage {
    ($tx:ident, $s:expr, $usage:expr) => {
        sqlx::query(
            "UPDATE feature_files_usage SET bytes = $3, files = $4
             WHERE guild_id = $1 AND feature_id = $2",
        )
        .bind(db_id($s.guild_id))
        .bind(&$s.feature_id)
        .bind(i64::try_from($usage.bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from($usage.files).unwrap_or(i64::MAX))
        .execute(&mut *$tx)
        .await?
    };
}

/// Inside transaction `$tx`: the size of scope `$s`'s file `$name`, if stored.
macro_rules! stored_size {
    ($tx:ident, $s:expr, $name:expr) => {{
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM feature_files
             WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
        )
        .bind(db_id($s.guild_id))
        .bind(&$s.feature_id)
        .bind($name)
        .fetch_optional(&mut *$tx)
        .await?;
        size
    }};
}

impl Store {
    /// Stores a file, replacing one of the same name, if the scope's quota
    /// holds it afterwards.
    pub async fn put_file(
        &self,
        s: &Scope,
        name: &str,
        content_type: &str,
        data: &[u8],
        q: FileQuota,
    ) -> Result<FileInfo, StoreError> {
        let size = data.len() as u64;
        if size > q.max_file_bytes {
            return Err(StoreError::QuotaExceeded(format!(
                "files: `{name}` is {size} bytes; a file may be at most {} bytes",
                q.max_file_bytes
            )));
        }
        let created_at = now();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let usage = lock_file_usage!(tx, s);
            let old = stored_size!(tx, s, name);
            let after = FileUsage {
                bytes: usage.bytes - old.map_or(0, count) + size,
                files: usage.files + u64::from(old.is_none()),
            };
            if after.bytes > q.max_bytes || after.files > q.max_files {
                return Err(StoreError::QuotaExceeded(format!(
                    "files: {} bytes in {} files would be kept; this guild's plan allows {} bytes in {} files",
                    after.bytes, after.files, q.max_bytes, q.max_files
                )));
            }
            sqlx::query(
                "INSERT INTO feature_files
                     (guild_id, feature_id, name, content_type, size, data, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (guild_id, feature_id, name) DO UPDATE
                 SET content_type = excluded.content_type, size = excluded.size,
                     data = excluded.data, created_at = excluded.created_at",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .bind(content_type)
            .bind(size as i64)
            .bind(data)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
            save_file_usage!(tx, s, after);
            tx.commit().await?;
        });
        Ok(FileInfo {
            name: name.to_string(),
            content_type: content_type.to_string(),
            size,
            created_at,
        })
    }

    /// A file and its bytes.
    pub async fn file(
        &self,
        s: &Scope,
        name: &str,
    ) -> Result<Option<(FileInfo, Vec<u8>)>, StoreError> {
        let row: Option<FileWithData> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT name, content_type, size, created_at, data FROM feature_files
                 WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(name, content_type, size, created_at, data)| {
            (info((name, content_type, size, created_at)), data)
        }))
    }

    /// A file's name, type, size and time, without its bytes.
    pub async fn file_info(&self, s: &Scope, name: &str) -> Result<Option<FileInfo>, StoreError> {
        let row: Option<FileRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT name, content_type, size, created_at FROM feature_files
                 WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(info))
    }

    /// Deletes a file; returns whether it existed.
    pub async fn delete_file(&self, s: &Scope, name: &str) -> Result<bool, StoreError> {
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let usage = lock_file_usage!(tx, s);
            let old = stored_size!(tx, s, name);
            let Some(old) = old else {
                return Ok(false);
            };
            sqlx::query(
                "DELETE FROM feature_files WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            let after = FileUsage {
                bytes: usage.bytes.saturating_sub(count(old)),
                files: usage.files.saturating_sub(1),
            };
            save_file_usage!(tx, s, after);
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Files whose names start with `prefix`, in name order, at most `limit`.
    pub async fn files(
        &self,
        s: &Scope,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<FileInfo>, StoreError> {
        let upper = prefix_upper_bound(prefix);
        let rows: Vec<FileRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT name, content_type, size, created_at FROM feature_files
                 WHERE guild_id = $1 AND feature_id = $2
                   AND name >= $3 AND ($4 IS NULL OR name < $4)
                 ORDER BY name
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
        Ok(rows.into_iter().map(info).collect())
    }

    /// What a scope keeps in files.
    pub async fn file_usage(&self, s: &Scope) -> Result<FileUsage, StoreError> {
        let row: Option<(i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT bytes, files FROM feature_files_usage
                 WHERE guild_id = $1 AND feature_id = $2",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map_or_else(FileUsage::default, |(bytes, files)| FileUsage {
                bytes: count(bytes),
                files: count(files),
            }),
        )
    }

    /// The host secret `name`: 32 random bytes made by whichever process asks
    /// first, the same for every process on this database afterwards.
    pub async fn host_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let fresh: [u8; 32] = rand::random();
        let secret: Vec<u8> = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO host_secrets (name, secret, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&fresh[..])
            .bind(now())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT secret FROM host_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?
        });
        Ok(secret)
    }
}
