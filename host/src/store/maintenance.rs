//! Looking after the database itself, without running the platform on it:
//! where it stands against this build's migrations (`townes check-config`),
//! an online copy of a SQLite database (`townes backup`) and putting one back
//! (`townes restore`). Unlike [`Store::connect`](super::Store::connect) none
//! of these migrates, creates a database, or starts the control plane.

use super::{Backend, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, StoreError, Target, parse_url};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
use sqlx::{Connection as _, PgConnection, SqliteConnection};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a check waits for the database to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Where a database stands against the migrations this build carries.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationReport {
    pub backend: Backend,
    /// `false`: there is no database yet (a SQLite file not created): the
    /// first start creates and migrates it.
    pub exists: bool,
    /// Migrations applied and known to this build.
    pub applied: usize,
    /// Known to this build and not applied: the next start (or `townes
    /// migrate`) applies them.
    pub pending: Vec<(i64, String)>,
    /// Applied but unknown to this build: a newer `townes` migrated the database.
    pub unknown: Vec<i64>,
    /// Applied, but their SQL is not this build's.
    pub changed: Vec<i64>,
    /// Started and never finished.
    pub failed: Vec<i64>,
}

impl MigrationReport {
    /// Why this build cannot run on the database, and what to do about it;
    /// `None` when it can (pending migrations are applied on start).
    pub fn refusal(&self) -> Option<(String, &'static str)> {
        let list = |versions: &[i64]| {
            versions
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.unknown.is_empty() {
            return Some((
                format!(
                    "it has migrations this townes does not know ({}): a newer townes migrated it",
                    list(&self.unknown)
                ),
                "run that version of townes (or a newer one), or restore a backup made before the upgrade",
            ));
        }
        if !self.failed.is_empty() {
            return Some((
                format!(
                    "migrations {} started and never finished",
                    list(&self.failed)
                ),
                "undo what they changed (docs/MIGRATIONS.md says what each does), delete their rows from _sqlx_migrations, then run `townes migrate`",
            ));
        }
        if !self.changed.is_empty() {
            return Some((
                format!(
                    "migrations {} were applied from other SQL than this build's: another build of townes made it",
                    list(&self.changed)
                ),
                "use the build that made it, or restore a backup this build made",
            ));
        }
        None
    }
}

/// Where the database at `url` stands against this build's migrations. A
/// SQLite file that does not exist is reported as such (not created); a
/// database that does not answer within 5 s is an error.
pub async fn migration_report(url: &str) -> Result<MigrationReport, StoreError> {
    match parse_url(url)? {
        Target::Sqlite(_, true) => Ok(MigrationReport::fresh(Backend::Sqlite)),
        Target::Sqlite(options, false) => {
            if !options.get_filename().exists() {
                return Ok(MigrationReport::fresh(Backend::Sqlite));
            }
            let mut db = SqliteConnection::connect_with(&options).await?;
            let report = sqlite_report(&mut db).await;
            db.close().await?;
            report
        }
        Target::Postgres(options) => {
            // One plain connection: a pool would retry and report only that
            // it timed out, not why (refused, unknown host, bad password).
            let mut db = tokio::time::timeout(ANSWER_WITHIN, PgConnection::connect_with(&options))
                .await
                .map_err(|_| {
                    StoreError::InvalidArgument(format!(
                        "Postgres did not answer within {ANSWER_WITHIN:?}"
                    ))
                })??;
            let report = postgres_report(&mut db).await;
            db.close().await?;
            report
        }
    }
}

async fn postgres_report(db: &mut PgConnection) -> Result<MigrationReport, StoreError> {
    let found: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *db)
        .await?;
    let applied = if found {
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&mut *db)
            .await?
    } else {
        Vec::new()
    };
    Ok(compare(Backend::Postgres, &POSTGRES_MIGRATIONS, applied))
}

impl MigrationReport {
    fn fresh(backend: Backend) -> MigrationReport {
        MigrationReport {
            exists: false,
            ..compare(backend, migrator(backend), Vec::new())
        }
    }
}

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

async fn sqlite_report(db: &mut SqliteConnection) -> Result<MigrationReport, StoreError> {
    let found: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *db)
    .await?;
    let applied = if found {
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
            .fetch_all(&mut *db)
            .await?
    } else {
        Vec::new()
    };
    Ok(compare(Backend::Sqlite, &SQLITE_MIGRATIONS, applied))
}

