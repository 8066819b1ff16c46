//! Export and import bundles (issue 15; ADR 0018): a tenant's (or one
//! guild's) data, encrypted under the user's passphrase, moved to another
//! installation on either backend.
//!
//! [`Exports`] runs export jobs in the background (progress in the job's row
//! and on the live feed), serves finished bundles through signed, expiring
//! links, deletes them once expired, and imports bundles. [`export_bundle`] and
//! [`import_bundle`] do the work without a job, for `townes export` and
//! `townes import`.

pub mod bundle;

pub use bundle::{BundleData, BundleKind, ExportKey, Header};

use crate::live::{Live, LiveEvent, LiveKind};
use crate::runtime::{InstallError, Runtime};
use crate::store::StoreError;
use crate::store::export::{ExportJob, ExportRows, ExportScope, ImportError};
use bundle::ComponentBlob;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The largest bundle written or read unless configured.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// How long a download link works (and the bundle is kept) unless configured.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
/// A queued or running job whose row has not moved for this long was
/// interrupted (its process stopped): the sweep fails it.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(120);
/// A running job stamps its row at least this often.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How often a running job's progress is written when it moved.
const REPORT_EVERY: Duration = Duration::from_millis(500);
/// How often the sweep runs in a serving process.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
const INTERRUPTED: &str = "the export was interrupted (the server stopped); nothing was kept: start it again with POST /exports";

/// Everything an export or import can refuse, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the passphrase must be at least {min} characters; use a few random words, and keep it: the bundle cannot be opened without it",
        min = bundle::MIN_PASSPHRASE
    )]
    WeakPassphrase,
    #[error("wrong passphrase: this bundle was encrypted with another one")]
    WrongKey,
    #[error("damaged bundle: {0}; download or copy it again")]
    Damaged(String),
    #[error("not an export bundle (it does not start as one)")]
    NotABundle,
    #[error(
        "the bundle was made by a newer version (format {format}, schema {schema}; this installation has schema {our_schema}); upgrade first"
    )]
    Newer {
        format: u32,
        schema: i64,
        our_schema: i64,
    },
    #[error("the bundle would be {size} bytes; the limit is {max} (TOWNES_EXPORT_MAX_BYTES)")]
    TooLarge { size: u64, max: u64 },
    #[error("{0} not found")]
    NotFound(String),
    /// The target already has something the bundle holds.
    #[error("{0}")]
    Conflict(String),
    /// One export per tenant at a time.
    #[error("{0}; wait for it to finish (GET /exports/{{id}}), then start another")]
    Busy(String),
    #[error("a component in the bundle cannot be installed: {0}")]
    Component(String),
    /// A download link that is not valid (changed, or not ours).
    #[error("this download link is not valid")]
    BadLink,
    #[error("this download link expired at {0}; ask GET /exports/{{id}} for a new one")]
    LinkExpired(DateTime<Utc>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<ImportError> for ExportError {
    fn from(e: ImportError) -> ExportError {
        match e {
            ImportError::Conflict(message) => ExportError::Conflict(message),
            ImportError::Store(e) => ExportError::Store(e),
        }
    }
}

/// Where bundles go and how long they live.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Finished bundles: `<data dir>/exports`.
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub link_ttl: Duration,
    /// A queued or running job whose row stopped moving this long ago is
    /// failed by the sweep; longer than the heartbeat.
    pub stale_after: Duration,
}

impl ExportConfig {
    /// The defaults, with bundles under `data_dir`.
    pub fn new(data_dir: &std::path::Path) -> ExportConfig {
        ExportConfig {
            dir: data_dir.join("exports"),
            max_bytes: DEFAULT_MAX_BYTES,
            link_ttl: DEFAULT_LINK_TTL,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }
}

/// An export to start (what the offboarding flows call [`Exports::start`] with).
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub tenant_id: String,
    /// One guild of the tenant; `None`: the whole tenant.
    pub guild_id: Option<u64>,
    pub key: ExportKey,
    /// Written like an audit entry's `actor`.
    pub requested_by: String,
}

