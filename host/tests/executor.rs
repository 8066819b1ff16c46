//! The Discord executor against the simulator over real HTTP: rate limits, retries,
//! refusals, dead letters, crash recovery, shutdown and backpressure, and fairness
//! between tenants (rate-limit buckets, quotas, the invalid-request governor,
//! cancellation), on SQLite and Postgres (the outbox is in the database).
//!
//! Every backend gets its own simulator: outbox ids start at 1 in each fresh
//! database, and message nonces are those ids.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use townes::discord::{
    Action, ActionOutput, Caller, Discord, DiscordError, Executor, ExecutorConfig, OUTBOX_LEASE,
    RemoteDiscord, RestClient,
};
use townes::store::{OutboxLease, Store};
use townes::wit::MessageBody;
use townes::wit::townes::feature::channels::{
    ChannelKind, ChannelSpec, OverwriteTarget, PermissionOverwrite,
};
use townes_discord_sim::{GuildSetup, SimConfig, Simulator, permissions as perms};

struct World {
    sim: Simulator,
    guild: GuildSetup,
    owner: u64,
}

impl World {
    async fn new() -> World {
        let sim = Simulator::start(SimConfig::default())
            .await
            .expect("start the simulator");
        let owner = sim.create_user("owner");
        let guild = sim.create_guild("Test", owner);
        World { sim, guild, owner }
    }

    fn rest(&self) -> RestClient {
        RestClient::new(&self.sim.base_url(), &self.sim.token()).expect("a REST client")
    }

    async fn executor(&self, store: &Store, config: ExecutorConfig) -> Executor {
        Executor::start(store.clone(), self.rest(), config)
            .await
            .expect("start the executor")
    }

    fn send(&self, channel_id: u64, text: &str) -> Action {
        Action::SendMessage {
            guild_id: self.guild.guild_id,
            channel_id,
            body: json!({ "content": text, "allowed_mentions": { "parse": ["users"] } }),
        }
    }

    fn texts(&self, channel_id: u64) -> Vec<String> {
        self.sim
            .messages(channel_id)
            .into_iter()
            .map(|m| m.content)
            .collect()
    }

    fn statuses(&self, path: &str) -> Vec<u16> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.status)
            .collect()
    }

    fn count_429s(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.status == 429)
            .count()
    }
}

