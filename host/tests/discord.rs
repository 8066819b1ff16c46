//! End to end through Discord's protocols: the platform connects with serenity
//! (gateway) and its REST executor to the Discord simulator, real feature
//! components run in the sandbox, and the tests act as Discord users and look at
//! what the bot did on "Discord".

mod common;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use townes::discord::{ExecutorConfig, LocalDiscord};
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher};
use townes::platform::{Connection, Running, connect};
use townes::runtime::{Plans, Runtime, RuntimeConfig};
use townes::store::{Guild, Store};
use townes_discord_sim::{GuildSetup, SimConfig, SimMessage, Simulator, permissions};

const WAIT: Duration = Duration::from_secs(10);

/// A simulated Discord with two guilds, the platform connected to it, and the
/// welcome and xp features enabled in the first guild.
struct World {
    sim: Simulator,
    store: Store,
    data_dir: tempfile::TempDir,
    alpha: GuildSetup,
    beta: GuildSetup,
    member_role: u64,
    mod_role: u64,
    /// Owns both guilds.
    ada: u64,
    /// A member without roles.
    bob: u64,
    /// Holds the Mod role.
    dan: u64,
    /// Not a member until a test makes her join.
    carol: u64,
    running: Option<Running>,
}

impl World {
    async fn new(store: Store) -> World {
        Self::with(store, |c| c).await
    }

    async fn with(store: Store, tune: impl FnOnce(Connection) -> Connection) -> World {
        let mut world = Self::prepared(store).await;
        world.connect(tune).await;
        world
    }

    /// The world with the features enabled, not connected yet.
    async fn prepared(store: Store) -> World {
        Self::prepared_on(store, SimConfig::default()).await
    }

    async fn prepared_on(store: Store, sim: SimConfig) -> World {
        // Warnings (e.g. an unreadable dispatch) show with the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("TOWNES_LOG").unwrap_or_else(|_| "warn,serenity=error".into()),
            )
            .with_test_writer()
            .try_init();
        let sim = Simulator::start(sim).await.unwrap();
        let ada = sim.create_user("ada");
        let bob = sim.create_user("bob");
        let carol = sim.create_user("carol");
        let dan = sim.create_user("dan");
        let alpha = sim.create_guild("Alpha", ada);
        let beta = sim.create_guild("Beta", ada);
        let bot_role = sim.create_role(
            alpha.guild_id,
            "Townes",
            permissions::MANAGE_ROLES | permissions::SEND_MESSAGES | permissions::VIEW_CHANNEL,
            5,
        );
        sim.give_role(alpha.guild_id, sim.bot_user_id(), bot_role);
        let member_role = sim.create_role(alpha.guild_id, "Member", 0, 2);
        let mod_role = sim.create_role(alpha.guild_id, "Mod", 0, 3);
        sim.member_join(alpha.guild_id, bob).await;
        sim.member_join(alpha.guild_id, dan).await;
        sim.give_role(alpha.guild_id, dan, mod_role);

        let data_dir = tempfile::tempdir().unwrap();
        for g in [&alpha, &beta] {
            store
                .upsert_guild(&Guild::new(g.guild_id, "g", ada))
                .await
                .unwrap();
        }
        let world = World {
            sim,
            store,
            data_dir,
            alpha,
            beta,
            member_role,
            mod_role,
            ada,
            bob,
            dan,
            carol,
            running: None,
        };
        for feature in ["welcome", "xp"] {
            world.install(feature).await;
            world.enable(world.alpha.guild_id, feature).await;
        }
        let general = world.alpha.general_channel_id;
        world
            .configure("welcome", json!({"channel": general}))
            .await;
        world
            .configure(
                "xp",
                json!({"cooldown_seconds": 0, "announce_channel": general,
                       "role_rewards": [{"level": 1, "role": member_role}]}),
            )
            .await;
        world
    }

    /// The world connected, with `feature` installed and enabled in Alpha.
    async fn running_with(store: Store, feature: &str) -> World {
        let mut world = Self::prepared(store).await;
        world.install(&feature.replace('-', "_")).await;
        world.enable(world.alpha.guild_id, feature).await;
        world.connect(|c| c).await;
        world
    }

    /// A runtime for marketplace changes, as the CLI or the API would make them
    /// from another process.
    fn installer(&self) -> Runtime {
        Runtime::new(
            RuntimeConfig::new(self.data_dir.path()),
            self.store.clone(),
            Arc::new(LocalDiscord::new()),
        )
        .unwrap()
    }

    async fn install(&self, feature: &str) {
        let wasm = std::fs::read(common::component_path(feature)).unwrap();
        let runtime = self.installer();
        Marketplace::new(&runtime, "test")
            .install(&wasm, &Publisher::Platform)
            .await
            .unwrap();
    }

    async fn enable(&self, guild_id: u64, feature: &str) {
        let runtime = self.installer();
        let market = Marketplace::new(&runtime, "test");
        let version = runtime
            .store()
            .feature_versions()
            .await
            .unwrap()
            .into_iter()
            .find(|v| v.feature_id == feature)
            .unwrap()
            .version;
        let manifest = runtime.manifest(feature, &version).await.unwrap();
        market
            .enable(
                guild_id,
                feature,
                None,
                Approval::everything_requested(&manifest.capabilities),
            )
            .await
            .unwrap();
    }

    async fn configure(&self, feature: &str, changes: Value) {
        self.configure_in(self.alpha.guild_id, feature, changes)
            .await;
    }

    /// Sets `changes` over the feature's default config in the guild.
    async fn configure_in(&self, guild_id: u64, feature: &str, changes: Value) {
        let runtime = self.installer();
        let market = Marketplace::new(&runtime, "test");
        let gf = self
            .store
            .guild_feature(guild_id, feature)
            .await
            .unwrap()
            .unwrap();
        let manifest = runtime.manifest(feature, &gf.version).await.unwrap();
        let mut config: Value = serde_json::from_str(&manifest.default_config).unwrap();
        for (key, value) in changes.as_object().unwrap() {
            config[key] = value.clone();
        }
        market.set_config(guild_id, feature, config).await.unwrap();
    }

    /// The text of the answer to an interaction.
    async fn answer(&self, interaction: townes_discord_sim::Interaction) -> String {
        let response = self
            .sim
            .interaction_response(interaction.id, WAIT)
            .await
            .unwrap();
        text(&response.data)
    }

    async fn connect(&mut self, tune: impl FnOnce(Connection) -> Connection) {
        self.connect_with(tune, |runtime| runtime).await;
    }

    async fn connect_with(
        &mut self,
        tune: impl FnOnce(Connection) -> Connection,
        tune_runtime: impl FnOnce(RuntimeConfig) -> RuntimeConfig,
    ) {
        let connection = tune(Connection {
            executor: fast_executor(),
            ..Connection::new(self.sim.token(), Some(self.sim.base_url()))
        });
        let all_shards = connection.shards == townes::gateway::Shards::Auto;
        let running = connect(
            self.store.clone(),
            tune_runtime(RuntimeConfig::new(self.data_dir.path())),
            connection,
        )
        .await
        .unwrap();
        assert!(
            self.sim.wait_for_ready(1, WAIT).await,
            "the gateway never became ready"
        );
        self.running = Some(running);
        if !all_shards {
            return;
        }
        // Both guilds were announced and recorded.
        for g in [self.alpha.guild_id, self.beta.guild_id] {
            common::wait_until(|| async {
                self.store.command_set_hash(g).await.unwrap().is_some()
            })
            .await;
        }
    }

    fn general(&self) -> u64 {
        self.alpha.general_channel_id
    }

    /// Runs the due scheduled jobs, as `townes serve` does.
    fn run_jobs(&self) -> tokio::task::AbortHandle {
        common::run_jobs(self.running.as_ref().unwrap().platform.runtime.clone())
    }

    async fn bot_message(&self, channel: u64, pred: impl Fn(&SimMessage) -> bool) -> SimMessage {
        let bot = self.sim.bot_user_id();
        self.sim
            .wait_for_message(channel, WAIT, move |m| m.author_id == bot && pred(m))
            .await
            .expect("the bot did not post the expected message")
    }

    /// Runs a slash command and returns the text (content and embeds) of the answer.
    async fn slash(&self, user: u64, command: &str, options: Value) -> (Value, String) {
        self.slash_in(self.general(), user, command, options).await
    }

    async fn slash_in(
        &self,
        channel: u64,
        user: u64,
        command: &str,
        options: Value,
    ) -> (Value, String) {
        self.slash_at(self.alpha.guild_id, channel, user, command, options)
            .await
    }

    /// A slash command run in `guild`, and its final answer (a deferred one
    /// once edited).
    async fn slash_at(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        command: &str,
        options: Value,
    ) -> (Value, String) {
        let interaction = self.sim.slash(guild, channel, user, command, options).await;
        let response = self
            .sim
            .interaction_response(interaction.id, WAIT)
            .await
            .expect("no interaction response");
        let data = if response.kind == 5 {
            self.sim
                .wait_for_edit(interaction.id, WAIT)
                .await
                .expect("a deferred answer was never edited")
        } else {
            response.data.clone()
        };
        (data.clone(), text(&data))
    }

    fn unknown_dispatches(&self) -> u64 {
        self.running
            .as_ref()
            .unwrap()
            .platform
            .unknown_dispatches
            .load(Ordering::Relaxed)
    }

    async fn stop(mut self) {
        assert_eq!(
            self.unknown_dispatches(),
            0,
            "serenity could not read some dispatches"
        );
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(5)).await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

