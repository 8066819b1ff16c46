//! A runtime over an in-memory Discord with two guilds (A and B, each with
//! members ada (42) and bob (43)), for tests that run real components against
//! the sandbox's limits.

use std::sync::Arc;
use townes::discord::{LocalDiscord, LocalGuild};
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::{InvokeError, Limits, Outcome, Plans, Runtime, RuntimeConfig, TrapKind};
use townes::store::{Guild, Store};
use townes::wit::{
    Capability, CommandArgument, CommandInvocation, CommandSource, Event, Member, Message, Reply,
};

pub const GUILD_A: u64 = 1000;
pub const GUILD_B: u64 = 2000;

#[derive(Clone)]
pub struct Harness {
    pub runtime: Arc<Runtime>,
    pub discord: Arc<LocalDiscord>,
    pub store: Store,
    /// The runtime's data directory (components and their compiled forms).
    pub data: Arc<tempfile::TempDir>,
}

impl Harness {
    pub async fn new(store: Store, limits: Limits) -> Self {
        Harness::with_config(store, limits, |_| {}).await
    }

    /// A harness whose runtime configuration `adjust` may change first.
    pub async fn with_config(
        store: Store,
        limits: Limits,
        adjust: impl FnOnce(&mut RuntimeConfig),
    ) -> Self {
        let discord = Arc::new(LocalDiscord::new());
        for (id, name) in [(GUILD_A, "A"), (GUILD_B, "B")] {
            let mut guild = LocalGuild::new(id, name);
            guild.add_member(42, "ada", vec![id + 2]);
            guild.add_member(43, "bob", vec![]);
            discord.add_guild(guild);
            store.upsert_guild(&Guild::new(id, name, 1)).await.unwrap();
        }
        let data = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig::new(data.path());
        config.plans = Plans::single(limits);
        config.pool_instances = 64;
        adjust(&mut config);
        let runtime = Arc::new(Runtime::new(config, store.clone(), discord.clone()).unwrap());
        Harness {
            runtime,
            discord,
            store,
            data: Arc::new(data),
        }
    }

    /// A new runtime over the same store, data directory and Discord: the
    /// platform after a restart (default limits).
    pub fn restarted(&self) -> Runtime {
        self.runtime_on(self.store.clone())
    }

    /// A runtime over `store` with the same data directory and Discord (default
    /// limits): given a store of its own on the same database, another process.
    pub fn runtime_on(&self, store: Store) -> Runtime {
        let config = RuntimeConfig {
            pool_instances: 8,
            ..RuntimeConfig::new(self.data.path())
        };
        Runtime::new(config, store, self.discord.clone()).unwrap()
    }

    pub async fn sqlite(limits: Limits) -> (Self, super::Guard) {
        let (_, store, guard) = super::sqlite().await;
        (Harness::new(store, limits).await, guard)
    }

    /// Installs a component and enables it in both guilds with `approve`.
    pub async fn install(&self, name: &str, approve: &[Capability]) -> String {
        let (version, _) = self.runtime.install(&super::component(name)).await.unwrap();
        self.enable(&version.feature_id, approve).await;
        version.feature_id
    }

    /// Enables an installed feature's newest version in both guilds with `approve`.
    pub async fn enable(&self, feature_id: &str, approve: &[Capability]) {
        let approval = Approval::of(approve.iter().copied());
        for guild in [GUILD_A, GUILD_B] {
            Marketplace::new(&self.runtime, "test")
                .enable(guild, feature_id, None, approval.clone())
                .await
                .unwrap();
        }
    }

    /// Ada says `content` in the guild's first channel; returns what the first
    /// feature that listened did.
    pub async fn echo(&self, guild: u64, content: &str) -> Outcome {
        let ada = self.discord.member_of(guild, 42).unwrap();
        self.runtime
            .dispatch_event(guild, &message(guild, content, ada))
            .await
            .unwrap()
            .remove(0)
    }

    pub async fn command(
        &self,
        guild: u64,
        feature: &str,
        name: &str,
        arguments: Vec<CommandArgument>,
    ) -> Outcome {
        let invoker = self.discord.member_of(guild, 42).unwrap();
        let invocation = CommandInvocation {
            source: CommandSource::Slash,
            name: name.into(),
            subcommand: None,
            arguments,
            invoker,
            channel_id: guild + 1,
        };
        self.runtime.command(guild, feature, invocation, 0).await
    }
}

pub fn reply_text(outcome: &Outcome) -> String {
    match &outcome.result {
        Ok(Some(Reply { body, .. })) => body.content.clone().unwrap_or_default(),
        other => panic!(
            "{} expected a reply, got {other:?} (stdio: {})",
            outcome.feature_id, outcome.stdio
        ),
    }
}

pub fn trap_kind(outcome: &Outcome) -> TrapKind {
    match &outcome.result {
        Err(InvokeError::Trap { kind, .. }) => *kind,
        other => panic!("expected a trap, got {other:?}"),
    }
}

pub const HOSTILE_CAPS: &[Capability] = &[Capability::Messages, Capability::Storage];

pub fn limits() -> Limits {
    Limits {
        memory_mib: 16,
        cpu_ms: 50,
        wall_ms: 2_000,
        host_calls: 1_000,
        ..Limits::default()
    }
}

/// A message `author` posts in the guild's first channel.
pub fn message(guild: u64, content: &str, author: Member) -> Event {
    Event::MessageCreated(Message {
        id: 77,
        channel_id: guild + 1,
        author: author.user,
        content: content.into(),
        mentions: vec![],
        timestamp: "2026-11-23T00:00:00Z".into(),
    })
}