/// Quick retries, so the tests stay fast.
fn fast() -> ExecutorConfig {
    ExecutorConfig {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        max_wait: Duration::from_secs(10),
        ..ExecutorConfig::default()
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Waits until the executor has nothing left, or panics after 10 s.
async fn drained(executor: &Executor, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while executor.queue_depth() > 0 {
        assert!(
            Instant::now() < deadline,
            "{label}: still {} queued",
            executor.queue_depth()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_burst_under_a_429_storm_arrives_complete_and_in_order() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        let retry_after = Duration::from_millis(100);
        w.sim.rate_limit(5, retry_after, false);
        let executor = w.executor(&store, fast()).await;

        let started = Instant::now();
        let mut pending = Vec::new();
        for text in numbered("m", 20) {
            pending.push(executor.submit(w.send(channel, &text)).await.unwrap());
        }
        for p in pending {
            let output = p.wait().await;
            assert!(
                matches!(output, Ok(ActionOutput::Message(_))),
                "{label}: {output:?}"
            );
        }

        assert_eq!(w.texts(channel), numbered("m", 20), "{label}");
        // The simulator answers a request that comes before an earlier 429's
        // retry_after has passed with another 429: exactly the 5 injected ones means
        // every wait was long enough.
        assert_eq!(w.count_429s(), 5, "{label}");
        assert!(started.elapsed() >= retry_after * 5, "{label}");
        let nonces: HashSet<_> = w
            .sim
            .messages(channel)
            .into_iter()
            .map(|m| m.nonce.expect("a nonce"))
            .collect();
        assert_eq!(nonces.len(), 20, "{label}: one nonce per message");

        let stats = executor.stats();
        assert_eq!(
            (stats.completed, stats.rate_limited, stats.queue_depth),
            (20, 5, 0),
            "{label}"
        );
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        let executor = w.executor(&store, fast()).await;
        w.sim.fail_next(2, 503);

        let output = executor.run(w.send(channel, "after two 503s")).await;
        assert!(
            matches!(output, Ok(ActionOutput::Message(_))),
            "{label}: {output:?}"
        );
        let statuses = w.statuses(&format!("/channels/{channel}/messages"));
        assert_eq!(&statuses[..2], [503, 503], "{label}");
        assert_eq!(statuses.len(), 3, "{label}");
        assert!((200..300).contains(&statuses[2]), "{label}: {statuses:?}");
        assert_eq!(w.texts(channel), ["after two 503s"], "{label}");
        assert_eq!(executor.stats().retried, 2, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_403_names_the_missing_permission_and_a_reason_reaches_the_audit_log() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let guild = w.guild.guild_id;
        // The bot needs a role above the one it hands out.
        let boss = w.sim.create_role(guild, "Boss", perms::SEND_MESSAGES, 5);
        w.sim.give_role(guild, w.sim.bot_user_id(), boss);
        let member_role = w.sim.create_role(guild, "Member", 0, 2);
        let ada = w.sim.create_user("ada");
        w.sim.member_join(guild, ada).await;
        w.sim
            .set_role_permissions(guild, w.guild.bot_role_id, perms::SEND_MESSAGES);
        let executor = w.executor(&store, fast()).await;
        let add = |reason: &str| Action::AddRole {
            guild_id: guild,
            user_id: ada,
            role_id: member_role,
            reason: Some(reason.to_string()),
        };

        let refused = executor.run(add("first try")).await.unwrap_err();
        assert_eq!(
            refused,
            DiscordError::Forbidden(
                "Missing Permissions: the bot needs Manage Roles, and the role must be below \
                 the bot's highest role"
                    .into()
            ),
            "{label}"
        );
        assert_eq!(executor.stats().failed, 1, "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");

        w.sim.set_role_permissions(
            guild,
            w.guild.bot_role_id,
            perms::SEND_MESSAGES | perms::MANAGE_ROLES,
        );
        executor
            .run(add("welcome, ünïcode & 100% \"quotes\""))
            .await
            .unwrap();
        assert!(
            w.sim.member_roles(guild, ada).contains(&member_role),
            "{label}"
        );
        let last = w.sim.requests().pop().unwrap();
        assert_eq!(
            last.audit_reason.as_deref(),
            Some("welcome, ünïcode & 100% \"quotes\""),
            "{label}"
        );

        // An unknown role is a typed not-found naming it.
        let missing = executor
            .run(Action::AddRole {
                guild_id: guild,
                user_id: ada,
                role_id: 42,
                reason: None,
            })
            .await
            .unwrap_err();
        assert_eq!(missing, DiscordError::NotFound("role 42".into()), "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_call_that_keeps_failing_is_dead_lettered_after_max_attempts() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        let config = ExecutorConfig {
            max_attempts: 3,
            ..fast()
        };
        let executor = w.executor(&store, config.clone()).await;
        w.sim.fail_next(3, 502);

        let error = executor
            .run(w.send(channel, "never arrives"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DiscordError::Unavailable(m) if m.contains("after 3 attempts")),
            "{label}: {error:?}"
        );
        let path = format!("/channels/{channel}/messages");
        assert_eq!(w.statuses(&path), [502, 502, 502], "{label}");
        let dead = store.outbox_dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1, "{label}");
        assert_eq!(dead[0].attempts, 3, "{label}");
        assert_eq!(dead[0].action["kind"], "send_message", "{label}");
        assert!(
            dead[0].last_error.as_deref().unwrap_or("").contains("502"),
            "{label}: {:?}",
            dead[0].last_error
        );
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        let stats = executor.stats();
        assert_eq!(
            (stats.failed, stats.dead_lettered, stats.queue_depth),
            (1, 1, 0),
            "{label}"
        );
        executor.shutdown(Duration::from_secs(1)).await;

        // A restart does not replay a dead letter.
        let again = w.executor(&store, config).await;
        assert_eq!(again.queue_depth(), 0, "{label}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(w.statuses(&path).len(), 3, "{label}");
        again.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn after_a_crash_a_new_executor_delivers_every_message_exactly_once() {
    for (label, store, guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        w.sim.rate_limit(4, Duration::from_millis(150), false);
        let first = w.executor(&store, fast()).await;
        for text in numbered("c", 8) {
            // Durable once submitted; nobody waits for the answer.
            drop(first.submit(w.send(channel, &text)).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        first.abandon().await;
        let before = w.texts(channel).len();
        assert!(
            before < 8,
            "{label}: the crash came too late to test anything"
        );
        assert_eq!(first.queue_depth(), 8 - before, "{label}");
        assert_eq!(
            first.run(w.send(channel, "late")).await.unwrap_err(),
            DiscordError::Unavailable("shutting down".into()),
            "{label}"
        );

        // A new process: its own pool on the same database.
        let reopened = Store::connect(guard.url()).await.unwrap();
        let second = w.executor(&reopened, fast()).await;
        assert_eq!(second.queue_depth(), 8 - before, "{label}");
        drained(&second, &label).await;
        assert_eq!(w.texts(channel), numbered("c", 8), "{label}");
        assert_eq!(reopened.outbox_pending_count().await.unwrap(), 0, "{label}");
        second.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_message_sent_just_before_a_crash_is_not_posted_again() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        // The state a crash leaves when Discord created the message but the row was
        // not removed yet: a pending row, and a message carrying its id as nonce.
        let action = w.send(channel, "only once");
        let id = store
            .outbox_insert(
                None,
                channel,
                None,
                &serde_json::to_value(&action).unwrap(),
                |_| {},
            )
            .await
            .unwrap();
        w.rest()
            .create_message(
                channel,
                &json!({ "content": "only once" }),
                Some(&id.to_string()),
            )
            .await
            .unwrap();

        let executor = w.executor(&store, fast()).await;
        assert_eq!(executor.queue_depth(), 1, "{label}");
        drained(&executor, &label).await;

        assert_eq!(w.texts(channel), ["only once"], "{label}");
        let creates: Vec<_> = w
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == format!("/channels/{channel}/messages"))
            .collect();
        assert_eq!(creates.len(), 2, "{label}: the row was replayed");
        let replay = creates[1].body.as_ref().unwrap();
        assert_eq!(replay["nonce"], id.to_string(), "{label}");
        assert_eq!(replay["enforce_nonce"], true, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_work_and_leaves_the_rest_queued() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        w.sim.rate_limit(3, Duration::from_millis(100), false);
        let executor = w.executor(&store, fast()).await;
        for text in numbered("d", 10) {
            drop(executor.submit(w.send(channel, &text)).await.unwrap());
        }
        executor.shutdown(Duration::from_secs(10)).await;
        assert_eq!(w.texts(channel), numbered("d", 10), "{label}");
        assert_eq!(executor.queue_depth(), 0, "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        assert_eq!(
            executor.run(w.send(channel, "too late")).await.unwrap_err(),
            DiscordError::Unavailable("shutting down".into()),
            "{label}"
        );

        // A deadline shorter than the rate limit: the rest stays for the next start.
        w.sim.rate_limit(6, Duration::from_millis(100), false);
        let hurried = w.executor(&store, fast()).await;
        for text in numbered("e", 5) {
            drop(hurried.submit(w.send(channel, &text)).await.unwrap());
        }
        hurried.shutdown(Duration::from_millis(150)).await;
        let left = store.outbox_pending_count().await.unwrap();
        assert!(left > 0, "{label}");
        assert_eq!(hurried.queue_depth() as u64, left, "{label}");

        let next = w.executor(&store, fast()).await;
        drained(&next, &label).await;
        let expected: Vec<String> = numbered("d", 10)
            .into_iter()
            .chain(numbered("e", 5))
            .collect();
        assert_eq!(w.texts(channel), expected, "{label}");
        next.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn queue_depth_rises_under_a_storm_spills_to_the_database_and_returns_to_zero() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        // Four actions in memory; the rest waits in the database.
        let config = ExecutorConfig {
            queue_capacity: 4,
            ..fast()
        };
        w.sim.rate_limit(3, Duration::from_millis(150), false);
        let executor = w.executor(&store, config).await;
        let mut pending = Vec::new();
        for text in numbered("q", 16) {
            pending.push(executor.submit(w.send(channel, &text)).await.unwrap());
        }
        let peak = executor.queue_depth();
        assert!(
            peak > 4,
            "{label}: depth {peak} never exceeded what memory holds"
        );
        // Once Discord answers again, keep submitting while the executor works through the
        // backlog: new calls must queue behind the rows waiting in the database.
        w.sim
            .wait_for_message(channel, Duration::from_secs(5), |_| true)
            .await
            .unwrap();
        for text in numbered("r", 16) {
            pending.push(executor.submit(w.send(channel, &text)).await.unwrap());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for p in pending {
            p.wait().await.unwrap();
        }
        assert_eq!(executor.queue_depth(), 0, "{label}");
        let expected: Vec<String> = numbered("q", 16)
            .into_iter()
            .chain(numbered("r", 16))
            .collect();
        assert_eq!(w.texts(channel), expected, "{label}");
        assert_eq!(
            executor.stats().completed,
            32,
            "{label}: each call ran once"
        );
        // Still ordered after the executor caught up and took direct hand-offs again.
        executor.run(w.send(channel, "after")).await.unwrap();
        assert_eq!(w.texts(channel).last().unwrap(), "after", "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn past_max_wait_the_caller_hears_queued_and_the_call_still_runs() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        let config = ExecutorConfig {
            max_wait: Duration::from_millis(100),
            ..fast()
        };
        w.sim.rate_limit(2, Duration::from_millis(200), false);
        let executor = w.executor(&store, config).await;
        let error = executor.run(w.send(channel, "late")).await.unwrap_err();
        assert_eq!(
            error,
            DiscordError::Unavailable(
                "queued; Discord is rate limiting, it will be delivered".into()
            ),
            "{label}"
        );
        let arrived = w
            .sim
            .wait_for_message(channel, Duration::from_secs(5), |m| m.content == "late")
            .await;
        assert!(arrived.is_some(), "{label}");
        drained(&executor, &label).await;
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_global_rate_limit_pauses_every_channel() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let guild = w.guild.guild_id;
        let first = w.guild.general_channel_id;
        let second = w.sim.create_channel(guild, "other");
        let executor = w.executor(&store, fast()).await;
        w.sim.rate_limit(1, Duration::from_millis(300), true);
        let started = Instant::now();
        let a = executor.submit(w.send(first, "a")).await.unwrap();
        // Let the first call meet the global 429.
        while executor.stats().rate_limited == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        executor.run(w.send(second, "b")).await.unwrap();
        a.wait().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{label}: the other channel did not wait"
        );
        assert_eq!(
            w.count_429s(),
            1,
            "{label}: a call was sent during the pause"
        );
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn remote_discord_carries_out_every_capability_call() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let guild = w.guild.guild_id;
        let general = w.guild.general_channel_id;
        let boss = w.sim.create_role(guild, "Boss", perms::ADMINISTRATOR, 5);
        w.sim.give_role(guild, w.sim.bot_user_id(), boss);
        let member_role = w.sim.create_role(guild, "Member", 0, 2);
        let ada = w.sim.create_user("ada");
        w.sim.member_join(guild, ada).await;
        let executor = w.executor(&store, fast()).await;
        let discord =
            RemoteDiscord::new(executor.clone()).with_application_id(w.sim.application_id());
        let body = |text: &str| MessageBody {
            content: Some(text.to_string()),
            embeds: vec![],
            components: vec![],
        };

        // Messages.
        let id = discord
            .send_message(guild, general, &body("hi @everyone"))
            .await
            .unwrap();
        let sent = w.sim.messages(general).pop().unwrap();
        assert_eq!(
            (sent.id, sent.content.as_str()),
            (id, "hi @everyone"),
            "{label}"
        );
        assert_eq!(
            sent.allowed_mentions,
            Some(json!({ "parse": ["users"] })),
            "{label}"
        );
        discord
            .edit_message(guild, general, id, &body("edited"))
            .await
            .unwrap();
        assert_eq!(w.texts(general), ["edited"], "{label}");
        discord
            .add_reaction(guild, general, id, "👍")
            .await
            .unwrap();
        discord.delete_message(guild, general, id).await.unwrap();
        assert!(w.texts(general).is_empty(), "{label}");

        // Another guild's channel does not exist for this guild.
        let other = w.sim.create_guild("Other", w.owner);
        assert_eq!(
            discord
                .send_message(guild, other.general_channel_id, &body("leak"))
                .await
                .unwrap_err(),
            DiscordError::NotFound(format!("channel {}", other.general_channel_id)),
            "{label}"
        );
        assert!(
            w.sim.messages(other.general_channel_id).is_empty(),
            "{label}"
        );

        // Reads over REST.
        let member = discord.member(guild, ada).await.unwrap();
        assert_eq!(member.user.username, "ada", "{label}");
        let info = discord.guild_info(guild).await.unwrap();
        assert_eq!(
            (info.name.as_str(), info.owner_id),
            ("Test", w.owner),
            "{label}"
        );
        let roles = discord.roles(guild).await.unwrap();
        assert!(
            roles.iter().any(|r| r.id == member_role && r.position == 2),
            "{label}"
        );
        assert_eq!(discord.bot_top_position(guild).await.unwrap(), 5, "{label}");

        // Roles.
        discord
            .add_role(guild, ada, member_role, Some("verified"))
            .await
            .unwrap();
        assert!(
            w.sim.member_roles(guild, ada).contains(&member_role),
            "{label}"
        );
        discord
            .remove_role(guild, ada, member_role, None)
            .await
            .unwrap();
        assert!(
            !w.sim.member_roles(guild, ada).contains(&member_role),
            "{label}"
        );

        // Channels with overwrites.
        let spec = ChannelSpec {
            name: "ticket-1".into(),
            kind: ChannelKind::Text,
            parent_id: None,
            topic: Some("help".into()),
            overwrites: vec![
                PermissionOverwrite {
                    id: w.guild.everyone_role_id,
                    target: OverwriteTarget::Role,
                    allow: 0,
                    deny: perms::VIEW_CHANNEL,
                },
                PermissionOverwrite {
                    id: ada,
                    target: OverwriteTarget::Member,
                    allow: perms::VIEW_CHANNEL | perms::SEND_MESSAGES,
                    deny: 0,
                },
            ],
        };
        let ticket = discord.create_channel(guild, &spec).await.unwrap();
        let create = w
            .sim
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path == format!("/guilds/{guild}/channels"))
            .unwrap();
        assert_eq!(
            create.body.unwrap()["permission_overwrites"][1],
            json!({ "id": ada.to_string(), "type": 1,
                    "allow": (perms::VIEW_CHANNEL | perms::SEND_MESSAGES).to_string(), "deny": "0" }),
            "{label}"
        );
        discord
            .set_overwrite(
                guild,
                ticket,
                &PermissionOverwrite {
                    id: member_role,
                    target: OverwriteTarget::Role,
                    allow: perms::VIEW_CHANNEL,
                    deny: 0,
                },
            )
            .await
            .unwrap();

        // Purge: a bulk delete of the recent messages.
        for i in 0..3 {
            w.sim.say(guild, ticket, ada, &format!("spam {i}")).await;
        }
        // History reads them back, newest first, paged.
        let page = discord
            .channel_messages(guild, ticket, None, 2)
            .await
            .unwrap();
        let texts: Vec<&str> = page.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["spam 2", "spam 1"], "{label}");
        assert_eq!(page[0].author.id, ada, "{label}");
        let older = discord
            .channel_messages(guild, ticket, Some(page[1].id), 100)
            .await
            .unwrap();
        assert_eq!(older.len(), 1, "{label}");
        assert_eq!(older[0].content, "spam 0", "{label}");
        assert!(
            discord
                .channel_messages(guild + 1, ticket, None, 1)
                .await
                .is_err(),
            "{label}: a channel of another guild"
        );
        assert_eq!(
            discord.purge(guild, ticket, 10).await.unwrap(),
            3,
            "{label}"
        );
        assert!(w.texts(ticket).is_empty(), "{label}");
        assert!(
            w.sim
                .requests()
                .iter()
                .any(|r| r.path == format!("/channels/{ticket}/messages/bulk-delete")),
            "{label}"
        );
        discord.delete_channel(guild, ticket).await.unwrap();

        // Direct messages and moderation.
        discord.send_dm(ada, &body("psst")).await.unwrap();
        assert_eq!(w.sim.dm_messages(ada).len(), 1, "{label}");
        discord
            .timeout(guild, ada, 60, Some("calm down"))
            .await
            .unwrap();
        discord.kick(guild, ada, Some("bye")).await.unwrap();
        assert!(!w.sim.is_member(guild, ada), "{label}");
        discord.ban(guild, ada, 0, Some("for good")).await.unwrap();
        discord.unban(guild, ada, Some("served")).await.unwrap();
        assert!(
            matches!(
                discord.unban(guild, ada, None).await,
                Err(DiscordError::NotFound(_))
            ),
            "{label}: not banned any more"
        );

        // Commands.
        let commands = json!([{ "name": "rank", "description": "Your rank", "type": 1 }]);
        discord
            .overwrite_guild_commands(guild, &commands)
            .await
            .unwrap();
        assert_eq!(w.sim.guild_commands(guild).len(), 1, "{label}");

        // One call failed, on purpose: the second unban.
        assert_eq!(executor.stats().failed, 1, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn interactions_are_answered_directly_and_deferred_answers_go_through_the_outbox() {
    for (label, store, _guard) in common::each_backend().await {
        let sim = Simulator::start(SimConfig {
            interaction_window: Duration::from_millis(800),
            ..SimConfig::default()
        })
        .await
        .expect("start the simulator");
        let owner = sim.create_user("owner");
        let guild = sim.create_guild("Test", owner);
        let w = World { sim, guild, owner };
        let (guild_id, channel) = (w.guild.guild_id, w.guild.general_channel_id);
        let executor = w.executor(&store, fast()).await;

        // An immediate answer, through a 429 that still fits the window.
        let slash = w
            .sim
            .slash(guild_id, channel, owner, "rank", json!([]))
            .await;
        w.sim.rate_limit(1, Duration::from_millis(100), false);
        let answer = json!({ "type": 4, "data": { "content": "You are level 3",
            "allowed_mentions": { "parse": ["users"] }, "components": [] } });
        executor
            .interaction_callback(slash.id, &slash.token, &answer)
            .await
            .unwrap();
        let response = w
            .sim
            .interaction_response(slash.id, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(response.kind, 4, "{label}");
        assert_eq!(response.data["content"], "You are level 3", "{label}");
        // Not persisted: the outbox never saw it.
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");

        // A deferred answer, edited in later, and a follow-up.
        let slow = w
            .sim
            .slash(guild_id, channel, owner, "report", json!([]))
            .await;
        executor
            .interaction_callback(slow.id, &slow.token, &json!({ "type": 5 }))
            .await
            .unwrap();
        let app = w.sim.application_id();
        executor
            .edit_original(
                app,
                &slow.token,
                &json!({ "content": "Report ready", "components": [] }),
            )
            .await
            .unwrap();
        let followup = executor
            .followup(app, &slow.token, &json!({ "content": "One more thing" }))
            .await
            .unwrap();
        assert!(followup > 0, "{label}");
        let response = w
            .sim
            .interaction_response(slow.id, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(response.kind, 5, "{label}");
        assert_eq!(response.edits.len(), 1, "{label}");
        assert_eq!(response.edits[0]["content"], "Report ready", "{label}");
        assert_eq!(response.followups.len(), 1, "{label}");

        // Past Discord's window the callback is refused for good, not retried.
        let late = w
            .sim
            .slash(guild_id, channel, owner, "late", json!([]))
            .await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        let error = executor
            .interaction_callback(late.id, &late.token, &answer)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            DiscordError::NotFound(format!("interaction {}", late.id)),
            "{label}"
        );
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

// ---- fairness between tenants ----

/// The sim's recorded requests to paths starting with `prefix`.
fn requests_to(w: &World, prefix: &str) -> Vec<townes_discord_sim::Recorded> {
    w.sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect()
}

/// Waits until the simulator answered `status` to a request under `prefix`.
async fn answered(w: &World, prefix: &str, status: u16, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !requests_to(w, prefix).iter().any(|r| r.status == status) {
        assert!(
            Instant::now() < deadline,
            "{label}: no {status} for {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_channel_limited_for_a_minute_delays_no_other_guild_and_survives_a_restart() {
    for (label, store, guard) in common::each_backend().await {
        let w = World::new().await;
        let (busy, busy_channel) = (w.guild.guild_id, w.guild.general_channel_id);
        let quiet = w.sim.create_guild("Quiet", w.owner);
        let spammer = Caller::new(busy, "spammer");
        w.sim
            .rate_limit_channel(busy_channel, Duration::from_secs(60));
        let executor = w.executor(&store, fast()).await;

        let mut stuck = Vec::new();
        for text in numbered("s", 5) {
            let action = w.send(busy_channel, &text);
            stuck.push(executor.submit_as(Some(&spammer), action).await.unwrap());
        }
        answered(&w, &format!("/channels/{busy_channel}/"), 429, &label).await;

        // Another guild's writes go straight through while that channel is parked.
        let started = Instant::now();
        let mut quick = Vec::new();
        for text in numbered("q", 5) {
            let action = Action::SendMessage {
                guild_id: quiet.guild_id,
                channel_id: quiet.general_channel_id,
                body: json!({ "content": text }),
            };
            let caller = Caller::new(quiet.guild_id, "welcome");
            quick.push(executor.submit_as(Some(&caller), action).await.unwrap());
        }
        for pending in quick {
            pending.wait().await.unwrap();
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{label}: took {took:?}");
        assert_eq!(
            w.texts(quiet.general_channel_id),
            numbered("q", 5),
            "{label}"
        );
        // The parked channel was asked once, not hammered.
        let busy_requests = requests_to(&w, &format!("/channels/{busy_channel}/"));
        assert_eq!(busy_requests.len(), 1, "{label}: {busy_requests:?}");
        assert!(w.texts(busy_channel).is_empty(), "{label}");

        // A crash now loses none of the parked writes, nor who made them.
        drop(stuck);
        executor.abandon().await;
        let rows = store.outbox_pending(100).await.unwrap();
        assert_eq!(rows.len(), 5, "{label}");
        assert!(
            rows.iter()
                .all(|r| r.guild_id == Some(busy) && r.feature_id.as_deref() == Some("spammer")),
            "{label}: {rows:?}"
        );
        w.sim.rate_limit_channel(busy_channel, Duration::ZERO);
        let reopened = Store::connect(guard.url()).await.unwrap();
        let next = w.executor(&reopened, fast()).await;
        drained(&next, &label).await;
        assert_eq!(w.texts(busy_channel), numbered("s", 5), "{label}");
        next.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_thousand_sends_to_a_forbidden_channel_cost_discord_one_invalid_request() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let guild = w.guild.guild_id;
        let everyone = w.guild.everyone_role_id;
        let hidden = w.sim.create_channel(guild, "staff");
        w.sim
            .set_overwrite(guild, hidden, everyone, true, 0, perms::VIEW_CHANNEL);
        let read_only = w.sim.create_channel(guild, "announcements");
        w.sim
            .set_overwrite(guild, read_only, everyone, true, 0, perms::SEND_MESSAGES);
        let executor = w.executor(&store, fast()).await;
        let port = RemoteDiscord::new(executor.clone());
        let body = MessageBody {
            content: Some("hi".into()),
            embeds: vec![],
            components: vec![],
        };

        for channel in [hidden, read_only] {
            let caller = Caller::new(guild, "chatty");
            let feature = port.for_caller(&caller).expect("a feature view");
            for i in 0..1000 {
                let error = feature
                    .send_message(guild, channel, &body)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&error, DiscordError::Forbidden(m)
                        if i == 0 || m.contains("not asked again")),
                    "{label}: call {i}: {error:?}"
                );
            }
            let invalid: Vec<_> = requests_to(&w, &format!("/channels/{channel}"))
                .into_iter()
                .filter(|r| r.status == 403)
                .collect();
            assert_eq!(invalid.len(), 1, "{label}: channel {channel}: {invalid:?}");
            assert_eq!(caller.invalid_requests(), 1000, "{label}");
        }
        // Only the visible channel's lookup was a second request.
        assert_eq!(w.sim.requests().len(), 3, "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_feature_over_its_invalid_request_budget_is_refused_locally_others_are_not() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let guild = w.guild.guild_id;
        let mut config = fast();
        config.budgets.feature = 3;
        let executor = w.executor(&store, config).await;
        let port = RemoteDiscord::new(executor.clone());
        let body = MessageBody {
            content: Some("hi".into()),
            embeds: vec![],
            components: vec![],
        };
        let hidden: Vec<u64> = (0..5)
            .map(|i| {
                let c = w.sim.create_channel(guild, &format!("hidden-{i}"));
                w.sim.set_overwrite(
                    guild,
                    c,
                    w.guild.everyone_role_id,
                    true,
                    0,
                    perms::VIEW_CHANNEL,
                );
                c
            })
            .collect();
        let prober = Caller::new(guild, "prober");
        let feature = port.for_caller(&prober).unwrap();
        for channel in &hidden[..3] {
            let error = feature
                .send_message(guild, *channel, &body)
                .await
                .unwrap_err();
            assert!(
                matches!(error, DiscordError::Forbidden(_)),
                "{label}: {error:?}"
            );
        }
        let before = w.sim.requests().len();
        let error = feature
            .send_message(guild, hidden[3], &body)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DiscordError::QuotaExceeded(m) if m.contains("budget 3")),
            "{label}: {error:?}"
        );
        assert_eq!(w.sim.requests().len(), before, "{label}: Discord was asked");
        // Another feature of the same guild, and the host, still reach Discord.
        let other = port.for_caller(&Caller::new(guild, "welcome")).unwrap();
        other
            .send_message(guild, w.guild.general_channel_id, &body)
            .await
            .unwrap();
        port.send_message(guild, w.guild.general_channel_id, &body)
            .await
            .unwrap();
        assert_eq!(w.texts(w.guild.general_channel_id).len(), 2, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn learned_buckets_keep_a_burst_free_of_429s_and_under_the_global_limit() {
    for (label, store, _guard) in common::each_backend().await {
        let sim = Simulator::start(SimConfig {
            route_limit: 3,
            route_reset: Duration::from_millis(500),
            ..SimConfig::default()
        })
        .await
        .expect("start the simulator");
        let owner = sim.create_user("owner");
        let guild = sim.create_guild("Test", owner);
        let w = World { sim, guild, owner };
        let channels: Vec<u64> = (0..4)
            .map(|i| w.sim.create_channel(guild.guild_id, &format!("c{i}")))
            .collect();
        let per_second = 10;
        let config = ExecutorConfig {
            global_per_second: per_second,
            ..fast()
        };
        let executor = w.executor(&store, config).await;

        let started = Instant::now();
        let mut pending = Vec::new();
        for text in numbered("b", 10) {
            for channel in &channels {
                pending.push(executor.submit(w.send(*channel, &text)).await.unwrap());
            }
        }
        for p in pending {
            p.wait().await.unwrap();
        }
        for channel in &channels {
            assert_eq!(w.texts(*channel), numbered("b", 10), "{label}");
        }
        let requests = w.sim.requests();
        assert_eq!(requests.len(), 40, "{label}: retries happened");
        assert_eq!(w.count_429s(), 0, "{label}");
        // 40 requests at 10 per second need 3 s at least.
        assert!(started.elapsed() >= Duration::from_secs(3), "{label}");
        // The executor admits at most 10 requests in any second; on their way to the
        // simulator they are delayed unevenly (up to a few hundred ms on a loaded
        // machine), so what the simulator sees is checked over a second shortened by
        // that allowance: any 700 ms of arrivals hold requests admitted within 1 s.
        let window = Duration::from_millis(700);
        let arrivals: Vec<Instant> = requests.iter().map(|r| r.at).collect();
        let busiest = arrivals
            .iter()
            .map(|t| {
                arrivals
                    .iter()
                    .filter(|u| **u >= *t && **u < *t + window)
                    .count()
            })
            .max()
            .unwrap();
        assert!(
            busiest <= per_second as usize,
            "{label}: {busiest} requests within {window:?}"
        );
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_feature_over_its_pending_quota_is_refused_and_others_are_not() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let (guild, parked) = (w.guild.guild_id, w.guild.general_channel_id);
        let other_guild = w.sim.create_guild("Other", w.owner);
        w.sim.rate_limit_channel(parked, Duration::from_secs(60));
        let config = ExecutorConfig {
            feature_quota: 3,
            guild_quota: 5,
            ..fast()
        };
        let executor = w.executor(&store, config).await;
        let (xp, tickets) = (Caller::new(guild, "xp"), Caller::new(guild, "tickets"));
        let mut held = Vec::new();
        for text in numbered("x", 3) {
            held.push(
                executor
                    .submit_as(Some(&xp), w.send(parked, &text))
                    .await
                    .unwrap(),
            );
        }
        // The first write met the 429 (an invalid answer on xp's account) and waits.
        answered(&w, &format!("/channels/{parked}/"), 429, &label).await;
        // The simulator records the answer before the executor has counted it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while xp.invalid_requests() == 0 {
            assert!(
                Instant::now() < deadline,
                "{label}: the 429 was not counted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = xp.invalid_requests();
        let over = executor.submit_as(Some(&xp), w.send(parked, "x3")).await;
        assert!(
            matches!(&over, Err(DiscordError::QuotaExceeded(m)) if m.contains("quota 3")),
            "{label}: {:?}",
            over.as_ref().map(|p| p.id())
        );
        for text in numbered("t", 2) {
            held.push(
                executor
                    .submit_as(Some(&tickets), w.send(parked, &text))
                    .await
                    .unwrap(),
            );
        }
        let guild_over = executor
            .submit_as(Some(&tickets), w.send(parked, "t2"))
            .await;
        assert!(
            matches!(&guild_over, Err(DiscordError::QuotaExceeded(m)) if m.contains("quota 5")),
            "{label}"
        );
        assert_eq!(
            xp.invalid_requests(),
            before + 1,
            "{label}: the refusal counts"
        );
        // The same feature in another guild, and the host in this one, are not held.
        let elsewhere = Caller::new(other_guild.guild_id, "xp");
        let action = Action::SendMessage {
            guild_id: other_guild.guild_id,
            channel_id: other_guild.general_channel_id,
            body: json!({ "content": "fine" }),
        };
        executor.run_as(Some(&elsewhere), action).await.unwrap();
        held.push(executor.submit(w.send(parked, "host")).await.unwrap());
        assert_eq!(store.outbox_pending_count().await.unwrap(), 6, "{label}");
        drop(held);
        executor.abandon().await;
    }
}

#[tokio::test]
async fn cancelling_a_disabled_features_rows_drops_its_queued_writes_only() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new().await;
        let (guild, channel) = (w.guild.guild_id, w.guild.general_channel_id);
        // Long enough to cancel while the first write waits out its 429.
        w.sim.rate_limit_channel(channel, Duration::from_secs(3));
        let executor = w.executor(&store, fast()).await;
        let (xp, welcome) = (Caller::new(guild, "xp"), Caller::new(guild, "welcome"));
        let mut waits = HashMap::new();
        for (caller, text) in [(&xp, "x0"), (&welcome, "w0"), (&xp, "x1"), (&welcome, "w1")] {
            let pending = executor
                .submit_as(Some(caller), w.send(channel, text))
                .await
                .unwrap();
            waits.insert(text, pending);
        }
        answered(&w, &format!("/channels/{channel}/"), 429, &label).await;

        assert_eq!(
            store.outbox_cancel(guild, "xp").await.unwrap(),
            2,
            "{label}"
        );
        for (text, pending) in waits {
            let outcome = pending.wait().await;
            if text.starts_with('x') {
                assert!(
                    matches!(&outcome, Err(DiscordError::Unavailable(m)) if m.starts_with("cancelled")),
                    "{label}: {text}: {outcome:?}"
                );
            } else {
                assert!(outcome.is_ok(), "{label}: {text}: {outcome:?}");
            }
        }
        assert_eq!(w.texts(channel), ["w0", "w1"], "{label}");
        assert_eq!(executor.stats().cancelled, 2, "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        executor.shutdown(Duration::from_secs(1)).await;
    }
}

/// Leases short enough that a test sees them run out: 400 ms, renewed every 50 ms.
fn short_leases() -> ExecutorConfig {
    ExecutorConfig {
        lease: Duration::from_millis(400),
        lease_renew_every: Duration::from_millis(50),
        ..fast()
    }
}

/// How many message creates each nonce was answered for (a 429 creates nothing and
/// is not counted), for the rows sent to `channel`.
fn creates_per_nonce(w: &World, channel: u64) -> HashMap<String, usize> {
    let mut sent = HashMap::new();
    for r in w.sim.requests() {
        if r.method == "POST"
            && r.path == format!("/channels/{channel}/messages")
            && r.status != 429
        {
            let nonce = r.body.as_ref().and_then(|b| b["nonce"].as_str());
            *sent.entry(nonce.expect("a nonce").to_string()).or_insert(0) += 1;
        }
    }
    sent
}

fn action_json(action: &Action) -> serde_json::Value {
    serde_json::to_value(action).unwrap()
}

#[tokio::test]
async fn two_executors_on_one_database_never_send_one_row_twice() {
    for (label, store, guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        // Rows nobody holds (as before migration 0016): both executors race to
        // adopt them as they start.
        for text in numbered("old", 20) {
            let action = action_json(&w.send(channel, &text));
            store
                .outbox_insert(None, channel, None, &action, |_| {})
                .await
                .unwrap();
        }
        w.sim.rate_limit(6, Duration::from_millis(100), false);
        let other = Store::connect(guard.url()).await.unwrap();
        let (a, b) = tokio::join!(
            w.executor(&store, short_leases()),
            w.executor(&other, short_leases())
        );
        assert_eq!(a.queue_depth() + b.queue_depth(), 20, "{label}");
        // Both keep taking work for several lease periods, renewing and looking
        // for rows to adopt all along: neither takes a row the other holds.
        let mut pending = Vec::new();
        for (i, text) in numbered("new", 40).into_iter().enumerate() {
            let executor = if i % 2 == 0 { &a } else { &b };
            pending.push(executor.submit(w.send(channel, &text)).await.unwrap());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for p in pending {
            p.wait().await.unwrap();
        }
        drained(&a, &label).await;
        drained(&b, &label).await;

        let sent = creates_per_nonce(&w, channel);
        assert_eq!(sent.len(), 60, "{label}: every row sent");
        assert!(
            sent.values().all(|&n| n == 1),
            "{label}: a row was sent twice: {sent:?}"
        );
        let mut texts = w.texts(channel);
        texts.sort();
        let mut expected: Vec<String> = numbered("old", 20)
            .into_iter()
            .chain(numbered("new", 40))
            .collect();
        expected.sort();
        assert_eq!(texts, expected, "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        a.shutdown(Duration::from_secs(1)).await;
        b.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_crashed_holders_rows_are_taken_over_only_after_their_lease_and_sent_once() {
    for (label, store, guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        // What a process killed outright leaves: rows leased to it, never renewed.
        let lease = Duration::from_millis(1500);
        let crashed = OutboxLease {
            holder: "crashed-process",
            duration: lease,
        };
        let written = Instant::now();
        for text in numbered("k", 5) {
            let action = action_json(&w.send(channel, &text));
            store
                .outbox_insert(Some(crashed), channel, None, &action, |_| {})
                .await
                .unwrap();
        }
        let other = Store::connect(guard.url()).await.unwrap();
        let a = w.executor(&store, short_leases()).await;
        let b = w.executor(&other, short_leases()).await;
        assert_eq!(a.queue_depth() + b.queue_depth(), 0, "{label}");
        tokio::time::sleep(lease / 2).await;
        assert!(
            creates_per_nonce(&w, channel).is_empty(),
            "{label}: sent while the crashed holder's lease still ran"
        );

        w.sim
            .wait_for_message(channel, Duration::from_secs(10), |_| true)
            .await
            .unwrap();
        // Stored times are cut to microseconds: allow that much.
        let took = written.elapsed();
        assert!(
            took + Duration::from_millis(1) >= lease,
            "{label}: taken over after {took:?}"
        );
        drained(&a, &label).await;
        drained(&b, &label).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.texts(channel).len() < 5 {
            assert!(Instant::now() < deadline, "{label}: {:?}", w.texts(channel));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = creates_per_nonce(&w, channel);
        assert_eq!(sent.len(), 5, "{label}");
        assert!(sent.values().all(|&n| n == 1), "{label}: {sent:?}");
        assert_eq!(w.texts(channel), numbered("k", 5), "{label}");
        assert_eq!(store.outbox_pending_count().await.unwrap(), 0, "{label}");
        a.shutdown(Duration::from_secs(1)).await;
        b.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_graceful_shutdown_hands_its_rows_to_another_executor_at_once() {
    for (label, store, guard) in common::each_backend().await {
        let w = World::new().await;
        let channel = w.guild.general_channel_id;
        w.sim.rate_limit_channel(channel, Duration::from_secs(60));
        // The production lease (15 s): only the release can make the hand-over quick.
        let first = w.executor(&store, fast()).await;
        for text in numbered("h", 3) {
            drop(first.submit(w.send(channel, &text)).await.unwrap());
        }
        answered(&w, &format!("/channels/{channel}/"), 429, &label).await;
        first.shutdown(Duration::from_millis(100)).await;
        assert_eq!(store.outbox_pending_count().await.unwrap(), 3, "{label}");

        w.sim.rate_limit_channel(channel, Duration::ZERO);
        let other = Store::connect(guard.url()).await.unwrap();
        let started = Instant::now();
        let second = w.executor(&other, fast()).await;
        assert_eq!(second.queue_depth(), 3, "{label}: taken at start");
        drained(&second, &label).await;
        assert!(started.elapsed() < OUTBOX_LEASE, "{label}");
        assert_eq!(w.texts(channel), numbered("h", 3), "{label}");
        let sent = creates_per_nonce(&w, channel);
        assert!(sent.values().all(|&n| n == 1), "{label}: {sent:?}");
        second.shutdown(Duration::from_secs(1)).await;
    }
}