fn fast_executor() -> ExecutorConfig {
    ExecutorConfig {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ExecutorConfig::default()
    }
}

/// A message's or interaction answer's text: content plus embed titles and
/// descriptions.
fn text(data: &Value) -> String {
    let mut text = data["content"].as_str().unwrap_or_default().to_string();
    for embed in data["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            if let Some(s) = embed[key].as_str() {
                text.push(' ');
                text.push_str(s);
            }
        }
        for field in embed["fields"].as_array().into_iter().flatten() {
            text.push_str(&format!(" {} {}", field["name"], field["value"]));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_joins_is_welcomed() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        world
            .sim
            .member_join(world.alpha.guild_id, world.carol)
            .await;
        let carol = world.carol;
        let welcome = world
            .bot_message(world.general(), |m| {
                m.content.contains(&format!("<@{carol}>"))
            })
            .await;
        assert!(
            welcome.content.to_lowercase().contains("welcome"),
            "{label}: {}",
            welcome.content
        );
        assert_eq!(
            welcome.allowed_mentions,
            Some(json!({"parse": ["users"]})),
            "{label}: features can never ping @everyone or roles"
        );
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatting_levels_up_grants_the_reward_and_rank_shows_it() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let (guild, general, bob) = (world.alpha.guild_id, world.general(), world.bob);
    assert!(
        !world
            .sim
            .member_roles(guild, bob)
            .contains(&world.member_role)
    );
    for i in 0..20 {
        world
            .sim
            .say(guild, general, bob, &format!("message number {i} from bob"))
            .await;
        if world
            .sim
            .member_roles(guild, bob)
            .contains(&world.member_role)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let level_up = world
        .bot_message(general, |m| {
            m.content.contains(&format!("<@{bob}>")) && m.content.contains("level")
        })
        .await;
    assert!(level_up.content.contains('1'), "{}", level_up.content);
    let member_role = world.member_role;
    common::wait_until(|| async { world.sim.member_roles(guild, bob).contains(&member_role) })
        .await;

    let (_, answer) = world.slash(bob, "rank", json!([])).await;
    assert!(answer.contains("XP"), "{answer}");
    let (_, level) = world.slash(bob, "level", json!([])).await;
    assert!(level.contains("level 1"), "seed 002's `/level`: {level}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guild_policy_applies_before_a_command_runs() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let guild = world.alpha.guild_id;

    // A disabled module's command says so, as a slash and as a prefix command.
    world.install("hello").await;
    world.enable(guild, "hello").await;
    let market_runtime = world.installer();
    Marketplace::new(&market_runtime, "test")
        .disable(guild, "xp")
        .await
        .unwrap();
    let (data, answer) = world.slash(world.bob, "rank", json!([])).await;
    assert_eq!(
        answer,
        "This module is currently disabled. Enable it in the dashboard."
    );
    assert_eq!(
        data["flags"],
        json!(64),
        "refusals are only shown to the member"
    );

    // Role permissions: only Mod or higher may say hello; the owner always may.
    world
        .store
        .grant_role_permission(guild, world.mod_role, "hello")
        .await
        .unwrap();
    let (_, refused) = world.slash(world.bob, "hello", json!([])).await;
    assert!(
        refused.contains("needs the **Mod** role or a higher one"),
        "{refused}"
    );
    let (_, allowed) = world.slash(world.dan, "hello", json!([])).await;
    assert!(allowed.to_lowercase().contains("hello"), "{allowed}");
    let (_, owner) = world.slash(world.ada, "hello", json!([])).await;
    assert!(owner.to_lowercase().contains("hello"), "{owner}");

    // A per-command cooldown.
    world
        .store
        .set_command_cooldown(guild, "hello", 60)
        .await
        .unwrap();
    let (_, again) = world.slash(world.dan, "hello", json!([])).await;
    assert!(again.starts_with("Please wait 6"), "{again}");
    assert!(
        again.ends_with("seconds before using this command again."),
        "{again}"
    );

    // The admin-only command of welcome by a member without Manage Server.
    let (_, admin_only) = world.slash(world.bob, "welcome-test", json!([])).await;
    assert!(admin_only.contains("**Manage Server**"), "{admin_only}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_commands_follow_the_guild_settings() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let (guild, general, bob) = (world.alpha.guild_id, world.general(), world.bob);
    world.install("hello").await;
    world.enable(guild, "hello").await;
    world.sim.say(guild, general, bob, "!hello").await;
    let reply = world
        .bot_message(general, |m| m.content.to_lowercase().contains("hello"))
        .await;
    assert!(
        reply.content.contains(&format!("<@{bob}>")) || reply.content.contains("bob"),
        "{}",
        reply.content
    );

    // Slash only: prefix commands are ignored.
    let mut settings = world.store.guild_settings(guild).await.unwrap();
    settings.allow_prefix_fallback = false;
    world.store.set_guild_settings(&settings).await.unwrap();
    let before = world.sim.messages(general).len();
    world.sim.say(guild, general, bob, "!hello").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bot = world.sim.bot_user_id();
    assert!(
        world.sim.messages(general)[before..]
            .iter()
            .all(|m| m.author_id != bot),
        "a prefix command ran although the guild allows slash commands only"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bot_permission_is_named_with_a_fix() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let guild = world.alpha.guild_id;
    world.install("hello").await;
    world.enable(guild, "hello").await;
    let quiet = world.sim.create_channel(guild, "quiet");
    world.sim.set_overwrite(
        guild,
        quiet,
        world.sim.bot_user_id(),
        false,
        0,
        permissions::SEND_MESSAGES,
    );
    let (_, answer) = world.slash_in(quiet, world.bob, "hello", json!([])).await;
    assert!(
        answer.contains("missing the **Send Messages** permission"),
        "{answer}"
    );
    assert!(answer.contains("Server Settings → Roles"), "{answer}");
    world.stop().await;
}

/// Both guilds take slash commands only, so nothing enabled needs message
/// content when the platform connects.
async fn slash_only(world: &World) {
    for g in [world.alpha.guild_id, world.beta.guild_id] {
        let mut settings = world.store.guild_settings(g).await.unwrap();
        settings.allow_prefix_fallback = false;
        world.store.set_guild_settings(&settings).await.unwrap();
    }
}

/// The intents of the (one) connected shard.
fn shard_intents(sim: &Simulator) -> u64 {
    sim.gateway_stats()
        .ready_intents
        .first()
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_enabled_on_a_running_platform_receives_message_content() {
    use townes::wit::extensions::Method;
    use townes_discord_sim::intents::MESSAGE_CONTENT;
    let (_, store, _guard) = common::sqlite().await;
    let mut world = World::prepared(store).await;
    slash_only(&world).await;
    world.connect(|c| c).await;
    let (g, general, bob) = (world.alpha.guild_id, world.general(), world.bob);
    assert_eq!(shard_intents(&world.sim) & MESSAGE_CONTENT, 0);
    let identifies = world.sim.gateway_stats().identifies;

    world.install("custom_commands").await;
    world.enable(g, "custom-commands").await;
    feature_route(
        &world,
        g,
        "custom-commands",
        Method::Post,
        "/auto-responders",
        json!({ "trigger": "pizza", "match_type": "contains",
                "response": { "type": "text", "content": "Pizza time!" } }),
    )
    .await;
    common::wait_until(|| async {
        world.sim.gateway_stats().ready_shards == [0]
            && shard_intents(&world.sim) & MESSAGE_CONTENT != 0
    })
    .await;
    assert_eq!(
        world.sim.gateway_stats().identifies,
        identifies + 1,
        "one reconnect"
    );
    let platform = &world.running.as_ref().unwrap().platform;
    assert!(
        platform
            .intents
            .running()
            .contains(serenity::all::GatewayIntents::MESSAGE_CONTENT)
    );
    world.sim.say(g, general, bob, "pizza, anyone?").await;
    world
        .bot_message(general, |m| m.content == "Pizza time!")
        .await;
    // The features that were there keep working on the new connection.
    world.sim.member_join(g, world.carol).await;
    world
        .bot_message(general, |m| {
            m.content.contains(&format!("<@{}>", world.carol))
        })
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_intent_discord_refuses_is_named_with_the_fix() {
    use serenity::all::GatewayIntents;
    use townes_discord_sim::intents::{GUILD_MEMBERS, MESSAGE_CONTENT};
    let (_, store, _guard) = common::sqlite().await;
    let sim = SimConfig {
        privileged_intents: GUILD_MEMBERS,
        ..SimConfig::default()
    };
    let mut world = World::prepared_on(store, sim).await;
    slash_only(&world).await;
    world.connect(|c| c).await;
    let g = world.alpha.guild_id;
    let identifies = world.sim.gateway_stats().identifies;

    world.install("custom_commands").await;
    world.enable(g, "custom-commands").await;
    let platform = world.running.as_ref().unwrap().platform.clone();
    common::wait_until(|| async {
        platform
            .intents
            .refused()
            .contains(GatewayIntents::MESSAGE_CONTENT)
            && world.sim.gateway_stats().ready_shards == [0]
    })
    .await;
    // Refused (a closed connection, no session), then a session without it.
    assert_eq!(world.sim.gateway_stats().identifies, identifies + 1);
    assert_eq!(shard_intents(&world.sim) & MESSAGE_CONTENT, 0);
    assert!(!world.running.as_ref().unwrap().gateway_finished());
    let notice = platform
        .intents
        .notice(GatewayIntents::MESSAGE_CONTENT)
        .expect("a notice");
    assert!(notice.contains("Message Content"), "{notice}");
    assert!(notice.contains("developer portal"), "{notice}");
    assert_eq!(platform.intents.notice(GatewayIntents::GUILD_MEMBERS), None);
    // The platform keeps serving what it can.
    world.sim.member_join(g, world.carol).await;
    world
        .bot_message(world.general(), |m| {
            m.content.contains(&format!("<@{}>", world.carol))
        })
        .await;
    world.stop().await;
}

/// A platform whose guilds want message content (prefix commands are on by
/// default) starts without it when the bot's application lacks the intent,
/// instead of stopping at Discord's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_a_refused_privileged_intent_connects_without_it() {
    use serenity::all::GatewayIntents;
    use townes_discord_sim::intents::{GUILD_MEMBERS, MESSAGE_CONTENT};
    let (_, store, _guard) = common::sqlite().await;
    let sim = SimConfig {
        privileged_intents: GUILD_MEMBERS,
        ..SimConfig::default()
    };
    let mut world = World::prepared_on(store, sim).await;
    world.connect(|c| c).await;
    let platform = world.running.as_ref().unwrap().platform.clone();
    // Refused with both untried: members alone, then message content too,
    // refused again, so members alone.
    common::wait_until(|| async {
        platform
            .intents
            .refused()
            .contains(GatewayIntents::MESSAGE_CONTENT)
            && world.sim.gateway_stats().ready_shards == [0]
            && shard_intents(&world.sim) & GUILD_MEMBERS != 0
    })
    .await;
    assert_eq!(shard_intents(&world.sim) & MESSAGE_CONTENT, 0);
    assert_ne!(
        shard_intents(&world.sim) & GUILD_MEMBERS,
        0,
        "what was allowed stays"
    );
    world
        .sim
        .member_join(world.alpha.guild_id, world.carol)
        .await;
    world
        .bot_message(world.general(), |m| {
            m.content.contains(&format!("<@{}>", world.carol))
        })
        .await;
    world.stop().await;
}

/// Reaction roles catch up on start: a reaction added and one taken back
/// while the platform was stopped are reconciled when it connects again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_made_while_the_platform_was_stopped_are_reconciled_on_start() {
    use permissions::*;
    use townes::wit::extensions::Method;
    for (label, store, _guard) in common::each_backend().await {
        let mut world = World::prepared(store).await;
        let (g, general) = (world.alpha.guild_id, world.general());
        let (sim, bob, dan) = (world.sim.clone(), world.bob, world.dan);
        let reactor = sim.create_role(g, "Reactor", ADD_REACTIONS | READ_MESSAGE_HISTORY, 4);
        sim.give_role(g, sim.bot_user_id(), reactor);
        let red = sim.create_role(g, "Red", 0, 1);
        world.install("templates").await;
        world.enable(g, "templates").await;
        world.connect(|c| c).await;
        let message = sim.say(g, general, world.ada, "React for roles").await;
        feature_route(
            &world,
            g,
            "templates",
            Method::Post,
            "/reaction-roles",
            json!({ "channel_id": general.to_string(), "message_id": message.to_string(),
                    "mode": "normal", "pairs": [{ "emoji": "🔴", "role_id": red.to_string() }] }),
        )
        .await;
        sim.react(g, general, message, bob, "🔴").await;
        common::wait_until(|| async { sim.member_roles(g, bob).contains(&red) }).await;

        world
            .running
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        sim.unreact(g, general, message, bob, "🔴").await;
        sim.react(g, general, message, dan, "🔴").await;
        assert!(
            sim.member_roles(g, bob).contains(&red),
            "{label}: nobody was there to see it"
        );
        world.connect(|c| c).await;
        common::wait_until(|| async {
            sim.member_roles(g, dan).contains(&red) && !sim.member_roles(g, bob).contains(&red)
        })
        .await;
        world.stop().await;
    }
}

/// A command defined on the dashboard becomes the guild's own slash command
/// (contract 0.1.3 `guild-commands`), and goes when it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_defined_command_is_registered_as_a_slash_command_of_the_guild() {
    use townes::wit::extensions::Method;
    for (label, store, _guard) in common::each_backend().await {
        let world = World::running_with(store, "custom-commands").await;
        let g = world.alpha.guild_id;
        let registered = |name: &'static str| {
            let sim = world.sim.clone();
            move || {
                let sim = sim.clone();
                async move { sim.guild_commands(g).iter().any(|c| c["name"] == name) }
            }
        };
        feature_route(
            &world,
            g,
            "custom-commands",
            Method::Post,
            "/commands",
            json!({ "name": "greet", "description": "Greets you",
                    "response": { "type": "text", "content": "Hi {user.mention}: {args}" } }),
        )
        .await;
        common::wait_until(registered("greet")).await;
        let greet = world
            .sim
            .guild_commands(g)
            .into_iter()
            .find(|c| c["name"] == "greet")
            .unwrap();
        assert_eq!(greet["description"], "Greets you", "{label}");
        assert!(
            world
                .sim
                .guild_commands(g)
                .iter()
                .any(|c| c["name"] == "cc"),
            "{label}: the manifest's stay"
        );
        let bob = world.bob;
        let (_, answer) = world
            .slash(
                bob,
                "greet",
                json!([{ "name": "args", "type": 3, "value": "hello there" }]),
            )
            .await;
        assert_eq!(answer, format!("Hi <@{bob}>: hello there"), "{label}");

        let runtime = world.running.as_ref().unwrap().platform.runtime.clone();
        use townes::wit::extensions::{ApiCaller, ApiRequest};
        let deleted = runtime
            .api(
                g,
                "custom-commands",
                ApiRequest {
                    method: Method::Delete,
                    route: "/commands/{name}".into(),
                    params: vec![("name".into(), "greet".into())],
                    query: vec![],
                    body: None,
                    caller: ApiCaller {
                        user_id: Some(world.ada),
                        owner: true,
                        permissions: u64::MAX,
                    },
                },
            )
            .await;
        assert!(deleted.result.is_ok(), "{label}: {:?}", deleted.result);
        let gone = registered("greet");
        common::wait_until(|| {
            let still = gone();
            async move { !still.await }
        })
        .await;
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_a_feature_re_registers_only_that_guilds_commands() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let (alpha, beta) = (world.alpha.guild_id, world.beta.guild_id);
    let names = |g| {
        let mut names: Vec<String> = world
            .sim
            .guild_commands(g)
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(alpha),
        ["leaderboard", "level", "rank", "welcome-test", "xp"]
    );
    assert!(names(beta).is_empty());
    let (alpha_before, beta_before) = (
        world.sim.command_overwrites(alpha),
        world.sim.command_overwrites(beta),
    );

    world.install("hello").await;
    world.enable(beta, "hello").await;
    common::wait_until(|| async { world.sim.command_overwrites(beta) > beta_before }).await;
    assert_eq!(names(beta), ["hello"]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        world.sim.command_overwrites(alpha),
        alpha_before,
        "alpha's commands did not change"
    );
    assert_eq!(
        world.sim.command_overwrites(beta),
        beta_before + 1,
        "registered once"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_delays_but_loses_nothing() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let guild = world.alpha.guild_id;
    let newcomers: Vec<u64> = (0..5)
        .map(|i| world.sim.create_user(&format!("newcomer{i}")))
        .collect();
    world.sim.rate_limit(12, Duration::from_millis(300), false);
    for &user in &newcomers {
        world.sim.member_join(guild, user).await;
    }
    for &user in &newcomers {
        world
            .bot_message(world.general(), |m| {
                m.content.contains(&format!("<@{user}>"))
            })
            .await;
    }
    let requests = world.sim.requests();
    assert!(
        requests.iter().filter(|r| r.status == 429).count() >= 12,
        "the storm happened"
    );
    let welcomes = world
        .sim
        .messages(world.general())
        .into_iter()
        .filter(|m| {
            newcomers
                .iter()
                .any(|u| m.content.contains(&format!("<@{u}>")))
        })
        .count();
    assert_eq!(
        welcomes,
        newcomers.len(),
        "each newcomer welcomed exactly once"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_are_deferred_then_edited() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::with(store, |c| Connection {
        defer_after: Duration::ZERO,
        ..c
    })
    .await;
    let interaction = world
        .sim
        .slash(
            world.alpha.guild_id,
            world.general(),
            world.bob,
            "rank",
            json!([]),
        )
        .await;
    let response = world
        .sim
        .interaction_response(interaction.id, WAIT)
        .await
        .unwrap();
    assert_eq!(response.kind, 5, "deferred");
    let edit = world.sim.wait_for_edit(interaction.id, WAIT).await.unwrap();
    assert!(text(&edit).contains("XP"), "{edit}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_resumes_after_a_reconnect_and_reidentifies_after_an_invalid_session() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let guild = world.alpha.guild_id;
    let identifies = world.sim.gateway_stats().identifies;

    world.sim.reconnect_shards().await;
    common::wait_until(|| async { world.sim.gateway_stats().resumes >= 1 }).await;
    world.sim.member_join(guild, world.carol).await;
    let carol = world.carol;
    world
        .bot_message(world.general(), |m| {
            m.content.contains(&format!("<@{carol}>"))
        })
        .await;

    world.sim.invalidate_sessions(false).await;
    common::wait_until(|| async { world.sim.gateway_stats().identifies > identifies }).await;
    assert!(world.sim.wait_for_ready(1, WAIT).await);
    let eve = world.sim.create_user("eve");
    world.sim.member_join(guild, eve).await;
    world
        .bot_message(world.general(), |m| {
            m.content.contains(&format!("<@{eve}>"))
        })
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_guild_marks_it_left() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let beta = world.beta.guild_id;
    world.sim.remove_bot(beta).await;
    common::wait_until(|| async {
        world
            .store
            .guild(beta)
            .await
            .unwrap()
            .unwrap()
            .left_at
            .is_some()
    })
    .await;
    let settings = world
        .store
        .guild_settings(world.alpha.guild_id)
        .await
        .unwrap();
    assert!(
        settings.updated_at.is_some(),
        "joining created the guild's default settings"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_interactions_are_verified_and_answered() {
    use townes::interactions::http::{SignatureCheck, router};
    use townes_discord_sim::Forgery;
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/interactions", listener.local_addr().unwrap());
    let public_key = world.sim.deliver_interactions_to(&url);
    let platform = world.running.as_ref().unwrap().platform.clone();
    let app = router(platform, SignatureCheck::from_hex(&public_key).unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(
        world.sim.ping_interactions_endpoint().await,
        (200, json!({"type": 1}))
    );
    for forgery in [
        Forgery::BadSignature,
        Forgery::StaleTimestamp,
        Forgery::MissingHeaders,
    ] {
        assert_eq!(
            world.sim.post_interaction_unsigned_or_forged(forgery).await,
            401
        );
    }
    let (_, answer) = world.slash(world.bob, "rank", json!([])).await;
    assert!(answer.contains("XP"), "{answer}");
    world.stop().await;
}

/// `townes serve` as a separate process, killed with SIGKILL while Discord rate
/// limits its messages, then started again: every queued message is delivered,
/// once.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_process_mid_queue_loses_nothing() {
    let (_, store, guard) = common::sqlite().await;
    let world = World::prepared(store).await;
    let serve = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_townes"))
            .arg("serve")
            .env("DATABASE_URL", guard.url())
            .env("TOWNES_DATA_DIR", world.data_dir.path())
            .env("DISCORD_TOKEN", world.sim.token())
            .env("DISCORD_API_BASE", world.sim.base_url())
            .env("TOWNES_API_ADDR", "127.0.0.1:0")
            .env_remove("TOWNES_SHARDS")
            // A killed process keeps its outbox leases until they run out: short
            // ones, so the next process takes its calls over within the test's wait.
            .env("TOWNES_DISCORD_LEASE_SECS", "2")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut first = serve();
    assert!(world.sim.wait_for_ready(1, WAIT).await);
    let guild = world.alpha.guild_id;
    common::wait_until(|| async { world.store.command_set_hash(guild).await.unwrap().is_some() })
        .await;

    // Every welcome is stuck behind 429s (one channel: one queue, in order).
    world.sim.rate_limit(6, Duration::from_millis(800), false);
    let newcomers: Vec<u64> = (0..4)
        .map(|i| world.sim.create_user(&format!("newcomer{i}")))
        .collect();
    for &user in &newcomers {
        world.sim.member_join(guild, user).await;
    }
    common::wait_until(|| async {
        world.store.outbox_pending_count().await.unwrap() >= newcomers.len() as u64
    })
    .await;
    first.kill().await.unwrap();

    let mut second = serve();
    for &user in &newcomers {
        world
            .bot_message(world.general(), |m| {
                m.content.contains(&format!("<@{user}>"))
            })
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for &user in &newcomers {
        let welcomes = world
            .sim
            .messages(world.general())
            .into_iter()
            .filter(|m| m.content.contains(&format!("<@{user}>")))
            .count();
        assert_eq!(welcomes, 1, "newcomer {user} welcomed exactly once");
    }
    common::wait_until(|| async { world.store.outbox_pending_count().await.unwrap() == 0 }).await;
    second.kill().await.unwrap();
    world.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_menus_and_forms_reach_the_feature_that_made_them() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let (guild, general, bob) = (world.alpha.guild_id, world.general(), world.bob);
    world.install("panel").await;
    world.enable(guild, "panel").await;
    common::wait_until(|| async {
        world
            .sim
            .guild_commands(guild)
            .iter()
            .any(|c| c["name"] == "panel")
    })
    .await;

    let (data, answer) = world.slash(bob, "panel", json!([])).await;
    assert_eq!(answer, "Pick one");
    assert_eq!(
        data["components"][0]["components"][0]["custom_id"], "panel:yes",
        "namespaced"
    );
    assert_eq!(
        data["components"][1]["components"][0]["custom_id"],
        "panel:flavour"
    );
    let panel = world
        .bot_message(general, |m| m.content == "Pick one")
        .await;

    let click = world
        .sim
        .click(guild, general, bob, panel.id, "panel:yes")
        .await;
    assert_eq!(world.answer(click).await, "clicked yes");
    // The feature sees the clicker's permissions in the channel.
    let sweep = world
        .sim
        .click(guild, general, bob, panel.id, "panel:sweep")
        .await;
    assert_eq!(world.answer(sweep).await, "only moderators may sweep");
    world
        .sim
        .set_role_permissions(guild, world.mod_role, permissions::MANAGE_MESSAGES);
    let sweep = world
        .sim
        .click(guild, general, world.dan, panel.id, "panel:sweep")
        .await;
    assert_eq!(world.answer(sweep).await, "swept");
    let choice = world
        .sim
        .choose(
            guild,
            general,
            bob,
            panel.id,
            "panel:flavour",
            &["chocolate"],
        )
        .await;
    assert_eq!(world.answer(choice).await, "chose chocolate");

    let interaction = world
        .sim
        .slash(guild, general, bob, "form", json!([]))
        .await;
    let form = world
        .sim
        .interaction_response(interaction.id, WAIT)
        .await
        .unwrap();
    assert_eq!(form.kind, 9, "a modal");
    assert_eq!(form.data["custom_id"], "panel:survey");
    let submit = world
        .sim
        .submit_modal(guild, general, bob, "panel:survey", &[("name", "Bob")])
        .await;
    assert_eq!(world.answer(submit).await, "thanks Bob");

    // Clicks follow the guild's role rules for the feature: only Mod or
    // higher may use the panel, whoever posted it.
    world
        .store
        .grant_role_permission(guild, world.mod_role, "panel")
        .await
        .unwrap();
    let click = world
        .sim
        .click(guild, general, bob, panel.id, "panel:yes")
        .await;
    let refused = world.answer(click).await;
    assert!(
        refused.contains("needs the **Mod** role or a higher one"),
        "{refused}"
    );
    let click = world
        .sim
        .click(guild, general, world.dan, panel.id, "panel:yes")
        .await;
    assert_eq!(world.answer(click).await, "clicked yes");

    // Another feature's namespace reaches that feature, never this one.
    let forged = world
        .sim
        .click(guild, general, bob, panel.id, "xp:yes")
        .await;
    assert!(world.answer(forged).await.contains("unknown component"));
    // A disabled feature's buttons say so.
    let market_runtime = world.installer();
    Marketplace::new(&market_runtime, "test")
        .disable(guild, "panel")
        .await
        .unwrap();
    let click = world
        .sim
        .click(guild, general, bob, panel.id, "panel:yes")
        .await;
    assert_eq!(
        world.answer(click).await,
        "This module is currently disabled. Enable it in the dashboard."
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_split_the_shards_and_each_serves_its_guilds() {
    use townes::gateway::Shards;
    let (_, store, _guard) = common::sqlite().await;
    let mut world = World::prepared_on(
        store,
        SimConfig {
            shards: 2,
            ..SimConfig::default()
        },
    )
    .await;
    world.enable(world.beta.guild_id, "welcome").await;
    let beta_general = world.beta.general_channel_id;
    world
        .configure_in(
            world.beta.guild_id,
            "welcome",
            json!({"channel": beta_general}),
        )
        .await;
    world
        .connect(|c| Connection {
            shards: Shards::Range {
                first: 0,
                last: 0,
                total: 2,
            },
            ..c
        })
        .await;
    let second = connect(
        world.store.clone(),
        RuntimeConfig::new(world.data_dir.path()),
        Connection {
            shards: Shards::Range {
                first: 1,
                last: 1,
                total: 2,
            },
            executor: fast_executor(),
            ..Connection::new(world.sim.token(), Some(world.sim.base_url()))
        },
    )
    .await
    .unwrap();
    assert!(
        world.sim.wait_for_ready(2, WAIT).await,
        "both shards connected"
    );
    for g in [world.alpha.guild_id, world.beta.guild_id] {
        common::wait_until(|| async { world.store.command_set_hash(g).await.unwrap().is_some() })
            .await;
    }
    let stats = world.sim.gateway_stats();
    assert_eq!(stats.ready_shards, [0, 1]);
    assert_eq!(
        stats.identifies, 2,
        "each process identified its own shard only"
    );

    // Each guild's events reach exactly one process: each newcomer is welcomed
    // once, in both guilds, so both shards are served and none twice.
    for g in [world.alpha, world.beta] {
        let newcomer = world.sim.create_user("newcomer");
        world.sim.member_join(g.guild_id, newcomer).await;
        let mention = format!("<@{newcomer}>");
        world
            .bot_message(g.general_channel_id, |m| m.content.contains(&mention))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let welcomes = world
            .sim
            .messages(g.general_channel_id)
            .into_iter()
            .filter(|m| m.content.contains(&mention))
            .count();
        assert_eq!(welcomes, 1);
    }
    second.shutdown(Duration::from_secs(5)).await.unwrap();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_whose_discord_calls_keep_being_refused_is_paused() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let guild = world.alpha.guild_id;
    world.install("hostile").await;
    world.enable(guild, "hostile").await;
    common::wait_until(|| async {
        world
            .sim
            .guild_commands(guild)
            .iter()
            .any(|c| c["name"] == "kick-ten")
    })
    .await;
    // Nobody may kick the guild's owner: each run asks ten times and is refused.
    let owner = json!([{ "name": "user", "type": 6, "value": world.ada.to_string() }]);
    for _ in 0..3 {
        let (_, answer) = world.slash(world.bob, "kick-ten", owner.clone()).await;
        assert!(answer.starts_with("kick-ten: "), "{answer}");
        assert!(!answer.ends_with("ok"), "{answer}");
    }
    let (_, paused) = world.slash(world.bob, "kick-ten", owner).await;
    assert!(paused.contains("paused"), "{paused}");
    // Thirty refusals cost Discord one invalid request: the rest were refused here.
    let kicks = world
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/members/"))
        .count();
    assert_eq!(kicks, 1);
    let audit = world.store.audit_entries(guild, 20).await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "feature.paused")
        .expect("paused in the audit log");
    assert!(
        entry.details["reason"]
            .as_str()
            .unwrap()
            .contains("Discord requests were refused"),
        "{:?}",
        entry.details
    );
    world.stop().await;
}

/// A feature whose writes pile up behind a rate-limited channel (each
/// invocation gives up waiting; its write stays queued) reaches its outbox
/// quota and is told so, while the same feature in another guild is not held
/// (the executor's own test bounds that delay at a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_over_its_outbox_quota_is_told_and_other_guilds_are_not_held() {
    let (_, store, _guard) = common::sqlite().await;
    let mut world = World::prepared(store).await;
    let (alpha, beta) = (world.alpha.guild_id, world.beta.guild_id);
    world.install("hostile").await;
    world.enable(alpha, "hostile").await;
    world.enable(beta, "hostile").await;
    world
        .connect_with(
            |c| Connection {
                executor: ExecutorConfig {
                    feature_quota: 2,
                    ..fast_executor()
                },
                ..c
            },
            |r| RuntimeConfig {
                plans: Plans::from_json(r#"{"free": {"wall_ms": 300, "discord_wait_ms": 200}}"#)
                    .unwrap(),
                ..r
            },
        )
        .await;
    common::wait_until(|| async {
        world
            .sim
            .guild_commands(alpha)
            .iter()
            .any(|c| c["name"] == "send")
    })
    .await;
    let parked = world.general();
    world
        .sim
        .rate_limit_channel(parked, Duration::from_secs(60));

    for _ in 0..2 {
        let (_, answer) = world.slash(world.bob, "send", json!([])).await;
        assert!(!answer.contains("send: ok"), "{answer}");
    }
    common::wait_until(|| async { world.store.outbox_pending_count().await.unwrap() >= 2 }).await;
    let (_, answer) = world.slash(world.bob, "send", json!([])).await;
    assert!(answer.contains("send: QuotaExceeded"), "{answer}");

    let started = std::time::Instant::now();
    let elsewhere = world.beta.general_channel_id;
    let (_, answer) = world
        .slash_at(beta, elsewhere, world.ada, "send", json!([]))
        .await;
    assert_eq!(answer, "send: ok");
    // Held behind the parked channel, it would wait out the 60 s of 429s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    world.stop().await;
}

/// Moderation end to end: warnings escalate to a timeout on Discord, a
/// temporary ban is lifted on time by a process that was not running when
/// it was given, a ban done in Discord's own interface becomes a case, and
/// the audit log names who did each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_escalates_lifts_temporary_bans_after_a_restart_and_records_discords_own_bans() {
    for (label, store, _guard) in common::each_backend().await {
        let mut world = World::prepared(store).await;
        let g = world.alpha.guild_id;
        let (dan, bob, carol) = (world.dan, world.bob, world.carol);
        let moderate =
            permissions::BAN_MEMBERS | permissions::KICK_MEMBERS | permissions::MODERATE_MEMBERS;
        let bot_moderates = world.sim.create_role(
            g,
            "Townes moderation",
            moderate | permissions::VIEW_AUDIT_LOG,
            4,
        );
        world
            .sim
            .give_role(g, world.sim.bot_user_id(), bot_moderates);
        world.sim.set_role_permissions(g, world.mod_role, moderate);
        world.install("moderation").await;
        world.enable(g, "moderation").await;
        world.connect(|c| c).await;
        let user = |id: u64| json!({"name": "user", "type": 6, "value": id.to_string()});

        for n in 1..=3 {
            let (_, text) = world.slash(dan, "warn", json!([user(bob)])).await;
            assert!(text.contains("Case #"), "{label}: warning {n}: {text}");
        }
        // 3 points: the default escalation's 1 h timeout, on Discord.
        common::wait_until(|| async { world.sim.timed_out_until_ms(g, bob).is_some() }).await;
        let until = world.sim.timed_out_until_ms(g, bob).unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let in_an_hour = now_ms + 3_600_000;
        assert!(until.abs_diff(in_an_hour) < 60_000, "{label}: {until}");

        let (_, banned) = world
            .slash(
                dan,
                "ban",
                json!([user(bob), {"name": "duration", "type": 3, "value": "3s"},
                       {"name": "reason", "type": 3, "value": "cool off"}]),
            )
            .await;
        assert!(banned.contains("ban"), "{label}: {banned}");
        assert!(world.sim.is_banned(g, bob), "{label}");
        // The process stops before the ban ends; the next one lifts it.
        world
            .running
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(world.sim.is_banned(g, bob), "{label}: nobody was running");
        world.connect(|c| c).await;
        let jobs = world.run_jobs();
        common::wait_until(|| async { !world.sim.is_banned(g, bob) }).await;

        // Dan bans Carol in Discord's own interface.
        world.sim.member_join(g, carol).await;
        world.sim.ban_as(g, dan, carol, Some("raid")).await;
        let mut carols = String::new();
        for _ in 0..100 {
            (_, carols) = world.slash(dan, "cases", json!([user(carol)])).await;
            if carols.contains("ban") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(carols.contains("ban raid"), "{label}: {carols}");

        // The job's audit entry is written when its invocation ends, just
        // after Discord saw the unban.
        common::wait_until(|| async {
            let audit = world.store.audit_entries(g, 100).await.unwrap();
            audit.iter().any(|e| e.action == "moderation.unban")
        })
        .await;
        let audit = world.store.audit_entries(g, 100).await.unwrap();
        let find = |action: &str, target: u64| {
            let id = target.to_string();
            audit
                .iter()
                .find(|e| e.action == action && e.details["target"] == id.as_str())
                .unwrap_or_else(|| panic!("{label}: no {action} of {target} in {audit:#?}"))
        };
        let timeout = find("moderation.timeout", bob);
        assert_eq!(timeout.actor, "feature:moderation", "{label}");
        assert_eq!(
            timeout.details["invoker"],
            dan.to_string(),
            "{label}: the warner"
        );
        let ban = find("moderation.ban", bob);
        assert_eq!(ban.details["invoker"], dan.to_string(), "{label}");
        assert_eq!(ban.details["reason"], "cool off", "{label}");
        let lifted = find("moderation.unban", bob);
        assert_eq!(
            lifted.details["invoker"],
            Value::Null,
            "{label}: a job lifted it"
        );
        let outside = find("moderation.ban", carol);
        assert_eq!(outside.actor, format!("user:{dan}"), "{label}");
        assert_eq!(outside.details["external"], true, "{label}");
        assert_eq!(outside.details["reason"], "raid", "{label}");
        // The platform's own bans are not reported back as Discord's.
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.action == "moderation.ban" && e.details["external"] == true)
                .count(),
            1,
            "{label}"
        );
        jobs.abort();
        world.stop().await;
    }
}

/// A poll end to end: members vote with its buttons, one changes their mind,
/// the message shows the counts, and its scheduled job ends it and posts the
/// results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_voted_on_and_ended_by_its_job() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::running_with(store, "fun").await;
        let (g, general, bob, dan) = (world.alpha.guild_id, world.general(), world.bob, world.dan);
        let jobs = world.run_jobs();
        let text = |name: &str, value: &str| json!({"name": name, "type": 3, "value": value});
        let (_, answer) = world
            .slash(
                bob,
                "poll",
                json!([
                    text("question", "Pizza or pasta?"),
                    text("options", "Pizza | Pasta"),
                    text("duration", "10s")
                ]),
            )
            .await;
        assert!(answer.contains("oll"), "{label}: {answer}");
        let poll = world
            .bot_message(general, |m| !m.components.is_empty())
            .await;
        let vote = |option: usize| common::custom_id(&poll, &format!("vote:1:{option}"));
        for (who, option) in [(bob, 0), (dan, 1), (dan, 0)] {
            let clicked = world
                .sim
                .click(g, general, who, poll.id, &vote(option))
                .await;
            let said = world.answer(clicked).await;
            assert!(said.contains("You voted for"), "{label}: {said}");
        }
        // The message shows both votes for pizza once the edits land.
        common::wait_until(|| async {
            world
                .sim
                .messages(general)
                .iter()
                .find(|m| m.id == poll.id)
                .is_some_and(|m| text_of(m).contains("2 votes"))
        })
        .await;
        let results = world
            .sim
            .wait_for_message(general, WAIT * 3, |m| text_of(m).contains("has ended"))
            .await
            .unwrap_or_else(|| panic!("{label}: the job never ended the poll"));
        let results = text_of(&results);
        assert!(
            results.contains("Pizza") && results.contains("2 votes"),
            "{label}: {results}"
        );
        let ended = world
            .sim
            .messages(general)
            .into_iter()
            .find(|m| m.id == poll.id)
            .unwrap();
        assert!(
            ended.components.is_empty(),
            "{label}: an ended poll takes no votes"
        );
        jobs.abort();
        world.stop().await;
    }
}

/// A message's content and embed text.
fn text_of(message: &SimMessage) -> String {
    text(&json!({ "content": message.content, "embeds": message.embeds }))
}

/// An announcement that comes due while the platform is down is posted once,
/// late, when it is back: not lost, not repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_due_during_downtime_is_posted_once_after_the_restart() {
    for (label, store, _guard) in common::each_backend().await {
        let mut world = World::running_with(store, "announcements").await;
        let (general, ada) = (world.general(), world.ada);
        let create = json!([{
            "name": "create",
            "type": 1,
            "options": [
                {"name": "channel", "type": 7, "value": general.to_string()},
                {"name": "message", "type": 3, "value": "Standup time at {server.name}!"},
                {"name": "at", "type": 3, "value": "in 3s"},
            ],
        }]);
        let (_, created) = world.slash(ada, "announce", create).await;
        assert!(created.contains('1'), "{label}: {created}");
        world
            .running
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let sim = world.sim.clone();
        let posted = move || {
            sim.messages(general)
                .into_iter()
                .filter(|m| m.content.contains("Standup time at Alpha!"))
                .count()
        };
        assert_eq!(posted(), 0, "{label}: nobody was running");
        world.connect(|c| c).await;
        let jobs = world.run_jobs();
        common::wait_until(|| async { posted() == 1 }).await;
        // Several more job polls: still once.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(posted(), 1, "{label}: posted once, late, not repeated");
        jobs.abort();
        world.stop().await;
    }
}

/// A role ping notifies only when the admin listed the role in the
/// feature's approval; the same mention without it shows, silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_pings_only_the_roles_the_admin_allowed() {
    let (label, store, _guard) = common::sqlite().await;
    let mut world = World::prepared(store).await;
    let (g, general, ada) = (world.alpha.guild_id, world.general(), world.ada);
    let (staff, other) = (world.mod_role, world.member_role);
    world.install("announcements").await;
    world.enable(g, "announcements").await;
    let runtime = world.installer();
    let market = Marketplace::new(&runtime, "test");
    let granted = world
        .store
        .guild_feature(g, "announcements")
        .await
        .unwrap()
        .unwrap()
        .grants;
    market
        .approve(
            g,
            "announcements",
            Approval {
                mention_roles: vec![staff],
                ..granted
            },
        )
        .await
        .unwrap();
    world
        .configure(
            "announcements",
            json!({ "allowed_ping_roles": [staff.to_string(), other.to_string()] }),
        )
        .await;
    world.connect(|c| c).await;
    for (role, word) in [(staff, "Staff"), (other, "Everyone")] {
        let create = json!([{
            "name": "create",
            "type": 1,
            "options": [
                {"name": "channel", "type": 7, "value": general.to_string()},
                {"name": "message", "type": 3, "value": format!("{word} meeting")},
                {"name": "at", "type": 3, "value": "in 1s"},
                {"name": "role", "type": 8, "value": role.to_string()},
            ],
        }]);
        world.slash(ada, "announce", create).await;
    }
    let jobs = world.run_jobs();
    let staff_post = world
        .bot_message(general, |m| m.content.contains("Staff meeting"))
        .await;
    let other_post = world
        .bot_message(general, |m| m.content.contains("Everyone meeting"))
        .await;
    jobs.abort();
    assert!(
        staff_post.content.contains(&format!("<@&{staff}>")),
        "{label}"
    );
    assert_eq!(
        staff_post.allowed_mentions.as_ref().unwrap()["roles"],
        json!([staff.to_string()]),
        "{label}: the approved role notifies"
    );
    assert!(
        other_post.content.contains(&format!("<@&{other}>")),
        "{label}"
    );
    assert_eq!(
        other_post.allowed_mentions.as_ref().unwrap(),
        &json!({ "parse": ["users"] }),
        "{label}: shown, but nobody is notified"
    );
    world.stop().await;
}

/// Calls a feature's dashboard route in `guild` as the guild's owner would
/// through the API (which checks rights and schemas first).
async fn feature_route(
    world: &World,
    guild: u64,
    feature: &str,
    method: townes::wit::extensions::Method,
    route: &str,
    body: Value,
) -> Value {
    use townes::wit::extensions::{ApiCaller, ApiRequest};
    let request = ApiRequest {
        method,
        route: route.into(),
        params: vec![],
        query: vec![],
        body: Some(body.to_string()),
        caller: ApiCaller {
            user_id: Some(world.ada),
            owner: true,
            permissions: u64::MAX,
        },
    };
    let runtime = &world.running.as_ref().unwrap().platform.runtime;
    let outcome = runtime.api(guild, feature, request).await;
    assert!(
        outcome.result.is_ok(),
        "{:?} {}",
        outcome.result,
        outcome.stdio
    );
    serde_json::from_str(&outcome.response.unwrap().body).unwrap()
}

/// Custom commands end to end: a tag listed by its category, and a
/// three-page menu paged before and after the platform restarts (its
/// buttons carry their page, so another process answers them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_list_by_category_and_a_menu_pages_across_a_restart() {
    use townes::wit::extensions::Method;
    for (label, store, _guard) in common::each_backend().await {
        let mut world = World::running_with(store, "custom-commands").await;
        let (g, general, bob) = (world.alpha.guild_id, world.general(), world.bob);
        let page = |n: &str| json!({ "type": "text", "content": format!("Page {n}") });
        feature_route(
            &world,
            g,
            "custom-commands",
            Method::Post,
            "/commands",
            json!({ "name": "guide", "menu_pages": [page("one"), page("two"), page("three")] }),
        )
        .await;
        feature_route(
            &world,
            g,
            "custom-commands",
            Method::Post,
            "/commands",
            json!({ "name": "faq", "is_tag": true, "category": "help",
                    "response": { "type": "text", "content": "Read the pins." } }),
        )
        .await;

        world.sim.say(g, general, bob, "!tags help").await;
        let listed = world
            .bot_message(general, |m| m.content.contains("faq"))
            .await;
        assert!(
            listed.content.contains("help"),
            "{label}: {}",
            listed.content
        );

        world.sim.say(g, general, bob, "!guide").await;
        let first = world
            .bot_message(general, |m| m.content.contains("Page one"))
            .await;
        let next = common::custom_id(&first, ":2");
        let clicked = world.sim.click(g, general, bob, first.id, &next).await;
        let response = world
            .sim
            .interaction_response(clicked.id, WAIT)
            .await
            .expect("an answer to Next");
        assert!(text(&response.data).contains("Page two"), "{label}");
        let onwards = response.data["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
            .find(|id| id.ends_with(":3"))
            .unwrap_or_else(|| panic!("{label}: no Next on page two: {}", response.data));

        world
            .running
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        world.connect(|c| c).await;
        let clicked = world.sim.click(g, general, bob, first.id, &onwards).await;
        assert!(
            world.answer(clicked).await.contains("Page three"),
            "{label}: the button still works after the restart"
        );
        world.stop().await;
    }
}

/// The `announcements` feature's stored announcement `number` in guild `g`.
async fn stored_announcement(store: &Store, g: u64, number: u64) -> Value {
    let scope = townes::store::Scope::new(g, "announcements");
    let json = store
        .kv_get(&scope, &format!("announcement:{number:010}"))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no announcement #{number}"));
    serde_json::from_str(&json).unwrap()
}

/// The pending jobs of the `announcements` feature in guild `g`: (id, Unix
/// seconds it is due, payload).
async fn announcement_jobs(store: &Store, g: u64) -> Vec<(String, i64, Value)> {
    let far = chrono::Utc::now() + chrono::Duration::days(400);
    store
        .due_jobs(far, 1000, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.scope.guild_id == g && j.scope.feature_id == "announcements")
        .map(|j| {
            let payload = serde_json::from_str(&j.payload).unwrap();
            (j.id, j.run_at.timestamp(), payload)
        })
        .collect()
}

/// Lets `seconds` go by for announcement `number`: the feature reads the real
/// clock, so its stored times and its pending job (the job's time and the run
/// it is for) move that far into the past instead. Only while no job runs.
async fn age_announcement(store: &Store, g: u64, number: u64, seconds: i64) {
    let scope = townes::store::Scope::new(g, "announcements");
    let mut announcement = stored_announcement(store, g, number).await;
    for field in ["next_run", "last_run", "last_due", "created_at"] {
        if let Some(t) = announcement[field].as_i64() {
            announcement[field] = json!(t - seconds);
        }
    }
    let job_id = announcement["pending_job"]
        .as_str()
        .expect("a pending job")
        .to_string();
    let (_, run_at, mut payload) = announcement_jobs(store, g)
        .await
        .into_iter()
        .find(|(id, ..)| *id == job_id)
        .expect("its job is pending");
    payload["due"] = json!(payload["due"].as_i64().unwrap() - seconds);
    assert!(store.cancel_job(&scope, &job_id).await.unwrap());
    let run_at = chrono::DateTime::from_timestamp(run_at - seconds, 0).unwrap();
    let moved = store
        .schedule_job(&scope, "announce", &payload.to_string(), run_at, 100)
        .await
        .unwrap();
    announcement["pending_job"] = json!(moved);
    let quota = townes::grants::Quota {
        max_bytes: 1 << 30,
        max_rows: 1_000_000,
    };
    store
        .kv_set(
            &scope,
            &format!("announcement:{number:010}"),
            &announcement.to_string(),
            quota,
        )
        .await
        .unwrap();
}

/// A recurring announcement (every 10 minutes) across a restart: its first
/// run is posted on schedule and the next one is scheduled ten minutes on;
/// the platform is stopped over that run and the one after it; once back it
/// posts the missed run once, late, and the next run is the first occurrence
/// after now, in phase, with exactly one job for it. Time goes by through
/// [`age_announcement`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_announcement_posts_on_schedule_and_a_run_missed_during_downtime_once() {
    const EVERY: i64 = 600;
    for (label, store, _guard) in common::each_backend().await {
        let mut world = World::running_with(store, "announcements").await;
        let (g, general, ada) = (world.alpha.guild_id, world.general(), world.ada);
        let create = json!([{
            "name": "create",
            "type": 1,
            "options": [
                {"name": "channel", "type": 7, "value": general.to_string()},
                {"name": "message", "type": 3, "value": "Tick at {server.name}!"},
                {"name": "every", "type": 3, "value": "10m"},
            ],
        }]);
        let (_, created) = world.slash(ada, "announce", create).await;
        assert!(created.contains("every 10 minutes"), "{label}: {created}");
        let sim = world.sim.clone();
        let posted = move || {
            sim.messages(general)
                .into_iter()
                .filter(|m| m.content == "Tick at Alpha!")
                .count()
        };
        let store = world.store.clone();
        let announcement = || stored_announcement(&store, g, 1);
        // Settled after `runs` posts: the job that posted is finished, and the
        // one pending job is the one the announcement names.
        let settled = |runs: u64| {
            let store = &store;
            async move {
                common::wait_until(|| async {
                    let a = stored_announcement(store, g, 1).await;
                    let jobs = announcement_jobs(store, g).await;
                    a["runs"] == runs && jobs.len() == 1 && a["pending_job"] == jobs[0].0.as_str()
                })
                .await
            }
        };
        let created = announcement().await;
        let first_due = created["next_run"].as_i64().unwrap();
        assert_eq!(
            first_due,
            created["created_at"].as_i64().unwrap() + EVERY,
            "{label}"
        );
        let jobs = announcement_jobs(&store, g).await;
        assert_eq!(jobs.len(), 1, "{label}: {jobs:?}");
        assert_eq!(jobs[0].0, created["pending_job"].as_str().unwrap());
        assert_eq!(jobs[0].2["due"], first_due, "{label}");
        // The host adds the delay to its own clock, a fraction of a second on.
        assert!((first_due..=first_due + 1).contains(&jobs[0].1), "{label}");

        // Ten minutes go by: the first run is due now, and posted on time.
        age_announcement(&store, g, 1, EVERY).await;
        let first_due = first_due - EVERY;
        let runner = world.run_jobs();
        common::wait_until(|| async { posted() == 1 }).await;
        settled(1).await;
        runner.abort();
        let after_first = announcement().await;
        assert_eq!(after_first["last_due"], first_due, "{label}");
        let second_due = first_due + EVERY;
        assert_eq!(after_first["next_run"], second_due, "{label}");
        let jobs = announcement_jobs(&store, g).await;
        assert_eq!(
            jobs.len(),
            1,
            "{label}: one job, for the next run: {jobs:?}"
        );
        assert_eq!(jobs[0].0, after_first["pending_job"].as_str().unwrap());
        assert_eq!(jobs[0].2["due"], second_due, "{label}");
        assert!(
            (second_due..=second_due + 1).contains(&jobs[0].1),
            "{label}"
        );

        // The platform stops, and 25 minutes go by: over the second run and
        // the third. Nobody posts.
        world
            .running
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        age_announcement(&store, g, 1, 25 * 60).await;
        let missed = second_due - 25 * 60;
        assert_eq!(posted(), 1, "{label}: nobody was running");

        world.connect(|c| c).await;
        let runner = world.run_jobs();
        common::wait_until(|| async { posted() == 2 }).await;
        // Nothing else is pending but the next run's job (checked below), so
        // nothing more can post before it.
        settled(2).await;
        runner.abort();
        assert_eq!(
            posted(),
            2,
            "{label}: posted once, late, not once per missed run"
        );
        runner.abort();
        let after = announcement().await;
        assert_eq!(after["last_due"], missed, "{label}");
        let next = after["next_run"].as_i64().unwrap();
        assert_eq!(
            next,
            missed + 2 * EVERY,
            "{label}: the first occurrence after now, in phase"
        );
        let now = chrono::Utc::now().timestamp();
        assert!(
            now < next && next <= now + EVERY,
            "{label}: {next} at {now}"
        );
        let jobs = announcement_jobs(&store, g).await;
        assert_eq!(
            jobs.len(),
            1,
            "{label}: one job, for the next run: {jobs:?}"
        );
        assert_eq!(jobs[0].0, after["pending_job"].as_str().unwrap());
        assert_eq!(jobs[0].2["due"], next, "{label}");
        assert!((next..=next + 1).contains(&jobs[0].1), "{label}");
        world.stop().await;
    }
}

/// Reaction roles end to end, one message per mode, set through the
/// templates feature's dashboard route: `normal` gives the role on a
/// reaction and takes it on un-reacting, and its `limit` caps the roles of
/// that message one member holds (a member below it still gets the role);
/// `unique` swaps the member's role for the new one; `verify` keeps the role
/// when the reaction is taken back.
///
/// The host handles reactions concurrently, so each step waits for its own
/// effect; a step that must change nothing is followed by another member's
/// step that must change something, and is checked again at the end. (The
/// world's welcome feature subscribes to member events, so the gateway
/// carries the member updates that keep the host's view of roles current.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_roles_follow_their_mode_and_per_message_limit() {
    use townes::wit::extensions::Method;
    for (label, store, _guard) in common::each_backend().await {
        let world = World::running_with(store, "templates").await;
        let (g, general, bob, dan) = (world.alpha.guild_id, world.general(), world.bob, world.dan);
        let sim = world.sim.clone();
        let role = |name: &str| sim.create_role(g, name, 0, 1);
        let (apple, banana, cherry) = (role("Apple"), role("Banana"), role("Cherry"));
        let (red, blue, verified) = (role("Red"), role("Blue"), role("Verified"));
        let mut messages = Vec::new();
        for (mode, limit, pairs) in [
            (
                "normal",
                2,
                vec![("🍎", apple), ("🍌", banana), ("🍒", cherry)],
            ),
            ("unique", 0, vec![("🔴", red), ("🔵", blue)]),
            ("verify", 0, vec![("✅", verified)]),
        ] {
            let message = sim
                .say(g, general, world.ada, &format!("React for roles ({mode})"))
                .await;
            let pairs: Vec<Value> = pairs
                .iter()
                .map(|(emoji, role)| json!({ "emoji": emoji, "role_id": role.to_string() }))
                .collect();
            let set = feature_route(
                &world,
                g,
                "templates",
                Method::Post,
                "/reaction-roles",
                json!({
                    "channel_id": general.to_string(),
                    "message_id": message.to_string(),
                    "mode": mode,
                    "limit": limit,
                    "pairs": pairs,
                }),
            )
            .await;
            assert_eq!(set["mode"], mode, "{label}: {set}");
            assert_eq!(
                set["pairs"].as_array().unwrap().len(),
                pairs.len(),
                "{label}"
            );
            messages.push(message);
        }
        let (normal, unique, verify) = (messages[0], messages[1], messages[2]);
        let has = |user: u64, role: u64| sim.member_roles(g, user).contains(&role);
        let react = |message: u64, user: u64, emoji: &'static str| {
            sim.react(g, general, message, user, emoji)
        };
        let unreact = |message: u64, user: u64, emoji: &'static str| {
            sim.unreact(g, general, message, user, emoji)
        };

        // normal: react to get the role, un-react to drop it.
        react(normal, bob, "🍎").await;
        common::wait_until(|| async { has(bob, apple) }).await;
        unreact(normal, bob, "🍎").await;
        common::wait_until(|| async { !has(bob, apple) }).await;
        react(normal, bob, "🍎").await;
        common::wait_until(|| async { has(bob, apple) }).await;
        react(normal, bob, "🍌").await;
        common::wait_until(|| async { has(bob, banana) }).await;
        // Bob holds two of the message's roles, its limit: his third reaction
        // gives nothing, while Dan's (he holds none) does.
        react(normal, bob, "🍒").await;
        react(normal, dan, "🍒").await;
        common::wait_until(|| async { has(dan, cherry) }).await;
        assert!(!has(bob, cherry), "{label}: a reaction past the limit");

        // unique: the new role replaces the old one.
        react(unique, bob, "🔴").await;
        common::wait_until(|| async { has(bob, red) }).await;
        react(unique, bob, "🔵").await;
        common::wait_until(|| async { has(bob, blue) && !has(bob, red) }).await;

        // verify: taking the reaction back keeps the role.
        react(verify, dan, "✅").await;
        common::wait_until(|| async { has(dan, verified) }).await;
        unreact(verify, dan, "✅").await;
        unreact(unique, bob, "🔵").await;
        common::wait_until(|| async { !has(bob, blue) }).await;
        react(unique, dan, "🔴").await;
        common::wait_until(|| async { has(dan, red) }).await;
        assert!(has(dan, verified), "{label}: verify never takes the role");
        assert!(!has(bob, cherry), "{label}: still past the limit");
        assert!(
            has(bob, apple) && has(bob, banana) && !has(bob, red),
            "{label}: {:?}",
            sim.member_roles(g, bob)
        );
        world.stop().await;
    }
}