/// The migrations this build carries for `backend`, as (version,
/// description), oldest first.
pub fn known_migrations(backend: Backend) -> Vec<(i64, String)> {
    migrator(backend)
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

impl super::Store {
    /// Where this store's database stands against this build's migrations,
    /// read through its pool (for `/admin/migrations`; `townes check-config`
    /// uses [`migration_report`], which needs no store).
    pub async fn migration_status(&self) -> Result<MigrationReport, StoreError> {
        let applied: Vec<(i64, Vec<u8>, bool)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
                .fetch_all(pool)
                .await?
        });
        let backend = self.backend();
        Ok(compare(backend, migrator(backend), applied))
    }
}

/// `applied`: (version, checksum, success) rows of `_sqlx_migrations`.
fn compare(
    backend: Backend,
    migrator: &Migrator,
    applied: Vec<(i64, Vec<u8>, bool)>,
) -> MigrationReport {
    let known: Vec<_> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let mut report = MigrationReport {
        backend,
        exists: true,
        applied: 0,
        pending: Vec::new(),
        unknown: Vec::new(),
        changed: Vec::new(),
        failed: Vec::new(),
    };
    for (version, checksum, success) in &applied {
        match known.iter().find(|m| m.version == *version) {
            None => report.unknown.push(*version),
            Some(_) if !success => report.failed.push(*version),
            Some(m) if *m.checksum != checksum[..] => report.changed.push(*version),
            Some(_) => report.applied += 1,
        }
    }
    report.pending = known
        .iter()
        .filter(|m| !applied.iter().any(|(version, ..)| *version == m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    for list in [&mut report.unknown, &mut report.changed, &mut report.failed] {
        list.sort_unstable();
    }
    report
}

/// The SQLite file `url` names; `None` for Postgres and in-memory databases.
pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>, StoreError> {
    Ok(match parse_url(url)? {
        Target::Sqlite(options, false) => Some(options.get_filename().to_path_buf()),
        Target::Sqlite(_, true) | Target::Postgres(_) => None,
    })
}

/// Copies the SQLite database at `url` into the new file `to` with `VACUUM
/// INTO`: one read transaction, so the copy is consistent while the platform
/// keeps writing (WAL lets readers and the writer go on together). `to` is
/// created readable by its owner only (the database holds the file-link key)
/// and never overwritten. Returns the copy's size in bytes.
pub async fn backup_sqlite(url: &str, to: &Path) -> Result<u64, StoreError> {
    let Target::Sqlite(options, false) = parse_url(url)? else {
        return Err(StoreError::InvalidArgument(
            "only a SQLite file can be copied this way".into(),
        ));
    };
    let from = options.get_filename().to_path_buf();
    if !from.exists() {
        return Err(StoreError::InvalidArgument(format!(
            "there is no database at {} to back up; check DATABASE_URL",
            from.display()
        )));
    }
    // An empty file is the one thing VACUUM INTO writes over: making it first
    // refuses an existing backup and sets the mode before any byte lands.
    let mut new = std::fs::OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        new.mode(0o600);
    }
    new.open(to).map_err(|e| {
        StoreError::InvalidArgument(if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} exists already; give a new file name (a backup is never overwritten)",
                to.display()
            )
        } else {
            format!("cannot create {}: {e}", to.display())
        })
    })?;
    let copied = async {
        let mut db = SqliteConnection::connect_with(&options).await?;
        sqlx::query("VACUUM INTO $1")
            .bind(to.to_string_lossy().into_owned())
            .execute(&mut db)
            .await?;
        db.close().await?;
        Ok::<_, StoreError>(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// What a backup holds, as far as a restore checks it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupInfo {
    pub migrations: MigrationReport,
    /// The components (sha256) its installed feature versions need.
    pub components: Vec<String>,
}

/// Checks that `file` is a whole SQLite database this build can run on
/// (opened read-only: the file is not changed).
pub async fn check_backup(file: &Path) -> Result<BackupInfo, StoreError> {
    let not_ours = |why: String| {
        StoreError::InvalidArgument(format!(
            "{} is not a backup townes can restore: {why}",
            file.display()
        ))
    };
    if !file.is_file() {
        return Err(not_ours("there is no such file".into()));
    }
    let options = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .busy_timeout(ANSWER_WITHIN);
    let unreadable = |e: sqlx::Error| not_ours(format!("SQLite cannot read it ({e})"));
    let mut db = SqliteConnection::connect_with(&options)
        .await
        .map_err(unreadable)?;
    let checked = async {
        let verdict: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut db)
            .await
            .map_err(unreadable)?;
        if verdict != "ok" {
            return Err(not_ours(format!("it is damaged ({verdict})")));
        }
        let migrations = sqlite_report(&mut db).await?;
        if migrations.applied == 0 {
            return Err(not_ours("it has no townes migrations".into()));
        }
        if let Some((why, fix)) = migrations.refusal() {
            return Err(not_ours(format!("{why}; {fix}")));
        }
        let components = sqlx::query_scalar("SELECT DISTINCT sha256 FROM feature_versions")
            .fetch_all(&mut db)
            .await?;
        Ok(BackupInfo {
            migrations,
            components,
        })
    }
    .await;
    db.close().await?;
    checked
}