/// What an import wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    pub kind: BundleKind,
    pub tenant_id: String,
    pub guild_ids: Vec<u64>,
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// Export jobs, downloads and imports of one process.
pub struct Exports {
    runtime: Arc<Runtime>,
    live: Live,
    config: ExportConfig,
}

impl Exports {
    pub fn new(runtime: Arc<Runtime>, live: Live, config: ExportConfig) -> Exports {
        Exports {
            runtime,
            live,
            config,
        }
    }

    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// Queues an export and runs it in the background; the job's row (and
    /// live events in each exported guild) say how it goes. `NotFound` when
    /// the tenant, or the tenant's guild, does not exist.
    pub async fn start(self: &Arc<Self>, request: ExportRequest) -> Result<ExportJob, ExportError> {
        let scope = match request.guild_id {
            None => ExportScope::Tenant(request.tenant_id.clone()),
            Some(guild_id) => ExportScope::Guild {
                tenant_id: request.tenant_id.clone(),
                guild_id,
            },
        };
        let store = self.runtime.store();
        let missing = || ExportError::NotFound(describe(&scope));
        match &scope {
            ExportScope::Tenant(t) => store.tenant(t).await?.map(|_| ()).ok_or_else(missing)?,
            ExportScope::Guild {
                tenant_id,
                guild_id,
            } => store
                .guild(*guild_id)
                .await?
                .filter(|g| g.tenant_id.as_deref() == Some(tenant_id))
                .map(|_| ())
                .ok_or_else(missing)?,
        }
        let job = store
            .create_export_job(&scope, &request.requested_by)
            .await?
            .ok_or_else(|| {
                ExportError::Busy(format!(
                    "an export of tenant {} is already queued or running",
                    request.tenant_id
                ))
            })?;
        let this = self.clone();
        let id = job.id.clone();
        tokio::spawn(async move { this.run(id, scope, request.key).await });
        Ok(job)
    }

    /// A job by id.
    pub async fn job(&self, id: &str) -> Result<Option<ExportJob>, ExportError> {
        Ok(self.runtime.store().export_job(id).await?)
    }

    /// The signed link to a finished job's bundle, valid until the job
    /// expires; `None` while the job is not done (or after it expired).
    pub async fn download_url(&self, job: &ExportJob) -> Result<Option<String>, ExportError> {
        let Some(expires) = job.expires_at.filter(|e| *e > Utc::now()) else {
            return Ok(None);
        };
        let tag = self
            .runtime
            .file_links()
            .tag(&link_text(&job.id, expires.timestamp()))
            .await?;
        Ok(Some(format!(
            "{}/exports/{}/download?expires={}&sig={tag}",
            self.runtime.file_links().public_url(),
            job.id,
            expires.timestamp()
        )))
    }

    /// The bundle a download link grants, once its signature and expiry are
    /// checked.
    pub async fn download(
        &self,
        id: &str,
        expires: i64,
        sig: &str,
    ) -> Result<Vec<u8>, ExportError> {
        if !self
            .runtime
            .file_links()
            .verify_tag(&link_text(id, expires), sig)
            .await?
        {
            return Err(ExportError::BadLink);
        }
        let expires = DateTime::from_timestamp(expires, 0).ok_or(ExportError::BadLink)?;
        if expires <= Utc::now() {
            return Err(ExportError::LinkExpired(expires));
        }
        tokio::fs::read(self.bundle_path(id))
            .await
            .map_err(|_| ExportError::NotFound(format!("the bundle of export {id}")))
    }

    /// Restores a bundle into this installation (see [`import_bundle`]).
    pub async fn import(
        &self,
        bundle: &[u8],
        key: &ExportKey,
    ) -> Result<ImportReport, ExportError> {
        import_bundle(&self.runtime, bundle, key, self.config.max_bytes).await
    }

