//! Helpers shared by the integration tests (`mod common;` in a test file).
//!
//! [`each_backend`] gives a test one fresh, empty, migrated [`Store`] per backend, so the
//! same test body runs against SQLite and Postgres:
//!
//! ```ignore
//! mod common;
//!
//! #[tokio::test]
//! async fn something() {
//!     for (label, store, _guard) in common::each_backend().await {
//!         store.upsert_guild(&townes::store::Guild::new(1, "g", 2)).await.unwrap();
//!         assert!(store.guild(1).await.unwrap().is_some(), "{label}");
//!     }
//! }
//! ```
//!
//! - **SQLite**: a database file in a fresh temporary directory.
//! - **Postgres**: a fresh schema in the database at `TEST_DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`), used through the connection's
//!   `search_path`, so tests running in parallel never see each other's tables.
//!
//! Keep the [`Guard`] alive for as long as the store is used: dropping it deletes the
//! database (the temporary directory, or `DROP SCHEMA … CASCADE`).
//! [`Guard::url`] opens the same database again, e.g. to test a restart.
//!
//! If Postgres cannot be reached, the helper prints `skipping Postgres: <reason>` to
//! stderr and returns SQLite only, unless the `CI` environment variable is set (to
//! anything but empty, `0` or `false`): then it panics, so CI never passes without
//! Postgres.

#![allow(dead_code)]

pub mod harness;

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use townes::store::Store;

/// The Postgres server the tests use unless `TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Keeps a test database alive; dropping it deletes the database.
pub struct Guard {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The directory holding the SQLite file; deleted on drop.
    Sqlite(tempfile::TempDir),
    /// A Postgres schema, dropped through a separate connection to `admin_url`.
    Postgres { admin_url: String, schema: String },
}

impl Guard {
    /// The URL of this test database, for `Store::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, schema } = &self.cleanup else {
            return; // TempDir deletes itself.
        };
        let (admin_url, schema) = (admin_url.clone(), schema.clone());
        // Drop runs outside async, maybe inside a runtime: do the async work on a
        // thread with its own small runtime.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "warning: could not drop test schema {}: {e}",
                self.schema_name()
            ),
            Err(_) => eprintln!(
                "warning: dropping test schema {} panicked",
                self.schema_name()
            ),
        }
    }
}

impl Guard {
    fn schema_name(&self) -> &str {
        match &self.cleanup {
            Cleanup::Postgres { schema, .. } => schema,
            Cleanup::Sqlite(_) => "",
        }
    }
}

/// True when `CI` is set to something other than empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// One fresh, migrated store per available backend, labelled `"sqlite"` and
/// `"postgres"`. See the module documentation.
pub async fn each_backend() -> Vec<(String, Store, Guard)> {
    let mut backends = vec![sqlite().await];
    match postgres().await {
        Ok(backend) => backends.push(backend),
        Err(reason) if in_ci() => panic!("Postgres is required when CI is set: {reason}"),
        Err(reason) => eprintln!("skipping Postgres: {reason}"),
    }
    backends
}

/// A fresh SQLite store in a temporary directory.
pub async fn sqlite() -> (String, Store, Guard) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::connect(&url)
        .await
        .expect("open the SQLite test database");
    let guard = Guard {
        url,
        cleanup: Cleanup::Sqlite(dir),
    };
    ("sqlite".to_string(), store, guard)
}

/// A fresh Postgres store in its own schema, or why there cannot be one (server not
/// reachable, schema not creatable). Panics if the server works but the store does not.
pub async fn postgres() -> Result<(String, Store, Guard), String> {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_string());
    let schema = format!("test_{:016x}", rand::random::<u64>());

    let mut admin = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
        .await
        .map_err(|_| format!("no answer from {} within 5 s", redact(&admin_url)))?
        .map_err(|e| format!("cannot connect to {}: {e}", redact(&admin_url)))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
    admin.close().await.ok();

    // From here on the guard drops the schema, whatever happens.
    // A transaction left idle for 10 s is ended by the server. The guard's
    // drop blocks its thread until the schema is gone; a background task of
    // the test's runtime (the event journal's writer, say) caught between its
    // INSERT and COMMIT on that thread would otherwise hold a lock the DROP
    // waits for, forever.
    let separator = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{admin_url}{separator}options[search_path]={schema}&options[idle_in_transaction_session_timeout]=10000"
    );
    let guard = Guard {
        url,
        cleanup: Cleanup::Postgres { admin_url, schema },
    };
    // The server answered: a failure now is the store's, not the environment's.
    let store = Store::connect(guard.url())
        .await
        .unwrap_or_else(|e| panic!("open the Postgres test store: {e}"));
    Ok(("postgres".to_string(), store, guard))
}

/// The Redis server the tests use unless `TEST_REDIS_URL` says otherwise.
pub const DEFAULT_TEST_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The Redis URL for tests: `TEST_REDIS_URL`, else [`DEFAULT_TEST_REDIS_URL`].
/// Like Postgres: a test that finds it unreachable prints
/// `skipping: Redis not reachable at …` and returns, unless [`in_ci`] (then it
/// fails).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_REDIS_URL.to_string())
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Where cargo builds: `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> String {
    std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_string())
}

/// The path of a component built by `cargo xtask build-guests` (a crate under
/// `features/` or `host/tests/guests/`, by its library name).
pub fn component_path(name: &str) -> String {
    let path = format!("{}/wasm32-wasip2/release/{name}.wasm", target_dir());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing. Build the components first: `cargo xtask build-guests` (or run the suite with `cargo xtask test`)"
    );
    path
}

/// The bytes of a component built by `cargo xtask build-guests`.
pub fn component(name: &str) -> Vec<u8> {
    let path = component_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of every message an invocation sent, in order.
pub fn sent_texts(effects: &[townes::capabilities::Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            townes::capabilities::Effect::MessageSent { content, .. } => content.clone(),
            _ => None,
        })
        .collect()
}

/// The `townes` binary with a fresh SQLite database and data directory in `dir`
/// (`DATABASE_URL` = `sqlite://{dir}/townes.db`, `TOWNES_DATA_DIR` = `dir`), and
/// the dashboard API on a free port, so tests running at once do not collide.
pub fn townes_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_townes"));
    command
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/townes.db", dir.display()),
        )
        .env("TOWNES_DATA_DIR", dir)
        .env("TOWNES_API_ADDR", "127.0.0.1:0");
    command
}

/// Runs `runtime`'s due scheduled jobs every 250 ms, as `townes serve` does,
/// until the handle is aborted.
pub fn run_jobs(runtime: std::sync::Arc<townes::runtime::Runtime>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        loop {
            if let Err(error) = runtime.run_due_jobs(chrono::Utc::now(), 100).await {
                eprintln!("jobs: {error:#}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
    .abort_handle()
}

/// Waits up to 10 s until the async `condition` holds.
pub async fn wait_until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The custom id of the first component on a message whose id contains
/// `part` (the host namespaces them; clicks send them back whole).
pub fn custom_id(message: &townes_discord_sim::SimMessage, part: &str) -> String {
    message
        .components
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .find(|id| id.contains(part))
        .unwrap_or_else(|| panic!("no component `{part}` on {:?}", message.components))
}