/// Puts the backup `file` (checked with [`check_backup`]) in place of the
/// SQLite database at `url`. Refuses while any process has that database
/// open (a running `townes`): the check takes SQLite's exclusive lock, which
/// every open connection blocks. The database it replaces is kept beside it
/// as `<name>.before-restore-<time>` (with its `-wal` if one is left); the
/// path is returned.
pub async fn restore_sqlite(file: &Path, url: &str) -> Result<Option<PathBuf>, StoreError> {
    let Some(target) = sqlite_file(url)? else {
        return Err(StoreError::InvalidArgument(
            "only a SQLite file can be restored this way".into(),
        ));
    };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    if target.exists() {
        settle_unused(&target).await?;
    }
    // Copy next to the target, then rename: the target is either the old
    // database or the whole new one, never half a file.
    let partial = sibling(&target, ".restoring");
    std::fs::copy(file, &partial).map_err(|e| io(&partial, e))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&partial, e))?;
    let aside = sibling(
        &target,
        &format!(
            ".before-restore-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ),
    );
    let kept = target.exists();
    if kept {
        std::fs::rename(&target, &aside).map_err(|e| io(&target, e))?;
    }
    // A WAL belongs to the file it was written for: left in place it would
    // be replayed into the restored database.
    for suffix in ["-wal", "-shm"] {
        let old = sibling(&target, suffix);
        if old.exists() {
            std::fs::rename(&old, sibling(&aside, suffix)).map_err(|e| io(&old, e))?;
        }
    }
    std::fs::rename(&partial, &target).map_err(|e| io(&target, e))?;
    Ok(kept.then_some(aside))
}

/// Makes sure no process has the database at `path` open, and folds its WAL
/// into the file so the file alone is the whole database.
async fn settle_unused(path: &Path) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    let in_use = || {
        StoreError::InvalidArgument(format!(
            "the database {} is in use (a running townes, or another program, has it open); stop it, then restore again",
            path.display()
        ))
    };
    let mut db = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| if is_busy(&e) { in_use() } else { e.into() })?;
    let settled = async {
        // With locking_mode=EXCLUSIVE the lock taken here is kept until the
        // connection closes, and no other connection may hold one meanwhile.
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut db)
            .await
            .map_err(|e| if is_busy(&e) { in_use() } else { e.into() })?;
        sqlx::query("COMMIT").execute(&mut db).await?;
        let (busy, ..): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut db)
            .await?;
        if busy != 0 {
            return Err(in_use());
        }
        Ok(())
    }
    .await;
    db.close().await?;
    settled
}

/// SQLITE_BUSY, whichever extended code: another connection holds a lock.
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::InvalidArgument(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_judged_against_the_migrations_this_build_carries() {
        let known: Vec<_> = SQLITE_MIGRATIONS
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .collect();
        let row = |i: usize, same: bool, success: bool| {
            let checksum = if same {
                known[i].checksum.to_vec()
            } else {
                vec![0]
            };
            (known[i].version, checksum, success)
        };
        let current = compare(
            Backend::Sqlite,
            &SQLITE_MIGRATIONS,
            (0..known.len()).map(|i| row(i, true, true)).collect(),
        );
        assert_eq!(current.applied, known.len());
        assert!(current.pending.is_empty() && current.refusal().is_none());

        let behind = compare(
            Backend::Sqlite,
            &SQLITE_MIGRATIONS,
            vec![row(0, true, true)],
        );
        assert_eq!(behind.pending.len(), known.len() - 1);
        assert!(behind.refusal().is_none(), "pending ones run on start");

        let newer = compare(
            Backend::Sqlite,
            &SQLITE_MIGRATIONS,
            vec![row(0, true, true), (9_999, vec![1], true)],
        );
        assert_eq!(newer.unknown, [9_999]);
        assert!(newer.refusal().unwrap().0.contains("a newer townes"));

        let odd = compare(
            Backend::Sqlite,
            &SQLITE_MIGRATIONS,
            vec![row(0, false, true), row(1, true, false)],
        );
        assert_eq!(odd.changed, [known[0].version]);
        assert_eq!(odd.failed, [known[1].version]);
        assert!(odd.refusal().unwrap().0.contains("never finished"));
    }
}