    /// Fails jobs interrupted by a stopped process and deletes their partial
    /// files, and deletes bundles whose links expired. Runs at start and then
    /// every [`SWEEP_EVERY`] in a serving process.
    pub async fn sweep(&self) -> Result<(), ExportError> {
        let store = self.runtime.store();
        let stale = Utc::now()
            - chrono::Duration::from_std(self.config.stale_after)
                .unwrap_or(chrono::Duration::minutes(2));
        for id in store.fail_stale_export_jobs(stale, INTERRUPTED).await? {
            let _ = tokio::fs::remove_file(self.partial_path(&id)).await;
        }
        let mut dir = match tokio::fs::read_dir(&self.config.dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(anyhow::Error::from(e).into()),
        };
        while let Some(entry) = dir.next_entry().await.map_err(anyhow::Error::from)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".bundle") else {
                continue;
            };
            let keep = store
                .export_job(id)
                .await?
                .and_then(|job| job.expires_at)
                .is_some_and(|e| e > Utc::now());
            if !keep {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }

    fn bundle_path(&self, id: &str) -> PathBuf {
        self.config.dir.join(format!("{id}.bundle"))
    }

    fn partial_path(&self, id: &str) -> PathBuf {
        self.config.dir.join(format!("{id}.partial"))
    }

    async fn run(self: Arc<Self>, id: String, scope: ExportScope, key: ExportKey) {
        let store = self.runtime.store().clone();
        let progress = Arc::new(std::sync::Mutex::new(Progress {
            step: "reading",
            done: 0,
            total: 0,
        }));
        let reporter = tokio::spawn(self.clone().report(
            id.clone(),
            scope.clone(),
            progress.clone(),
        ));
        let outcome = self.write(&id, &scope, &key, &progress).await;
        reporter.abort();
        let finished = match outcome {
            Ok((size, sha256)) => {
                let expires = Utc::now()
                    + chrono::Duration::from_std(self.config.link_ttl)
                        .unwrap_or(chrono::Duration::days(1));
                store
                    .finish_export_job(&id, Ok((size, &sha256, expires)))
                    .await
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(self.partial_path(&id)).await;
                tracing::warn!(export = %id, error = %e, "export failed");
                store.finish_export_job(&id, Err(&e.to_string())).await
            }
        };
        if let Err(e) = finished {
            tracing::error!(export = %id, error = %e, "cannot record the end of an export");
        }
        if let Ok(Some(job)) = store.export_job(&id).await {
            self.announce(&job, &scope).await;
        }
    }

    /// Writes the job's progress to its row and the live feed when it moved,
    /// and stamps the row at least every [`HEARTBEAT`] (the sign of a live
    /// job), until aborted.
    async fn report(
        self: Arc<Self>,
        id: String,
        scope: ExportScope,
        progress: Arc<std::sync::Mutex<Progress>>,
    ) {
        let store = self.runtime.store();
        let mut tick = tokio::time::interval(REPORT_EVERY);
        let mut last: Option<(Progress, tokio::time::Instant)> = None;
        loop {
            tick.tick().await;
            let now = progress.lock().expect("progress lock").clone();
            let due = match &last {
                None => true,
                Some((seen, at)) => *seen != now || at.elapsed() >= HEARTBEAT,
            };
            if !due {
                continue;
            }
            if store
                .set_export_progress(&id, now.step, now.done, now.total)
                .await
                .is_ok()
                && let Ok(Some(job)) = store.export_job(&id).await
            {
                self.announce(&job, &scope).await;
            }
            last = Some((now, tokio::time::Instant::now()));
        }
    }

