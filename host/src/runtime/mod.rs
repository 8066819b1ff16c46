//! The sandbox: one engine, validated and precompiled components, and a fresh,
//! limited instance per invocation.
//!
//! Per invocation, after waiting for a slot (see `slots`): a new `Store` whose
//! memories and tables together are capped (see `budget`), a CPU budget in real
//! CPU time that host calls spend too (see `cpu`; a ticker thread's epochs let
//! the guest yield to tokio every millisecond and be interrupted), host-call
//! fuel, a bounded WASI context, and a wall-clock budget around the whole call
//! (epochs cannot interrupt a guest parked in a host call; waits on Discord do
//! not count up to an allowance, see `wall`). The instance is dropped
//! afterwards; a trap or timeout counts against the (guild, feature) circuit
//! breaker, the host's own conditions (a full pool, a busy guild) never do.

mod breaker;
mod budget;
mod cpu;
mod engine;
pub mod extensions;
mod install;
mod invocation_discord;
pub mod limits;
mod slots;
pub mod structure;
mod usage;
pub(crate) mod wall;

pub use breaker::BreakerPolicy;
pub use budget::MemoryLimitExceeded;
pub use engine::Allocation;
pub use install::{InstallError, Validated, WORLD_VERSION};
pub use limits::{BASE_PLAN, FREE_PLAN, Limits, Plan, Plans};
pub use structure::{Structure, StructureCaps};

use crate::capabilities::log::{escape_controls, truncated};
use crate::capabilities::rates::Rates;
use crate::capabilities::{
    Calls, Capabilities, DiscordCtx, Effect, HasCapabilities,
    ai::AiCtx,
    audit::AuditCtx,
    config::ConfigCtx,
    files::{FileLinks, FilesCtx},
    http::HttpCtx,
    invocation::InvocationCtx,
    live::LiveCtx,
    log::LogCtx,
    scheduler::SchedulerCtx,
    storage::StorageCtx,
};
use crate::discord::Discord;
use crate::grants::Grant;
use crate::live::Live;
use crate::metrics::metrics;
use crate::shared_limits::SharedLimits;
use crate::store::{GuildFeature, GuildPolicy, GuildService, NewAuditEntry, Scope, Store};
use crate::wit::extensions::{
    ApiRequest, ApiResponse, Method, ModerationAction, ModerationEvent, Route,
};
use crate::wit::{
    self, Capability, Command, CommandInvocation, ComponentInteraction, Context, Event, EventKind,
    FeatureIndices, Manifest, Reply, ScheduledJob,
};
use extensions::Extensions;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, PoolConcurrencyLimitError, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Where file links point when no public URL is configured: the API's default address.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// How much a feature may print to stdout/stderr per invocation; the rest is dropped.
const STDIO_CAPTURE_BYTES: usize = 64 * 1024;
/// Feature versions kept loaded (pre-instantiated) at once. Each holds its
/// compiled code mapped; the pool, not this bound, caps live instances.
const LOADED_VERSIONS: u64 = 1_000;
/// How much of that a failure report in the host log shows.
const STDIO_REPORT_BYTES: usize = 2 * 1024;
/// The most `wasi:random` hands out per call (wasmtime's default is 64 MiB).
const MAX_RANDOM_BYTES: u64 = 64 * 1024;
/// WASI resources (streams, pollables) one invocation may hold at once.
const MAX_WASI_RESOURCES: usize = 256;
/// Failure reports per (guild, feature) per minute in the host log.
const FAILURE_REPORTS_PER_MINUTE: u32 = 10;
/// Scheduled jobs of one guild taken per round, and jobs run at once.
const JOBS_PER_GUILD: u32 = 2;
const JOBS_AT_ONCE: usize = 16;
/// Runs of a job the host could not complete before it is marked failed; also
/// the claims after which a job whose runners keep dying is (its runner may
/// have been killed by the job itself).
pub const JOB_ATTEMPTS: u32 = 5;
/// How long a claimed job stays with the runtime running it without a renewal:
/// a crashed runner's jobs are due again this long after its last renewal. Long
/// beside an invocation's wall-clock limit; short beside a job's usual delay.
pub const JOB_LEASE: Duration = Duration::from_secs(30);
/// The first retry delay of such a job; it doubles per attempt.
const JOB_RETRY_BASE: chrono::Duration = chrono::Duration::seconds(30);
/// How long finished jobs are kept, and how often they are purged.
const JOB_RETENTION: chrono::Duration = chrono::Duration::days(7);
const JOB_PURGE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where components and their precompiled artifacts are cached.
    pub data_dir: PathBuf,
    pub plans: Plans,
    /// Largest component accepted at install.
    pub max_component_bytes: usize,
    /// Instance slots in the pooling allocator (concurrent invocations).
    pub pool_instances: u32,
    /// What one instance may create; components over it are refused at install.
    pub structure: StructureCaps,
    /// How long an invocation waits for a slot before it is turned away.
    pub slot_wait: Duration,
    pub breaker: BreakerPolicy,
    /// The bot's user id, passed to features in their context.
    pub bot_user_id: u64,
    /// Where the dashboard API is reached from outside: file links start with it.
    pub public_url: String,
    /// How long scheduled jobs this runtime claimed stay its own without a
    /// renewal (renewed every third of it while they run). Default [`JOB_LEASE`].
    pub job_lease: Duration,
    /// The AI endpoint, key, models and bounds (`TOWNES_AI_*`); the default
    /// has none, and `ai` answers `unavailable`.
    pub ai: crate::ai::AiConfig,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            plans: Plans::default(),
            max_component_bytes: 64 << 20,
            pool_instances: 1000,
            structure: StructureCaps::default(),
            slot_wait: Duration::from_secs(10),
            breaker: BreakerPolicy::default(),
            bot_user_id: 0,
            public_url: DEFAULT_PUBLIC_URL.to_string(),
            job_lease: JOB_LEASE,
            ai: crate::ai::AiConfig::default(),
        }
    }
}

/// The state of one invocation: WASI, the memory budget and the clocks the
/// runtime keeps, and the capabilities' own contexts.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: budget::MemoryBudget,
    capabilities: Capabilities,
    wall: wall::WallClock,
    cpu: Arc<cpu::CpuMeter>,
}

