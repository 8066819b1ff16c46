//! The sandbox: one engine, validated and precompiled components, and a fresh,
//! limited instance per invocation.
//!
//! Per invocation: a new `Store` with a memory cap (growing past it traps), a CPU
//! budget counted in epoch ticks by a dedicated ticker thread (the guest yields to
//! tokio every tick and is interrupted when the budget is spent), host-call fuel,
//! and a wall-clock budget around the whole call (epochs cannot interrupt a
//! guest parked in a host call; waits on Discord do not count, see `wall`). The instance is dropped afterwards; a trap or
//! timeout counts against the (guild, feature) circuit breaker.

pub mod bindings;
mod breaker;
mod engine;
mod install;
mod invocation_discord;
pub mod limits;
mod usage;
mod wall;

pub use self::bindings as wit;
pub use breaker::BreakerPolicy;
pub use engine::Allocation;
pub use install::{InstallError, WORLD_VERSION};
pub use limits::{Limits, Plans};

use crate::capabilities::{Effect, validate_body};
use crate::discord::Discord;
use crate::grants::{Approval, Grant};
use crate::metrics::metrics;
use crate::store::{GuildFeature, Scope, Store};
use bindings::{FeaturePre, Manifest};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wit::{
    CommandInvocation, ComponentInteraction, Context, Event, EventKind, Reply, ScheduledJob,
};

/// How much a feature may print to stdout/stderr per invocation; the rest is dropped.
const STDIO_CAPTURE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where components and their precompiled artifacts are cached.
    pub data_dir: PathBuf,
    pub plans: Plans,
    /// Largest component accepted at install.
    pub max_component_bytes: usize,
    /// Instance slots in the pooling allocator (concurrent invocations).
    pub pool_instances: u32,
    pub breaker: BreakerPolicy,
    /// The bot's user id, passed to features in their context.
    pub bot_user_id: u64,
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            plans: Plans::default(),
            max_component_bytes: 64 << 20,
            pool_instances: 1000,
            breaker: BreakerPolicy::default(),
            bot_user_id: 0,
        }
    }
}

/// The state of one invocation: what capabilities see.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub(crate) guild_id: u64,
    pub(crate) scope: Scope,
    pub(crate) grant: Grant,
    /// The feature's configuration as JSON.
    pub(crate) config: String,
    pub(crate) calls_left: u32,
    pub(crate) call_limit: u32,
    pub(crate) effects: Vec<Effect>,
    pub(crate) log_lines: Vec<String>,
    pub(crate) store: Store,
    pub(crate) discord: Arc<dyn Discord>,
    wall: wall::WallClock,
    cpu_ticks: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A component ready to instantiate, with the manifest it described at load.
struct Loaded {
    pre: FeaturePre<HostState>,
    manifest: Manifest,
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
    pub effects: Vec<Effect>,
    pub logs: Vec<String>,
    /// What the guest wrote to stdout/stderr (a panic message lands here).
    pub stdio: String,
    pub elapsed: Duration,
}

enum Handler {
    Event(Event),
    Command(CommandInvocation),
    Component(ComponentInteraction),
    Schedule(ScheduledJob),
    Migrate(String),
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    allocation: Allocation,
    _ticker: engine::EpochTicker,
    store: Store,
    discord: Arc<dyn Discord>,
    config: RuntimeConfig,
    /// Loaded components by (feature id, version).
    loaded: RwLock<HashMap<(String, String), Arc<Loaded>>>,
    usage: usage::UsageMeter,
}

impl Runtime {
    pub fn new(
        config: RuntimeConfig,
        store: Store,
        discord: Arc<dyn Discord>,
    ) -> anyhow::Result<Self> {
        let (engine, allocation) =
            engine::build_engine(config.plans.max_memory_bytes(), config.pool_instances)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Feature::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        std::fs::create_dir_all(config.data_dir.join("components"))?;
        Ok(Runtime {
            _ticker: engine::EpochTicker::start(engine.clone()),
            engine,
            linker,
            allocation,
            store,
            discord,
            config,
            loaded: RwLock::new(HashMap::new()),
            usage: usage::UsageMeter::default(),
        })
    }

    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The manifest of an installed feature version.
    pub async fn manifest(&self, feature_id: &str, version: &str) -> anyhow::Result<Manifest> {
        Ok(self.load(feature_id, version).await?.manifest.clone())
    }

    /// Delivers an event to every feature enabled in the guild that subscribed
    /// to its kind. Features run one after another; one failing never stops the
    /// others.
    pub async fn dispatch_event(
        &self,
        guild_id: u64,
        event: &Event,
    ) -> anyhow::Result<Vec<Outcome>> {
        let started = Instant::now();
        self.usage.event(guild_id);
        let kind = event_kind(event);
        let dispatched = async {
            let mut outcomes = Vec::new();
            for gf in self.store.guild_features(guild_id).await? {
                if !gf.enabled {
                    continue;
                }
                let loaded = self.load(&gf.feature_id, &gf.version).await?;
                if loaded.manifest.events.contains(&kind) {
                    outcomes.push(self.invoke(gf, loaded, Handler::Event(event.clone())).await);
                }
            }
            Ok(outcomes)
        }
        .await;
        metrics().record_event(crate::metrics::event_kind_label(kind), started.elapsed());
        dispatched
    }