    /// Builds the bundle into `<id>.partial`, then renames it: a crash never
    /// leaves a file that looks finished.
    async fn write(
        &self,
        id: &str,
        scope: &ExportScope,
        key: &ExportKey,
        progress: &std::sync::Mutex<Progress>,
    ) -> Result<(u64, String), ExportError> {
        let set = |step: &'static str, done: u64, total: u64| {
            *progress.lock().expect("progress lock") = Progress { step, done, total };
        };
        let bytes = export_bundle(
            &self.runtime,
            scope,
            key,
            self.config.max_bytes,
            |done, total| set("reading", done, total),
        )
        .await?;
        set("writing", 0, bytes.len() as u64);
        tokio::fs::create_dir_all(&self.config.dir)
            .await
            .map_err(anyhow::Error::from)?;
        let partial = self.partial_path(id);
        tokio::fs::write(&partial, &bytes)
            .await
            .map_err(anyhow::Error::from)?;
        tokio::fs::rename(&partial, self.bundle_path(id))
            .await
            .map_err(anyhow::Error::from)?;
        Ok((bytes.len() as u64, hex::encode(Sha256::digest(&bytes))))
    }

    /// Tells the dashboards of the exported guilds where the job is.
    async fn announce(&self, job: &ExportJob, scope: &ExportScope) {
        let guilds = match scope {
            ExportScope::Guild { guild_id, .. } => vec![*guild_id],
            ExportScope::Tenant(t) => match self.runtime.store().guilds_of_tenant(t).await {
                Ok(guilds) => guilds.into_iter().map(|g| g.id).collect(),
                Err(_) => return,
            },
        };
        let data = serde_json::json!({
            "export_id": job.id,
            "status": job.status.as_str(),
            "step": job.step,
            "done": job.done,
            "total": job.total,
            "error": job.error,
        });
        for guild in guilds {
            self.live.publish(LiveEvent::new(
                guild,
                LiveKind::ExportProgress,
                data.clone(),
            ));
        }
    }
}

/// Where a running job is: its step, and rows (or bytes) done of total.
#[derive(Clone, Debug, PartialEq)]
struct Progress {
    step: &'static str,
    done: u64,
    total: u64,
}

fn describe(scope: &ExportScope) -> String {
    match scope {
        ExportScope::Tenant(t) => format!("tenant {t}"),
        ExportScope::Guild { guild_id, .. } => format!("guild {guild_id}"),
    }
}

/// What a download link's signature covers. The `export` prefix keeps it
/// apart from file links, which the same key signs.
fn link_text(id: &str, expires: i64) -> String {
    format!("export\n{id}\n{expires}")
}

/// Reads `scope` with its components and seals it under `key`. `progress`
/// hears (guilds done, guilds) while rows are read.
pub async fn export_bundle(
    runtime: &Runtime,
    scope: &ExportScope,
    key: &ExportKey,
    max_bytes: u64,
    progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, ExportError> {
    let rows = runtime
        .store()
        .export_rows(scope, progress)
        .await?
        .ok_or_else(|| ExportError::NotFound(describe(scope)))?;
    let mut components: Vec<ComponentBlob> = Vec::new();
    let mut size = 0u64;
    for version in &rows.feature_versions {
        if components.iter().any(|c| c.sha256 == version.sha256) {
            continue;
        }
        let wasm = runtime
            .component_bytes(&version.sha256)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "component {} {} ({}) is unavailable: {e:#}",
                    version.feature_id,
                    version.version,
                    version.sha256
                )
            })?;
        size += wasm.len() as u64;
        if size > max_bytes {
            return Err(ExportError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        components.push(ComponentBlob {
            sha256: version.sha256.clone(),
            wasm,
        });
    }
    let (kind, guild_id) = match scope {
        ExportScope::Tenant(_) => (BundleKind::Tenant, None),
        ExportScope::Guild { guild_id, .. } => (BundleKind::Guild, Some(*guild_id)),
    };
    let data = BundleData { rows, components };
    let tenant_id = scope.tenant_id().to_string();
    let key = key.clone();
    let sealed =
        tokio::task::spawn_blocking(move || bundle::seal(&data, kind, &tenant_id, guild_id, &key))
            .await
            .map_err(anyhow::Error::from)??;
    if sealed.len() as u64 > max_bytes {
        return Err(ExportError::TooLarge {
            size: sealed.len() as u64,
            max: max_bytes,
        });
    }
    Ok(sealed)
}

/// Decrypts and checks a bundle without writing anything: its header and data.
pub async fn open_bundle(
    bundle: Vec<u8>,
    key: &ExportKey,
    max_bytes: u64,
) -> Result<(Header, BundleData), ExportError> {
    if bundle.len() as u64 > max_bytes {
        return Err(ExportError::TooLarge {
            size: bundle.len() as u64,
            max: max_bytes,
        });
    }
    let key = key.clone();
    tokio::task::spawn_blocking(move || bundle::open(&bundle, &key))
        .await
        .map_err(anyhow::Error::from)?
}