impl HasCapabilities for HostState {
    fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.capabilities
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A store made for one invocation, with its stdio pipe and the Discord port
/// its capabilities act through (which counts the refused requests).
struct Fresh {
    store: wasmtime::Store<HostState>,
    stdio: MemoryOutputPipe,
    discord: Arc<invocation_discord::InvocationDiscord>,
}

/// A component ready to instantiate, with the manifest it described at
/// install and the optional exports it has.
struct Loaded {
    pre: InstancePre<HostState>,
    /// The required exports' indices (looked up, and checked, once at load).
    exports: FeatureIndices,
    extensions: Extensions,
    manifest: Manifest,
    /// The routes `api.routes` declared at install (none without `api`).
    routes: Arc<Vec<Route>>,
}

/// Why an invocation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("feature `{0}` is not enabled in this guild")]
    NotEnabled(String),
    #[error("feature is paused in this guild until {until} after repeated failures")]
    BreakerOpen {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The handler ran and returned an error value.
    #[error("the feature returned an error: {}", crate::capabilities::describe_error(.0))]
    Feature(wit::Error),
    #[error("the feature was stopped: {kind}: {message}")]
    Trap { kind: TrapKind, message: String },
    #[error("the feature did not finish within {0:?} of wall-clock time")]
    Timeout(Duration),
    #[error("the feature's reply was rejected: {0}")]
    InvalidReply(String),
    /// The host had no room for the invocation (a full pool, a guild over its
    /// share); nothing ran and the feature is not to blame.
    #[error("not run: {0}")]
    Busy(String),
    /// The guild is retired, or read-only and this is not someone's request
    /// (offboarding): nothing ran.
    #[error("not served: {0}")]
    NotServed(&'static str),
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

impl InvokeError {
    /// Faults the circuit breaker counts: the feature misbehaved, not the host.
    pub fn is_fault(&self) -> bool {
        matches!(self, InvokeError::Trap { .. } | InvokeError::Timeout(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// The CPU budget was spent.
    CpuLimit,
    /// Memory grew past the limit.
    MemoryLimit,
    /// The call stack ran out (unbounded recursion).
    StackOverflow,
    /// An access outside linear memory. In Rust guests this is almost always
    /// unbounded recursion running off the end of the shadow stack.
    OutOfBounds,
    /// The guest panicked or hit `unreachable`.
    Panic,
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::CpuLimit => "CPU limit exceeded",
            TrapKind::MemoryLimit => "memory limit exceeded",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::OutOfBounds => "out-of-bounds memory access (often unbounded recursion)",
            TrapKind::Panic => "panic",
            TrapKind::Other => "trap",
        })
    }
}

/// What an invocation did, whether or not it succeeded.
#[derive(Debug)]
pub struct Outcome {
    pub feature_id: String,
    /// `Some(reply)` for commands and components, `None` for the other handlers.
    pub result: Result<Option<Reply>, InvokeError>,
    /// The answer of a dashboard route (`Runtime::api`); `None` for the
    /// other handlers.
    pub response: Option<ApiResponse>,
    /// What `guild-commands.commands` returned; `None` for the other handlers.
    pub commands: Option<Vec<Command>>,
    pub effects: Vec<Effect>,
    pub logs: Vec<String>,
    /// What the guest wrote to stdout/stderr (a panic message lands here).
    pub stdio: String,
    pub elapsed: Duration,
    /// CPU time the invocation spent: instantiation, guest code and host calls.
    pub cpu: Duration,
}

enum Handler {
    Event(Event),
    /// A command, and its invoker's permissions in the channel.
    Command(CommandInvocation, u64),
    /// A click, menu choice or modal submit, and the invoker's permissions.
    Component(ComponentInteraction, u64),
    Schedule(ScheduledJob),
    Migrate(String),
    /// A dashboard route, and the caller's permissions in the guild.
    Api(ApiRequest),
    /// `lifecycle.enabled` / `lifecycle.disabled`.
    Enabled,
    Disabled,
    /// `moderation-events.on-moderation`.
    Moderation(ModerationEvent),
    /// `guild-ready.on-guild-ready`.
    GuildReady,
    /// `guild-commands.commands`.
    GuildCommands,
}

impl Handler {
    /// Why a guild with `service` does not run this; `None`: it does. A
    /// read-only guild answers people (commands, clicks, dashboard routes) and
    /// nothing else.
    fn refused_by(&self, service: GuildService) -> Option<&'static str> {
        match service {
            GuildService::Active => None,
            GuildService::Retired => Some("the hosted runner is retired in this guild"),
            GuildService::ReadOnly => match self {
                Handler::Command(..)
                | Handler::Component(..)
                | Handler::Api(_)
                | Handler::GuildCommands => None,
                _ => Some("the guild is read-only: only requests are answered"),
            },
        }
    }

    /// The member (or dashboard user) whose action this invocation answers.
    fn invoker_id(&self) -> Option<u64> {
        match self {
            Handler::Command(invocation, _) => Some(invocation.invoker.user.id),
            Handler::Component(interaction, _) => Some(interaction.invoker.user.id),
            Handler::Api(request) => request.caller.user_id,
            Handler::Event(_)
            | Handler::Schedule(_)
            | Handler::Migrate(_)
            | Handler::Enabled
            | Handler::Disabled
            | Handler::Moderation(_)
            | Handler::GuildReady
            | Handler::GuildCommands => None,
        }
    }

    /// What the `invocation` interface tells the feature.
    fn invocation(&self) -> InvocationCtx {
        match self {
            Handler::Command(_, permissions) | Handler::Component(_, permissions) => {
                InvocationCtx {
                    invoker_permissions: *permissions,
                }
            }
            Handler::Api(request) => InvocationCtx {
                invoker_permissions: request.caller.permissions,
            },
            Handler::Event(_)
            | Handler::Schedule(_)
            | Handler::Migrate(_)
            | Handler::Enabled
            | Handler::Disabled
            | Handler::Moderation(_)
            | Handler::GuildReady
            | Handler::GuildCommands => InvocationCtx::default(),
        }
    }
}

/// What [`Runtime::replay`] delivered.
#[derive(Debug)]
pub struct Replayed {
    /// Journaled events delivered again.
    pub events: usize,
    /// Each feature invocation they caused, in order.
    pub outcomes: Vec<Outcome>,
}

/// Whether an event is new from the gateway or delivered again by support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Live,
    Replay,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    allocation: Allocation,
    _ticker: engine::EpochTicker,
    store: Store,
    discord: Arc<dyn Discord>,
    config: RuntimeConfig,
    /// Loaded components by (feature id, version), at most [`LOADED_VERSIONS`]:
    /// one evicted is loaded again from its compiled artefact on next use.
    loaded: moka::sync::Cache<(String, String), Arc<Loaded>>,
    usage: usage::UsageMeter,
    slots: slots::Slots,
    rates: Arc<Rates>,
    /// Features' `http` requests: the one client they share, and its caps.
    http: Arc<crate::capabilities::http::Outbound>,
    /// Where features' `live` events go: the dashboard's bus.
    live: Live,
    /// Limits every process shares (command cooldowns, the API's rate limits).
    shared_limits: SharedLimits,
    file_links: Arc<FileLinks>,
    last_job_purge: std::sync::Mutex<Option<Instant>>,
    /// This runtime's random id: the `lease_owner` of the jobs it claimed.
    holder: String,
    /// Guilds catching up at once after a new gateway session (see
    /// [`Runtime::dispatch_guild_ready`]).
    catching_up: tokio::sync::Semaphore,
    /// The plan every guild of this installation runs on whatever its stored
    /// one, while a licence lease says so (self-hosted; see `licensing`).
    licensed: std::sync::RwLock<Option<Arc<(String, Plan)>>>,
    /// Chat completions for `ai`, metered and capped.
    ai: Arc<crate::ai::Ai>,
}

/// Guilds whose `guild-ready` handlers run at once. At start every guild
/// arrives within seconds, and catching up reads Discord (reactions, say):
/// a few at a time leaves Discord's rate limits to the members' commands.
pub const GUILDS_CATCHING_UP: usize = 4;

impl Runtime {
    pub fn new(
        config: RuntimeConfig,
        store: Store,
        discord: Arc<dyn Discord>,
    ) -> anyhow::Result<Self> {
        let (engine, allocation) = engine::build_engine(
            config.plans.max_memory_bytes(),
            config.pool_instances,
            &config.structure,
        )?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        crate::capabilities::add_to_linker(&mut linker)?;
        std::fs::create_dir_all(config.data_dir.join("components"))?;
        let file_links = Arc::new(FileLinks::new(store.clone(), &config.public_url));
        let ai =
            crate::ai::Ai::new(config.ai.clone(), store.clone()).map_err(anyhow::Error::msg)?;
        Ok(Runtime {
            ai: Arc::new(ai),
            file_links,
            _ticker: engine::EpochTicker::start(engine.clone()),
            engine,
            linker,
            allocation,
            store,
            discord,
            loaded: moka::sync::Cache::new(LOADED_VERSIONS),
            usage: usage::UsageMeter::default(),
            slots: slots::Slots::new(config.pool_instances, config.slot_wait),
            rates: Arc::default(),
            http: Arc::default(),
            live: Live::local(),
            shared_limits: SharedLimits::local(),
            last_job_purge: std::sync::Mutex::new(None),
            holder: format!("{:032x}", rand::random::<u128>()),
            catching_up: tokio::sync::Semaphore::new(GUILDS_CATCHING_UP),
            licensed: std::sync::RwLock::new(None),
            config,
        })
    }