    pub async fn command(
        &self,
        guild_id: u64,
        feature_id: &str,
        invocation: CommandInvocation,
    ) -> Outcome {
        self.usage.command(guild_id);
        let name = invocation.name.clone();
        let outcome = self
            .invoke_enabled(guild_id, feature_id, Handler::Command(invocation))
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
    ) -> Outcome {
        self.invoke_enabled(guild_id, feature_id, Handler::Component(interaction))
            .await
    }

    /// Moves a guild's feature to the version its row now names by calling
    /// `migrate`, whether or not the feature is currently enabled there.
    pub async fn migrate(&self, guild_id: u64, feature_id: &str, from_version: &str) -> Outcome {
        let handler = Handler::Migrate(from_version.to_string());
        self.invoke_installed(guild_id, feature_id, handler, false)
            .await
    }

    /// Runs every scheduled job that is due, each once. A job whose feature is no
    /// longer enabled is dropped. Returns the outcomes of the jobs that ran.
    pub async fn run_due_jobs(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        for job in self.store.due_jobs(now, limit).await? {
            let handler = Handler::Schedule(ScheduledJob {
                id: job.id.clone(),
                name: job.name.clone(),
                payload: job.payload.clone(),
            });
            let outcome = self
                .invoke_enabled(job.scope.guild_id, &job.scope.feature_id, handler)
                .await;
            self.store.complete_job(&job.id).await?;
            if !matches!(outcome.result, Err(InvokeError::NotEnabled(_))) {
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
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
            let gf = self
                .store
                .guild_feature(guild_id, feature_id)
                .await?
                .filter(|gf| gf.enabled || !enabled_only);
            let Some(gf) = gf else { return Ok(None) };
            let loaded = self.load(&gf.feature_id, &gf.version).await?;
            anyhow::Ok(Some((gf, loaded)))
        };
        match prepared.await {
            Ok(Some((gf, loaded))) => self.invoke(gf, loaded, handler).await,
            Ok(None) => Outcome::failed(
                feature_id,
                InvokeError::NotEnabled(feature_id.to_string()),
                started,
            ),
            Err(e) => Outcome::failed(feature_id, InvokeError::Host(e), started).counted(),
        }
    }

    async fn invoke(&self, gf: GuildFeature, loaded: Arc<Loaded>, handler: Handler) -> Outcome {
        let started = Instant::now();
        let feature_id = gf.feature_id.clone();
        if let Some(until) = gf
            .breaker_open_until
            .filter(|until| *until > chrono::Utc::now())
        {
            return Outcome::failed(&feature_id, InvokeError::BreakerOpen { until }, started)
                .counted();
        }
        let limits = self.limits_for(gf.guild_id).await;
        let (mut store, stdio) = match self.new_store(&gf, &loaded.manifest, &limits) {
            Ok(s) => s,
            Err(e) => {
                return Outcome::failed(&feature_id, InvokeError::Host(e), started).counted();
            }
        };
        let wall = limits.wall();
        let ctx = Context {
            guild_id: gf.guild_id,
            bot_user_id: self.config.bot_user_id,
        };
        let handler = match handler {
            Handler::Event(event)
                if !store
                    .data()
                    .grant
                    .capabilities
                    .contains(wit::Capability::MessageContent) =>
            {
                Handler::Event(without_content(event))
            }
            other => other,
        };
        let clock = store.data().wall.clone();
        let call = async {
            let feature = loaded.pre.instantiate_async(&mut store).await?;
            let result = match &handler {
                Handler::Event(event) => feature
                    .call_on_event(&mut store, ctx, event)
                    .await?
                    .map(|()| None),
                Handler::Command(invocation) => feature
                    .call_on_command(&mut store, ctx, invocation)
                    .await?
                    .map(Some),
                Handler::Component(interaction) => feature
                    .call_on_component(&mut store, ctx, interaction)
                    .await?
                    .map(Some),
                Handler::Schedule(job) => feature
                    .call_on_schedule(&mut store, ctx, job)
                    .await?
                    .map(|()| None),
                Handler::Migrate(from) => feature
                    .call_migrate(&mut store, ctx, from)
                    .await?
                    .map(|()| None),
            };
            wasmtime::Result::Ok(result)
        };
        let finished = tokio::select! {
            finished = call => Some(finished),
            () = clock.expired() => None,
        };
        let result = match finished {
            None => Err(InvokeError::Timeout(wall)),
            Some(Err(trap)) => Err(classify_trap(&trap)),
            Some(Ok(Err(feature_error))) => Err(InvokeError::Feature(feature_error)),
            Some(Ok(Ok(Some(reply)))) => validate_reply(&reply)
                .map(|()| Some(reply))
                .map_err(InvokeError::InvalidReply),
            Some(Ok(Ok(None))) => Ok(None),
        };
        let state = store.into_data();
        let stdio = String::from_utf8_lossy(&stdio.contents()).into_owned();
        if let Err(e) = &result {
            tracing::warn!(guild = gf.guild_id, feature = %feature_id, error = %e, stdio = %stdio.trim_end(), cpu_ms = state.cpu_ticks, "feature invocation failed");
        }
        if let Err(e) = self.update_breaker(&gf, &result).await {
            tracing::error!(error = %e, "could not record the circuit breaker state");
        }
        Outcome {
            feature_id,
            result,
            effects: state.effects,
            logs: state.log_lines,
            stdio,
            elapsed: started.elapsed(),
        }
        .counted()
    }

    async fn limits_for(&self, guild_id: u64) -> Limits {
        let plan = match self.store.guild(guild_id).await {
            Ok(Some(guild)) => guild.plan,
            _ => "free".to_string(),
        };
        self.config.plans.get(&plan).clone()
    }

    fn new_store(
        &self,
        gf: &GuildFeature,
        manifest: &Manifest,
        limits: &Limits,
    ) -> anyhow::Result<(wasmtime::Store<HostState>, MemoryOutputPipe)> {
        let approval: Approval = serde_json::from_value(gf.grants.clone())?;
        let grant = Grant::effective(
            &manifest.capabilities,
            &approval,
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
        Ok(self.new_store_with(scope, grant, config, limits))
    }

    /// A fresh store for one invocation, with its limits and an empty WASI
    /// context whose stdout and stderr go to a bounded in-memory pipe.
    fn new_store_with(
        &self,
        scope: Scope,
        grant: Grant,
        config: String,
        limits: &Limits,
    ) -> (wasmtime::Store<HostState>, MemoryOutputPipe) {
        let stdio = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let wall = wall::WallClock::start(limits.wall());
        let discord = Arc::new(invocation_discord::InvocationDiscord::new(
            &self.discord,
            wall.clone(),
            scope.guild_id,
            &scope.feature_id,
        ));
        let wasi = WasiCtx::builder()
            .stdout(stdio.clone())
            .stderr(stdio.clone())
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes())
                .trap_on_grow_failure(true)
                .build(),
            guild_id: scope.guild_id,
            scope,
            grant,
            config,
            calls_left: limits.host_calls,
            call_limit: limits.host_calls,
            effects: Vec::new(),
            log_lines: Vec::new(),
            store: self.store.clone(),
            discord,
            wall,
            cpu_ticks: 0,
        };
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let budget_ticks = limits.cpu().as_millis().max(1) as u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks >= budget_ticks {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield every tick so a busy guest never holds its tokio worker.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        (store, stdio)
    }

    async fn load(&self, feature_id: &str, version: &str) -> anyhow::Result<Arc<Loaded>> {
        let key = (feature_id.to_string(), version.to_string());
        if let Some(loaded) = self.loaded.read().unwrap().get(&key) {
            return Ok(loaded.clone());
        }
        let row = self
            .store
            .feature_version(feature_id, version)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("feature `{feature_id}` version {version} is not installed")
            })?;
        let component = self.component_from_cache(&row.sha256)?;
        let pre = FeaturePre::new(self.linker.instantiate_pre(&component)?)?;
        let manifest = self.describe(&pre).await?;
        let loaded = Arc::new(Loaded { pre, manifest });
        self.loaded.write().unwrap().insert(key, loaded.clone());
        Ok(loaded)
    }
}

impl Outcome {
    fn failed(feature_id: &str, error: InvokeError, started: Instant) -> Self {
        Outcome {
            feature_id: feature_id.to_string(),
            result: Err(error),
            effects: Vec::new(),
            logs: Vec::new(),
            stdio: String::new(),
            elapsed: started.elapsed(),
        }
    }

    /// Counts the invocation in the metrics by its outcome.
    fn counted(self) -> Self {
        if let Some(outcome) = crate::metrics::outcome_label(&self.result) {
            metrics().record_invocation(&self.feature_id, outcome);
        }
        self
    }
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
    validate_body(&reply.body).map_err(|e| crate::capabilities::describe_error(&e))?;
    if let Some(modal) = &reply.modal
        && (modal.inputs.is_empty() || modal.inputs.len() > 5 || modal.title.chars().count() > 45)
    {
        return Err("a modal has a title of at most 45 characters and 1 to 5 inputs".into());
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
        _ if message.contains("forcing trap when growing memory") => TrapKind::MemoryLimit,
        _ => TrapKind::Other,
    };
    InvokeError::Trap { kind, message }
}