/// Restores a bundle: refused with the target unchanged for a wrong key, a
/// damaged bundle, one from a newer version, a tenant (tenant bundle) or guild
/// that exists already, or a component that does not validate or clashes with
/// an installed build. Components are validated and cached first (keyed by
/// content: harmless if the import then fails), then every row is written in
/// one transaction.
pub async fn import_bundle(
    runtime: &Runtime,
    bundle: &[u8],
    key: &ExportKey,
    max_bytes: u64,
) -> Result<ImportReport, ExportError> {
    let (header, data) = open_bundle(bundle.to_vec(), key, max_bytes).await?;
    check_consistent(&header, &data.rows)?;
    for version in &data.rows.feature_versions {
        let blob = data
            .components
            .iter()
            .find(|c| c.sha256 == version.sha256)
            .ok_or_else(|| {
                ExportError::Damaged(format!(
                    "the component of {} {} is missing",
                    version.feature_id, version.version
                ))
            })?;
        if hex::encode(Sha256::digest(&blob.wasm)) != blob.sha256 {
            return Err(ExportError::Damaged(format!(
                "component {} does not match its sha256",
                blob.sha256
            )));
        }
        let (id, v) = runtime
            .stage_component(&blob.wasm)
            .await
            .map_err(|e: InstallError| ExportError::Component(e.to_string()))?;
        if (id.as_str(), v.as_str()) != (version.feature_id.as_str(), version.version.as_str()) {
            return Err(ExportError::Damaged(format!(
                "component {} describes itself as {id} {v}, not {} {}",
                blob.sha256, version.feature_id, version.version
            )));
        }
    }
    runtime
        .store()
        .import_rows(&data.rows, header.kind == BundleKind::Tenant)
        .await?;
    Ok(ImportReport {
        kind: header.kind,
        tenant_id: header.tenant_id,
        guild_ids: data.rows.guild_ids(),
        counts: header.counts,
    })
}

/// The rows belong to the tenant the header names: a bundle cannot smuggle
/// rows of another tenant (or guild) in beside its own.
fn check_consistent(header: &Header, rows: &ExportRows) -> Result<(), ExportError> {
    let tenant = header.tenant_id.as_str();
    let guilds: Vec<i64> = rows.guilds.iter().map(|g| g.id).collect();
    let ours = |g: &i64| guilds.contains(g);
    let consistent = rows.tenants.len() == 1
        && rows.tenants[0].id == tenant
        && rows
            .guilds
            .iter()
            .all(|g| g.tenant_id.as_deref() == Some(tenant))
        && rows.guild_settings.iter().all(|r| ours(&r.guild_id))
        && rows.role_permissions.iter().all(|r| ours(&r.guild_id))
        && rows.command_cooldowns.iter().all(|r| ours(&r.guild_id))
        && rows.guild_features.iter().all(|r| ours(&r.guild_id))
        && rows.feature_kv.iter().all(|r| ours(&r.guild_id))
        && rows.feature_scores.iter().all(|r| ours(&r.guild_id))
        && rows.feature_storage_usage.iter().all(|r| ours(&r.guild_id))
        && rows.feature_files.iter().all(|r| ours(&r.guild_id))
        && rows.feature_files_usage.iter().all(|r| ours(&r.guild_id))
        && rows
            .audit_log
            .iter()
            .all(|r| r.guild_id.is_some_and(|g| ours(&g)))
        && rows.scheduled_jobs.iter().all(|r| ours(&r.guild_id))
        && rows.usage_counters.iter().all(|r| ours(&r.guild_id))
        && rows.billing_accounts.iter().all(|r| r.tenant_id == tenant)
        && rows.licenses.iter().all(|r| r.tenant_id == tenant)
        && rows.incidents.iter().all(|r| r.tenant_id == tenant);
    if consistent {
        Ok(())
    } else {
        Err(ExportError::Damaged(format!(
            "it holds rows that are not tenant {tenant}'s"
        )))
    }
}