    /// Sends features' `live` events to `live` (by default, a bus of this
    /// runtime's own that no dashboard hears).
    pub fn with_live(mut self, live: Live) -> Self {
        self.live = live;
        self
    }

    /// Sends features' `http` requests through `outbound` (by default the
    /// production client; tests pass [`Outbound::for_tests`](crate::capabilities::http::Outbound)).
    pub fn with_http(mut self, outbound: crate::capabilities::http::Outbound) -> Self {
        self.http = Arc::new(outbound);
        self
    }

    /// Shares command cooldowns and the API's rate limits through `limits`
    /// (by default each process keeps its own).
    pub fn with_shared_limits(mut self, limits: SharedLimits) -> Self {
        self.shared_limits = limits;
        self
    }

    /// What the command router and the API built on this runtime share with
    /// other processes.
    pub fn shared_limits(&self) -> &SharedLimits {
        &self.shared_limits
    }

    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// Where components, their compiled forms and export bundles are kept.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.data_dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The operator's plans (`TOWNES_PLANS`).
    pub fn plans(&self) -> &Plans {
        &self.config.plans
    }

    /// Runs every guild on `plan` whatever plan it has stored (a self-hosted
    /// installation's licence lease), or, with `None`, on its stored plan again.
    /// Memory is capped at the pool's slot size, fixed when the process started.
    pub fn set_installation_plan(&self, plan: Option<(String, Plan)>) {
        let plan = plan.map(|(name, mut plan)| {
            let slot_mib = (self.config.plans.max_memory_bytes() >> 20) as u32;
            plan.limits.memory_mib = plan.limits.memory_mib.min(slot_mib);
            Arc::new((name, plan))
        });
        *self.licensed.write().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// The name of the plan the installation runs on, when a licence sets it.
    pub fn installation_plan(&self) -> Option<String> {
        let licensed = self.licensed.read().unwrap_or_else(|e| e.into_inner());
        licensed.as_ref().map(|plan| plan.0.clone())
    }

    /// The plan a guild runs on now: the installation's, or the guild's own.
    pub fn plan_of(&self, stored: &str) -> (String, Plan) {
        let licensed = self.licensed.read().unwrap_or_else(|e| e.into_inner());
        match licensed.as_ref() {
            Some(plan) => (plan.0.clone(), plan.1.clone()),
            None => (stored.to_string(), self.config.plans.get(stored).clone()),
        }
    }

    /// What `ai` gives a guild on `stored`: its plan's cap and model.
    fn ai_plan_of(&self, stored: &str) -> crate::ai::AiPlan {
        let licensed = self.licensed.read().unwrap_or_else(|e| e.into_inner());
        match licensed.as_ref() {
            Some(plan) => crate::ai::AiPlan::of(&plan.1),
            None => crate::ai::AiPlan::of(self.config.plans.get(stored)),
        }
    }

    /// The AI service (`ai`), for the API's key and cap routes.
    pub fn ai(&self) -> &Arc<crate::ai::Ai> {
        &self.ai
    }

    /// What one invocation in a guild on `stored` may use (the hot path's
    /// [`Runtime::plan_of`]).
    fn limits_of(&self, stored: &str) -> Limits {
        let licensed = self.licensed.read().unwrap_or_else(|e| e.into_inner());
        match licensed.as_ref() {
            Some(plan) => plan.1.limits.clone(),
            None => self.config.plans.get(stored).limits.clone(),
        }
    }

    /// Where the platform is reached from outside (`TOWNES_PUBLIC_URL`).
    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// Signs and checks the links `files.link` hands out.
    pub fn file_links(&self) -> &FileLinks {
        &self.file_links
    }

    /// The manifest of an installed feature version: the one validated and
    /// stored at install, never asked of the component again.
    pub async fn manifest(&self, feature_id: &str, version: &str) -> anyhow::Result<Manifest> {
        let key = (feature_id.to_string(), version.to_string());
        if let Some(loaded) = self.loaded.get(&key) {
            return Ok(loaded.manifest.clone());
        }
        let row = self.installed(feature_id, version).await?;
        stored_manifest(&row)
    }

    /// The interfaces an installed version requests by importing them (`ai`,
    /// `http`), as recorded at install: its admin approves them beside the
    /// manifest's capabilities.
    pub async fn requested_imports(
        &self,
        feature_id: &str,
        version: &str,
    ) -> anyhow::Result<Vec<String>> {
        let row = self.installed(feature_id, version).await?;
        Ok(extensions::stored_imports(&row.manifest))
    }

    /// Delivers an event to every feature enabled in the guild that subscribed
    /// to its kind. Features run one after another; one failing, or failing to
    /// load, never stops the others. An event some feature receives is
    /// journaled (without waiting) for [`Runtime::replay`].
    pub async fn dispatch_event(
        &self,
        guild_id: u64,
        event: &Event,
    ) -> anyhow::Result<Vec<Outcome>> {
        let started = Instant::now();
        self.usage.event(guild_id);
        let kind = event_kind(event);
        let dispatched = self.deliver(guild_id, event, Delivery::Live).await;
        metrics().record_event(crate::metrics::event_kind_label(kind), started.elapsed());
        dispatched
    }

    /// Delivers the guild's last `last` journaled events again, oldest first,
    /// to the features enabled in it now, through the same path as live
    /// events. Replays are neither journaled again nor counted as usage; their
    /// log lines carry `replay = true`, so what features did is attributable.
    pub async fn replay(&self, guild_id: u64, last: u32) -> anyhow::Result<Replayed> {
        use tracing::Instrument as _;
        let entries = self.store.journal_tail(guild_id, last).await?;
        let span = tracing::info_span!("replay", guild = guild_id, replay = true);
        let mut outcomes = Vec::new();
        for entry in &entries {
            outcomes.extend(
                self.deliver(guild_id, &entry.event, Delivery::Replay)
                    .instrument(span.clone())
                    .await?,
            );
        }
        tracing::info!(parent: &span, events = entries.len(), invocations = outcomes.len(), "replayed journaled events");
        Ok(Replayed {
            events: entries.len(),
            outcomes,
        })
    }

    async fn deliver(
        &self,
        guild_id: u64,
        event: &Event,
        delivery: Delivery,
    ) -> anyhow::Result<Vec<Outcome>> {
        let kind = event_kind(event);
        let mut outcomes = Vec::new();
        // Only guilds where a feature listens cost a journal entry.
        let mut journaled = delivery == Delivery::Replay;
        let policy = self.store.guild_policy(guild_id).await?;
        for gf in &policy.features {
            if !gf.enabled {
                continue;
            }
            let loaded = match self.load(&gf.feature_id, &gf.version).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    let started = Instant::now();
                    outcomes.push(
                        Outcome::failed(&gf.feature_id, InvokeError::Host(e), started).counted(),
                    );
                    continue;
                }
            };
            if loaded.manifest.events.contains(&kind) {
                if !journaled {
                    self.store
                        .journal(guild_id, crate::metrics::event_kind_label(kind), event);
                    journaled = true;
                }
                let handler = Handler::Event(event.clone());
                outcomes.push(self.invoke(&policy, gf, loaded, handler).await);
            }
        }
        Ok(outcomes)
    }

    /// Records moderation done outside the platform (a ban in Discord's own
    /// interface) in the guild's audit log, as its moderator's act, and
    /// delivers it to every feature enabled in the guild that exports
    /// `moderation-events` and holds `moderation` there, one after another.
    pub async fn dispatch_moderation(
        &self,
        guild_id: u64,
        event: &ModerationEvent,
    ) -> anyhow::Result<Vec<Outcome>> {
        let action = match event.action {
            ModerationAction::Ban => "moderation.ban",
            ModerationAction::Unban => "moderation.unban",
            ModerationAction::Kick => "moderation.kick",
            ModerationAction::Timeout => "moderation.timeout",
            ModerationAction::TimeoutLifted => "moderation.timeout_lifted",
        };
        self.store
            .audit(&NewAuditEntry {
                guild_id: Some(guild_id),
                actor: event
                    .moderator_id
                    .map_or_else(|| "discord".into(), |id| format!("user:{id}")),
                action: action.into(),
                feature_id: None,
                details: serde_json::json!({
                    "target": event.target_id.to_string(),
                    "reason": event.reason,
                    "until": event.until,
                    "external": true,
                }),
            })
            .await?;
        self.invoke_each_enabled(guild_id, |gf, loaded| {
            let requested = loaded
                .manifest
                .capabilities
                .iter()
                .any(|r| r.capability == Capability::Moderation);
            (gf.grants.capabilities.contains(Capability::Moderation)
                && requested
                && loaded.extensions.moderation_events.is_some())
            .then(|| Handler::Moderation(event.clone()))
        })
        .await
    }

    /// Tells the guild's enabled features that export `guild-ready` that the
    /// platform is back in the guild (a new gateway session), so they can
    /// reconcile what happened while it was away. At most
    /// [`GUILDS_CATCHING_UP`] guilds catch up at once; the others wait.
    pub async fn dispatch_guild_ready(&self, guild_id: u64) -> anyhow::Result<Vec<Outcome>> {
        let _turn = self.catching_up.acquire().await?;
        self.invoke_each_enabled(guild_id, |_, loaded| {
            loaded
                .extensions
                .guild_ready
                .is_some()
                .then_some(Handler::GuildReady)
        })
        .await
    }

    /// Invokes, one after the other, each feature enabled in the guild for
    /// which `handler` gives a handler (none: it is not for this one). A
    /// feature that cannot be loaded is a failed outcome, not an error.
    async fn invoke_each_enabled(
        &self,
        guild_id: u64,
        handler: impl Fn(&GuildFeature, &Loaded) -> Option<Handler>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let policy = self.store.guild_policy(guild_id).await?;
        let mut outcomes = Vec::new();
        for gf in policy.features.iter().filter(|gf| gf.enabled) {
            let loaded = match self.load(&gf.feature_id, &gf.version).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    let started = Instant::now();
                    outcomes.push(
                        Outcome::failed(&gf.feature_id, InvokeError::Host(e), started).counted(),
                    );
                    continue;
                }
            };
            if let Some(handler) = handler(gf, &loaded) {
                outcomes.push(self.invoke(&policy, gf, loaded, handler).await);
            }
        }
        Ok(outcomes)
    }

    pub async fn command(
        &self,
        guild_id: u64,
        feature_id: &str,
        invocation: CommandInvocation,
        invoker_permissions: u64,
    ) -> Outcome {
        self.usage.command(guild_id);
        let name = invocation.name.clone();
        let outcome = self
            .invoke_enabled(
                guild_id,
                feature_id,
                Handler::Command(invocation, invoker_permissions),
            )
            .await;
        if !matches!(outcome.result, Err(InvokeError::NotEnabled(_))) {
            metrics().record_command(feature_id, &name);
        }
        outcome
    }

    pub async fn component(
        &self,
        guild_id: u64,
        feature_id: &str,
        interaction: ComponentInteraction,
        invoker_permissions: u64,
    ) -> Outcome {
        self.invoke_enabled(
            guild_id,
            feature_id,
            Handler::Component(interaction, invoker_permissions),
        )
        .await
    }

    /// Calls one of a feature's dashboard routes in a guild where it is
    /// enabled. The caller's rights were checked and the body validated
    /// against the route's schema by the API; the answer is in
    /// [`Outcome::response`].
    /// A dashboard route. After one that changes something (any method but
    /// GET) answered, the commands the feature defines in the guild are read
    /// again ([`Runtime::refresh_feature_commands`]).
    pub async fn api(&self, guild_id: u64, feature_id: &str, request: ApiRequest) -> Outcome {
        let changes = request.method != Method::Get;
        let outcome = self
            .invoke_enabled(guild_id, feature_id, Handler::Api(request))
            .await;
        if changes
            && outcome.result.is_ok()
            && let Err(error) = self.refresh_feature_commands(guild_id, feature_id).await
        {
            tracing::warn!(guild = guild_id, feature = %feature_id, %error, "could not read the commands the feature defines");
        }
        outcome
    }

    /// Asks an enabled feature that exports `guild-commands` for the commands
    /// it defines in the guild, checks them like a manifest's, and stores them
    /// (the command sync then registers them with the guild's). A feature
    /// without the export defines none. Nothing is stored when the feature
    /// fails or returns commands that break the rules; the error says why.
    pub async fn refresh_feature_commands(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> anyhow::Result<()> {
        let policy = self.store.guild_policy(guild_id).await?;
        let Some(gf) = policy.feature(feature_id).filter(|gf| gf.enabled) else {
            return Ok(());
        };
        let loaded = self.load(&gf.feature_id, &gf.version).await?;
        if loaded.extensions.guild_commands.is_none() {
            return Ok(());
        }
        let outcome = self
            .invoke(&policy, gf, loaded, Handler::GuildCommands)
            .await;
        outcome.result?;
        let commands = outcome.commands.unwrap_or_default();
        install::validate_guild_commands(&commands)
            .map_err(|why| anyhow::anyhow!("the commands {feature_id} defines: {why}"))?;
        let stored = policy
            .feature_commands
            .iter()
            .find(|d| d.feature_id == feature_id)
            .map_or(&[][..], |d| &d.commands[..]);
        if stored != commands.as_slice() {
            self.store
                .set_feature_commands(guild_id, feature_id, &commands)
                .await?;
        }
        Ok(())
    }

    /// The routes an installed version serves (empty without `api`).
    pub async fn routes(&self, feature_id: &str, version: &str) -> anyhow::Result<Arc<Vec<Route>>> {
        Ok(self.load(feature_id, version).await?.routes.clone())
    }

    /// Tells a feature it was enabled (`true`) or disabled in a guild, if it
    /// exports `lifecycle`; a component without it succeeds at once. Runs
    /// whether or not the guild's row is enabled, so a feature being
    /// disabled still holds its grants for the call.
    pub async fn lifecycle(&self, guild_id: u64, feature_id: &str, enabled: bool) -> Outcome {
        let handler = if enabled {
            Handler::Enabled
        } else {
            Handler::Disabled
        };
        self.invoke_installed(guild_id, feature_id, handler, false)
            .await
    }

    /// Moves a guild's feature to the version its row now names by calling
    /// `migrate`, whether or not the feature is currently enabled there.
    pub async fn migrate(&self, guild_id: u64, feature_id: &str, from_version: &str) -> Outcome {
        let handler = Handler::Migrate(from_version.to_string());
        self.invoke_installed(guild_id, feature_id, handler, false)
            .await
    }

    /// Claims and runs up to `limit` scheduled jobs that are due, several at a
    /// time and fairly across guilds (see [`Store::claim_due_jobs`]): of
    /// runtimes sharing a database, each due job is run by the one that claimed
    /// it, whose lease on it is renewed while the round runs. A job whose
    /// runner died is due again once that lease ran out; one claimed more than
    /// [`JOB_ATTEMPTS`] times is marked failed instead of run again. A job whose
    /// feature is no longer enabled is cancelled; one the host could not run
    /// (the feature paused, the host busy or failing) is retried later, up to
    /// [`JOB_ATTEMPTS`] times; one that failed in the feature is marked failed.
    /// Returns the outcomes of the jobs that ran.
    pub async fn run_due_jobs(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Outcome>> {
        use crate::store::JobEnd;
        use futures_util::StreamExt;
        self.purge_finished_jobs(now).await?;
        let lease = self.config.job_lease;
        let claimed = self
            .store
            .claim_due_jobs(&self.holder, now, lease, limit, JOBS_PER_GUILD)
            .await?;
        let (doomed, due): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .partition(|job| job.claims > JOB_ATTEMPTS);
        for job in doomed {
            let reason = format!(
                "claimed {} times without finishing: the process running it stopped each time",
                job.claims
            );
            tracing::warn!(job = %job.id, guild = job.scope.guild_id, feature = %job.scope.feature_id, %reason, "scheduled job given up");
            self.store
                .finish_job(&job.id, JobEnd::Failed, Some(&reason))
                .await?;
        }
        let run = futures_util::stream::iter(due.into_iter().map(|job| self.run_job(job)))
            .buffer_unordered(JOBS_AT_ONCE)
            .collect::<Vec<anyhow::Result<Option<Outcome>>>>();
        tokio::pin!(run);
        let mut renew = tokio::time::interval((lease / 3).max(Duration::from_millis(1)));
        renew.tick().await;
        let finished = loop {
            tokio::select! {
                finished = &mut run => break finished,
                _ = renew.tick() => {
                    let until = crate::store::lease_end(chrono::Utc::now().max(now), lease);
                    if let Err(error) = self.store.renew_job_leases(&self.holder, until).await {
                        tracing::warn!(%error, "cannot renew the leases of running scheduled jobs");
                    }
                }
            }
        };
        finished.into_iter().filter_map(Result::transpose).collect()
    }

    async fn run_job(&self, job: crate::store::ScheduledJob) -> anyhow::Result<Option<Outcome>> {
        use crate::store::JobEnd;
        let handler = Handler::Schedule(ScheduledJob {
            id: job.id.clone(),
            name: job.name.clone(),
            payload: job.payload.clone(),
        });
        // A job claimed again after its runner died sends the same messages.
        let outcome = crate::discord::delivery::handling(
            format!("job:{}", job.id),
            self.invoke_enabled(job.scope.guild_id, &job.scope.feature_id, handler),
        )
        .await;
        let store = &self.store;
        let retry_at = |earliest: chrono::DateTime<chrono::Utc>| {
            let backoff = JOB_RETRY_BASE * 2i32.pow(job.attempts.min(10));
            earliest.max(chrono::Utc::now() + backoff)
        };
        match &outcome.result {
            Ok(_) => store.complete_job(&job.id).await?,
            Err(InvokeError::NotEnabled(_)) => {
                store
                    .finish_job(
                        &job.id,
                        JobEnd::Cancelled,
                        Some("the feature is not enabled"),
                    )
                    .await?;
                return Ok(None);
            }
            Err(
                e @ (InvokeError::BreakerOpen { .. } | InvokeError::Busy(_) | InvokeError::Host(_)),
            ) if job.attempts + 1 < JOB_ATTEMPTS => {
                let earliest = match e {
                    InvokeError::BreakerOpen { until } => *until,
                    _ => chrono::Utc::now(),
                };
                store
                    .retry_job(&job.id, retry_at(earliest), &e.to_string())
                    .await?;
            }
            Err(e) => {
                store
                    .finish_job(&job.id, JobEnd::Failed, Some(&e.to_string()))
                    .await?
            }
        }
        Ok(Some(outcome))
    }

    /// Deletes finished jobs older than [`JOB_RETENTION`], at most once per
    /// [`JOB_PURGE_EVERY`].
    async fn purge_finished_jobs(&self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
        {
            let mut last = self.last_job_purge.lock().unwrap();
            if last.is_some_and(|at| at.elapsed() < JOB_PURGE_EVERY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let purged = self.store.purge_finished_jobs(now - JOB_RETENTION).await?;
        if purged > 0 {
            tracing::info!(purged, "purged finished scheduled jobs");
        }
        Ok(())
    }

    async fn invoke_enabled(&self, guild_id: u64, feature_id: &str, handler: Handler) -> Outcome {
        self.invoke_installed(guild_id, feature_id, handler, true)
            .await
    }

    async fn invoke_installed(
        &self,
        guild_id: u64,
        feature_id: &str,
        handler: Handler,
        enabled_only: bool,
    ) -> Outcome {
        let started = Instant::now();
        let prepared = async {
            let policy = self.store.guild_policy(guild_id).await?;
            let Some(gf) = policy
                .feature(feature_id)
                .filter(|gf| gf.enabled || !enabled_only)
            else {
                return Ok(None);
            };
            let loaded = self.load(&gf.feature_id, &gf.version).await?;
            anyhow::Ok(Some((gf.clone(), loaded, policy.clone())))
        };
        match prepared.await {
            Ok(Some((gf, loaded, policy))) => self.invoke(&policy, &gf, loaded, handler).await,
            Ok(None) => Outcome::failed(
                feature_id,
                InvokeError::NotEnabled(feature_id.to_string()),
                started,
            ),
            Err(e) => Outcome::failed(feature_id, InvokeError::Host(e), started).counted(),
        }
    }

    /// Every invocation goes through here. Lines logged while it runs (the
    /// feature's own `log` calls, the host's about it) carry the guild and the
    /// feature from its span.
    async fn invoke(
        &self,
        policy: &GuildPolicy,
        gf: &GuildFeature,
        loaded: Arc<Loaded>,
        handler: Handler,
    ) -> Outcome {
        use tracing::Instrument as _;
        // ERROR only decides whether the span exists, not how its lines show:
        // it must exist under every filter that lets a line inside it through
        // (the default shows warnings only). One span per invocation; its
        // fields are formatted once, when a subscriber records it.
        let span = tracing::error_span!(
            "invocation",
            guild = gf.guild_id,
            feature = %gf.feature_id
        );
        self.invoke_in_span(policy, gf, loaded, handler)
            .instrument(span)
            .await
    }

    async fn invoke_in_span(
        &self,
        policy: &GuildPolicy,
        gf: &GuildFeature,
        loaded: Arc<Loaded>,
        handler: Handler,
    ) -> Outcome {
        let started = Instant::now();
        let feature_id = gf.feature_id.clone();
        let service = policy
            .guild
            .as_ref()
            .map_or(GuildService::Active, |g| g.service);
        if let Some(why) = handler.refused_by(service) {
            return Outcome::failed(&feature_id, InvokeError::NotServed(why), started);
        }
        if let Some(until) = gf
            .breaker_open_until
            .filter(|until| *until > chrono::Utc::now())
        {
            return Outcome::failed(&feature_id, InvokeError::BreakerOpen { until }, started)
                .counted();
        }
        let limits = self.limits_of(policy.plan());
        let _permit = match self
            .slots
            .acquire(
                gf.guild_id,
                limits.concurrent_per_guild,
                limits.queued_per_guild,
            )
            .await
        {
            Ok(permit) => permit,
            Err(busy) => {
                return Outcome::failed(&feature_id, InvokeError::Busy(busy.0), started).counted();
            }
        };
        let Fresh {
            mut store,
            stdio,
            discord,
        } = self.new_store(
            gf,
            &loaded.manifest,
            &limits,
            self.ai_plan_of(policy.plan()),
            handler.invocation(),
        );
        if service == GuildService::ReadOnly {
            store.data_mut().capabilities.calls.set_read_only();
        }
        let wall = limits.wall();
        let ctx = Context {
            guild_id: gf.guild_id,
            bot_user_id: self.config.bot_user_id,
        };
        let handler = match handler {
            Handler::Event(event)
                if !store
                    .data()
                    .capabilities
                    .calls
                    .grant
                    .capabilities
                    .contains(wit::Capability::MessageContent) =>
            {
                Handler::Event(without_content(event))
            }
            other => other,
        };
        let invoker = handler.invoker_id();
        let clock = store.data().wall.clone();
        let meter = store.data().cpu.clone();
        let call = async {
            let instance = match loaded.pre.instantiate_async(&mut store).await {
                Ok(instance) => instance,
                Err(e) => return Err(Stopped::Instantiate(e)),
            };
            call_handler(&mut store, &instance, &loaded, ctx, &handler)
                .await
                .map_err(Stopped::Trap)
        };
        let finished = tokio::select! {
            finished = cpu::Metered::new(call, meter.clone()) => finished,
            () = clock.expired() => Some(Err(Stopped::WallClock)),
        };
        let result = match finished {
            Some(Err(Stopped::WallClock)) => Err(InvokeError::Timeout(wall)),
            None => Err(InvokeError::Trap {
                kind: TrapKind::CpuLimit,
                message: format!(
                    "the CPU budget of {:?} was spent inside host calls",
                    meter.budget()
                ),
            }),
            Some(Err(Stopped::Instantiate(e))) => Err(classify_instantiation(&e)),
            Some(Err(Stopped::Trap(trap))) => Err(classify_trap(&trap)),
            Some(Ok(Err(feature_error))) => Err(InvokeError::Feature(feature_error)),
            Some(Ok(Ok(Returned::Reply(reply)))) => validate_reply(&reply)
                .map(|()| Returned::Reply(reply))
                .map_err(InvokeError::InvalidReply),
            Some(Ok(Ok(returned))) => Ok(returned),
        };
        let (result, response, commands) = match result {
            Ok(Returned::Reply(reply)) => (Ok(Some(reply)), None, None),
            Ok(Returned::Api(response)) => (Ok(None), Some(response), None),
            Ok(Returned::Commands(commands)) => (Ok(None), None, Some(commands)),
            Ok(Returned::Nothing) => (Ok(None), None, None),
            Err(e) => (Err(e), None, None),
        };
        let state = store.into_data();
        let stdio = String::from_utf8_lossy(&stdio.contents()).into_owned();
        if let Err(e) = &result
            && self
                .rates
                .failure_reports
                .take(gf.guild_id, &feature_id, FAILURE_REPORTS_PER_MINUTE)
        {
            let shown = escape_controls(truncated(stdio.trim_end(), STDIO_REPORT_BYTES));
            tracing::warn!(guild = gf.guild_id, feature = %feature_id, error = %e, stdio = %shown, cpu_us = meter.spent().as_micros() as u64, memory_peak = state.memory.peak(), "feature invocation failed");
        }
        let invalid_requests = discord.invalid_requests();
        if let Err(e) = self.update_breaker(gf, &result, invalid_requests).await {
            tracing::error!(error = %e, "could not record the circuit breaker state");
        }
        let effects = state.capabilities.calls.into_effects();
        self.audit_actions(gf, invoker, &effects).await;
        Outcome {
            feature_id,
            result,
            response,
            commands,
            effects,
            logs: state.capabilities.log.lines,
            stdio,
            elapsed: started.elapsed(),
            cpu: meter.spent(),
        }
        .counted()
    }

    /// Writes an audit entry for every moderation, role and channel action
    /// the invocation took ([`Effect::audited`]), attributed to the feature
    /// and its version, with the member who invoked it (none for events and
    /// jobs: the feature acted on its own). The dashboard hears each as an
    /// `audit_log` event.
    async fn audit_actions(&self, gf: &GuildFeature, invoker: Option<u64>, effects: &[Effect]) {
        for (action, mut details) in effects.iter().filter_map(Effect::audited) {
            details["version"] = serde_json::json!(gf.version);
            details["invoker"] = serde_json::json!(invoker.map(|id| id.to_string()));
            let entry = NewAuditEntry {
                guild_id: Some(gf.guild_id),
                actor: format!("feature:{}", gf.feature_id),
                action: action.into(),
                feature_id: Some(gf.feature_id.clone()),
                details,
            };
            if let Err(e) = self.store.audit(&entry).await {
                tracing::error!(guild = gf.guild_id, feature = %gf.feature_id, %action, error = %e, "could not audit a feature's action");
            }
        }
    }

    fn new_store(
        &self,
        gf: &GuildFeature,
        manifest: &Manifest,
        limits: &Limits,
        ai_plan: crate::ai::AiPlan,
        invocation: InvocationCtx,
    ) -> Fresh {
        let grant = Grant::effective(
            &manifest.capabilities,
            &gf.grants,
            limits.capabilities,
            limits.quota(),
        );
        let config = match &gf.config {
            Some(config) => config.to_string(),
            None => manifest.default_config.clone(),
        };
        let scope = Scope {
            guild_id: gf.guild_id,
            feature_id: gf.feature_id.clone(),
        };
        let mut fresh = self.new_store_with(scope, grant, config, limits, invocation);
        fresh.store.data_mut().capabilities.ai.plan = ai_plan;
        fresh
    }

    /// A fresh store for one invocation, with its limits and an empty WASI
    /// context whose stdout and stderr go to a bounded in-memory pipe.
    fn new_store_with(
        &self,
        scope: Scope,
        grant: Grant,
        config: String,
        limits: &Limits,
        invocation: InvocationCtx,
    ) -> Fresh {
        let stdio = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let wall = wall::WallClock::start(limits.wall(), limits.discord_wait())
            .with_ai_allowance(limits.ai_wait());
        let discord = Arc::new(invocation_discord::InvocationDiscord::new(
            &self.discord,
            wall.clone(),
            scope.guild_id,
            &scope.feature_id,
        ));
        let wasi = WasiCtx::builder()
            .stdout(stdio.clone())
            .stderr(stdio.clone())
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        let cpu = cpu::CpuMeter::new(limits.cpu());
        let capabilities = Capabilities {
            calls: Calls::new(grant, limits.host_calls),
            config: ConfigCtx(config),
            log: LogCtx {
                scope: scope.clone(),
                rates: self.rates.clone(),
                lines_per_minute: limits.log_lines_per_minute,
                lines: Vec::new(),
            },
            storage: StorageCtx {
                store: self.store.clone(),
                scope: scope.clone(),
            },
            discord: DiscordCtx {
                guild_id: scope.guild_id,
                discord: discord.clone(),
            },
            scheduler: SchedulerCtx {
                store: self.store.clone(),
                scope: scope.clone(),
                pending_jobs: limits.pending_jobs,
            },
            audit: AuditCtx {
                store: self.store.clone(),
                scope: scope.clone(),
                rates: self.rates.clone(),
                audit_per_hour: limits.audit_per_hour,
            },
            invocation,
            live: LiveCtx {
                live: self.live.clone(),
                scope: scope.clone(),
                rates: self.rates.clone(),
            },
            files: FilesCtx {
                store: self.store.clone(),
                scope: scope.clone(),
                quota: limits.file_quota(),
                links: self.file_links.clone(),
                discord: discord.clone(),
            },
            ai: AiCtx {
                scope: scope.clone(),
                ai: self.ai.clone(),
                plan: crate::ai::AiPlan::default(),
                wall: wall.clone(),
            },
            http: HttpCtx::new(scope, self.http.clone(), self.rates.clone())
                .with_clock(wall.clone()),
        };
        let state = HostState {
            wasi,
            table,
            memory: budget::MemoryBudget::new(limits.memory_bytes(), self.config.structure),
            capabilities,
            wall,
            cpu: cpu.clone(),
        };
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if cpu.exhausted_now() {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield every tick so a busy guest never holds its tokio worker.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        Fresh {
            store,
            stdio,
            discord,
        }
    }

    /// The catalogue row of an installed version.
    async fn installed(
        &self,
        feature_id: &str,
        version: &str,
    ) -> anyhow::Result<crate::store::FeatureVersion> {
        self.store
            .feature_version(feature_id, version)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("feature `{feature_id}` version {version} is not installed")
            })
    }

    async fn load(&self, feature_id: &str, version: &str) -> anyhow::Result<Arc<Loaded>> {
        let key = (feature_id.to_string(), version.to_string());
        if let Some(loaded) = self.loaded.get(&key) {
            return Ok(loaded);
        }
        let row = self.installed(feature_id, version).await?;
        let manifest = stored_manifest(&row)?;
        let routes = extensions::stored_routes(&row.manifest).map_err(|e| {
            anyhow::anyhow!("the stored routes of {feature_id} {version} are unreadable ({e}); install the feature again")
        })?;
        let component = self.component_from_cache(&row.sha256).await?;
        let pre = self.linker.instantiate_pre(&component)?;
        let loaded = Arc::new(Loaded {
            exports: FeatureIndices::new(&pre)?,
            extensions: Extensions::find(&pre),
            pre,
            manifest,
            routes: Arc::new(routes),
        });
        self.loaded.insert(key, loaded.clone());
        Ok(loaded)
    }
}

/// What a handler returned, when it did not return an error.
enum Returned {
    Nothing,
    Reply(Reply),
    Api(ApiResponse),
    Commands(Vec<Command>),
}

/// Calls `handler`'s export on a fresh instance. The optional exports are
/// looked up in `loaded`: a route or lifecycle call to a component without
/// them is answered by the host (no route; nothing to do).
async fn call_handler(
    store: &mut wasmtime::Store<HostState>,
    instance: &wasmtime::component::Instance,
    loaded: &Loaded,
    ctx: Context,
    handler: &Handler,
) -> wasmtime::Result<Result<Returned, wit::Error>> {
    let nothing = |r: Result<(), wit::Error>| r.map(|()| Returned::Nothing);
    let feature = |store: &mut wasmtime::Store<HostState>| loaded.exports.load(store, instance);
    Ok(match handler {
        Handler::Enabled | Handler::Disabled => {
            let Some(indices) = &loaded.extensions.lifecycle else {
                return Ok(Ok(Returned::Nothing));
            };
            let lifecycle = indices.load(&mut *store, instance)?;
            nothing(if matches!(handler, Handler::Enabled) {
                lifecycle.call_enabled(&mut *store, ctx).await?
            } else {
                lifecycle.call_disabled(&mut *store, ctx).await?
            })
        }
        Handler::Moderation(event) => {
            let Some(indices) = &loaded.extensions.moderation_events else {
                return Ok(Ok(Returned::Nothing));
            };
            let events = indices.load(&mut *store, instance)?;
            nothing(events.call_on_moderation(&mut *store, ctx, event).await?)
        }
        Handler::GuildReady => {
            let Some(indices) = &loaded.extensions.guild_ready else {
                return Ok(Ok(Returned::Nothing));
            };
            let ready = indices.load(&mut *store, instance)?;
            nothing(ready.call_on_guild_ready(&mut *store, ctx).await?)
        }
        Handler::GuildCommands => {
            let Some(indices) = &loaded.extensions.guild_commands else {
                return Ok(Ok(Returned::Commands(Vec::new())));
            };
            let defined = indices.load(&mut *store, instance)?;
            defined
                .call_commands(&mut *store, ctx)
                .await?
                .map(Returned::Commands)
        }
        Handler::Api(request) => {
            let Some(indices) = &loaded.extensions.api else {
                return Ok(Err(wit::Error::NotFound(
                    "this feature serves no routes".into(),
                )));
            };
            let api = indices.load(&mut *store, instance)?;
            api.call_handle(&mut *store, ctx, request)
                .await?
                .map(Returned::Api)
        }
        Handler::Event(event) => nothing(
            feature(store)?
                .call_on_event(&mut *store, ctx, event)
                .await?,
        ),
        Handler::Command(invocation, _) => feature(store)?
            .call_on_command(&mut *store, ctx, invocation)
            .await?
            .map(Returned::Reply),
        Handler::Component(interaction, _) => feature(store)?
            .call_on_component(&mut *store, ctx, interaction)
            .await?
            .map(Returned::Reply),
        Handler::Schedule(job) => nothing(
            feature(store)?
                .call_on_schedule(&mut *store, ctx, job)
                .await?,
        ),
        Handler::Migrate(from) => {
            nothing(feature(store)?.call_migrate(&mut *store, ctx, from).await?)
        }
    })
}

/// Why an invocation stopped before its handler returned.
enum Stopped {
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
    WallClock,
}

/// The manifest validated and stored when the version was installed.
fn stored_manifest(row: &crate::store::FeatureVersion) -> anyhow::Result<Manifest> {
    serde_json::from_value(row.manifest.clone()).map_err(|e| {
        anyhow::anyhow!(
            "the stored manifest of {} {} is unreadable ({e}); install the feature again",
            row.feature_id,
            row.version
        )
    })
}

impl Outcome {
    fn failed(feature_id: &str, error: InvokeError, started: Instant) -> Self {
        Outcome {
            feature_id: feature_id.to_string(),
            result: Err(error),
            response: None,
            commands: None,
            effects: Vec::new(),
            logs: Vec::new(),
            stdio: String::new(),
            elapsed: started.elapsed(),
            cpu: Duration::ZERO,
        }
    }

    /// Counts the invocation in the metrics by its outcome.
    fn counted(self) -> Self {
        if let Some(outcome) = outcome_label(&self.result) {
            metrics().record_invocation(&self.feature_id, outcome);
        }
        self
    }
}

/// The `outcome` label of an invocation's result; `None` for a feature that is
/// not enabled or a guild not served (it was never invoked, so nothing is
/// counted).
fn outcome_label<T>(result: &Result<T, InvokeError>) -> Option<&'static str> {
    Some(match result {
        Ok(_) => crate::metrics::outcome::OK,
        Err(InvokeError::NotEnabled(_) | InvokeError::NotServed(_)) => return None,
        Err(InvokeError::Trap {
            kind: TrapKind::CpuLimit,
            ..
        }) => crate::metrics::outcome::CPU_EXHAUSTED,
        Err(InvokeError::Trap {
            kind: TrapKind::MemoryLimit,
            ..
        }) => crate::metrics::outcome::MEMORY,
        Err(InvokeError::Trap { .. }) => crate::metrics::outcome::TRAP,
        Err(InvokeError::Timeout(_)) => crate::metrics::outcome::TIMEOUT,
        Err(InvokeError::BreakerOpen { .. }) => crate::metrics::outcome::BREAKER_OPEN,
        Err(InvokeError::Busy(_)) => crate::metrics::outcome::BUSY,
        Err(InvokeError::Feature(_) | InvokeError::InvalidReply(_) | InvokeError::Host(_)) => {
            crate::metrics::outcome::ERROR
        }
    })
}

pub fn event_kind(event: &Event) -> EventKind {
    match event {
        Event::MessageCreated(_) => EventKind::MessageCreated,
        Event::MessageUpdated(_) => EventKind::MessageUpdated,
        Event::MessageDeleted(_) => EventKind::MessageDeleted,
        Event::MemberJoined(_) => EventKind::MemberJoined,
        Event::MemberLeft(_) => EventKind::MemberLeft,
        Event::MemberUpdated(_) => EventKind::MemberUpdated,
        Event::ReactionAdded(_) => EventKind::ReactionAdded,
        Event::ReactionRemoved(_) => EventKind::ReactionRemoved,
    }
}

/// Message text is privileged: features without `message-content` see it empty.
fn without_content(event: Event) -> Event {
    match event {
        Event::MessageCreated(mut message) => {
            message.content.clear();
            Event::MessageCreated(message)
        }
        Event::MessageUpdated(mut message) => {
            message.content.clear();
            Event::MessageUpdated(message)
        }
        other => other,
    }
}

fn validate_reply(reply: &Reply) -> Result<(), String> {
    use townes_limits::message;
    message::check_reply(&crate::capabilities::shape(&reply.body)).map_err(|e| e.0)?;
    if let Some(modal) = &reply.modal {
        message::check_modal(&modal.title, modal.inputs.len()).map_err(|e| e.0)?;
    }
    Ok(())
}

fn classify_trap(error: &wasmtime::Error) -> InvokeError {
    let message = format!("{error:#}");
    let kind = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::CpuLimit,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => TrapKind::OutOfBounds,
        Some(Trap::UnreachableCodeReached) => TrapKind::Panic,
        _ if error.downcast_ref::<MemoryLimitExceeded>().is_some() => TrapKind::MemoryLimit,
        _ => TrapKind::Other,
    };
    InvokeError::Trap { kind, message }
}

/// A failed instantiation is the feature's fault when the feature asked for
/// too much (memory at start-up, too many instances) and the host's when the
/// pool had no free slot.
fn classify_instantiation(error: &wasmtime::Error) -> InvokeError {
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return InvokeError::Busy(format!("the instance pool is full: {error:#}"));
    }
    match classify_trap(error) {
        InvokeError::Trap {
            kind: TrapKind::Other,
            message,
        } if message.contains("resource limit exceeded") => InvokeError::Trap {
            kind: TrapKind::MemoryLimit,
            message,
        },
        classified => classified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_from_invoke_errors() {
        let trap = |kind| -> Result<(), InvokeError> {
            Err(InvokeError::Trap {
                kind,
                message: String::new(),
            })
        };
        assert_eq!(outcome_label(&Ok::<(), InvokeError>(())), Some("ok"));
        assert_eq!(
            outcome_label(&trap(TrapKind::CpuLimit)),
            Some("cpu_exhausted")
        );
        assert_eq!(outcome_label(&trap(TrapKind::MemoryLimit)), Some("memory"));
        assert_eq!(outcome_label(&trap(TrapKind::Panic)), Some("trap"));
        assert_eq!(outcome_label(&trap(TrapKind::StackOverflow)), Some("trap"));
        assert_eq!(
            outcome_label::<()>(&Err(InvokeError::Timeout(Duration::from_secs(1)))),
            Some("timeout")
        );
        assert_eq!(
            outcome_label::<()>(&Err(InvokeError::BreakerOpen {
                until: chrono::Utc::now()
            })),
            Some("breaker_open")
        );
        assert_eq!(
            outcome_label::<()>(&Err(InvokeError::InvalidReply(String::new()))),
            Some("error")
        );
        assert_eq!(
            outcome_label::<()>(&Err(InvokeError::NotEnabled("x".into()))),
            None
        );
    }
}
