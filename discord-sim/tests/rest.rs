//! The REST API over real HTTP: auth, permissions, hierarchy, validation, faults.

mod common;

use common::{Api, world};
use serde_json::json;
use std::time::{Duration, Instant};
use townes_discord_sim::permissions as p;

#[tokio::test]
async fn unauthorized_without_or_with_a_wrong_token() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let r = api.call_with("GET", "/users/@me", None, None, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401: Unauthorized", "code": 0}));
    let r = api
        .call_with("GET", "/users/@me", None, Some("Bot nope"), &[])
        .await;
    assert_eq!(r.status, 401);
    // The bare token (no "Bot ") is refused too.
    let token = w.sim.token();
    let r = api
        .call_with("GET", "/users/@me", None, Some(&token), &[])
        .await;
    assert_eq!(r.status, 401);
    let r = api.call("GET", "/users/@me", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], w.sim.bot_user_id().to_string());
    assert_eq!(r.body["bot"], true);
    // GET /gateway needs no auth; its URL is the simulator's WebSocket.
    let r = api.call_with("GET", "/gateway", None, None, &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["url"]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );
    let statuses: Vec<u16> = w.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 401, 200, 200]);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn send_permission_and_nonce_dedupe() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let general = w.g.general_channel_id;
    let path = format!("/channels/{general}/messages");

    let r = api
        .call(
            "POST",
            &path,
            Some(json!({"content": "hello", "nonce": "n1", "enforce_nonce": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["content"], "hello");
    assert_eq!(r.body["author"]["id"], w.sim.bot_user_id().to_string());
    assert_eq!(r.body["channel_id"], general.to_string());
    assert!(r.body["timestamp"].as_str().unwrap().ends_with("+00:00"));
    let first = r.body["id"].clone();

    // Same nonce with enforce_nonce: the first message again, nothing new.
    let r = api
        .call(
            "POST",
            &path,
            Some(json!({"content": "hello again", "nonce": "n1", "enforce_nonce": true})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], first);
    let msgs = w.sim.messages(general);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].nonce.as_deref(), Some("n1"));

    // Validation: too long, empty, `components: null`.
    let r = api
        .call("POST", &path, Some(json!({"content": "x".repeat(2001)})))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 50035);
    assert_eq!(
        r.body["errors"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let r = api.call("POST", &path, Some(json!({}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!(50035)));
    let r = api
        .call(
            "POST",
            &path,
            Some(json!({"content": "a", "components": null})),
        )
        .await;
    assert_eq!(r.status, 400);

    // Unknown channel.
    let r = api
        .call(
            "POST",
            "/channels/42/messages",
            Some(json!({"content": "a"})),
        )
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10003)));

    // Deny SEND_MESSAGES to the bot's role in a channel: 403 50013.
    let locked = w.sim.create_channel(w.g.guild_id, "locked");
    w.sim.set_overwrite(
        w.g.guild_id,
        locked,
        w.g.bot_role_id,
        true,
        0,
        p::SEND_MESSAGES,
    );
    let r = api
        .call(
            "POST",
            &format!("/channels/{locked}/messages"),
            Some(json!({"content": "a"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!({"message": "Missing Permissions", "code": 50013})
    );
    // A member overwrite for the bot wins over the role overwrite.
    let bot = w.sim.bot_user_id();
    w.sim
        .set_overwrite(w.g.guild_id, locked, bot, false, p::SEND_MESSAGES, 0);
    let r = api
        .call(
            "POST",
            &format!("/channels/{locked}/messages"),
            Some(json!({"content": "a"})),
        )
        .await;
    assert_eq!(r.status, 200);

    // Embeds need EMBED_LINKS: take it from @everyone and from the bot's role.
    w.sim.set_role_permissions(
        w.g.guild_id,
        w.g.bot_role_id,
        p::SEND_MESSAGES | p::VIEW_CHANNEL,
    );
    w.sim.set_role_permissions(
        w.g.guild_id,
        w.g.everyone_role_id,
        p::VIEW_CHANNEL | p::SEND_MESSAGES | p::READ_MESSAGE_HISTORY,
    );
    let r = api
        .call("POST", &path, Some(json!({"embeds": [{"title": "t"}]})))
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (403, json!(50013)));

    // A reply, with allowed_mentions kept.
    let said = w.sim.say(w.g.guild_id, general, w.alice, "hi bot").await;
    let r = api
        .call(
            "POST",
            &path,
            Some(json!({
                "content": format!("hi <@{}>", w.alice),
                "message_reference": {"message_id": said.to_string()},
                "allowed_mentions": {"parse": []},
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], 19);
    assert_eq!(r.body["mentions"], json!([]));
    assert_eq!(r.body["referenced_message"]["id"], said.to_string());
    let last = w.sim.messages(general).pop().unwrap();
    assert_eq!(last.reply_to, Some(said));
    assert_eq!(last.allowed_mentions, Some(json!({"parse": []})));

    // Deleting alice's message needs MANAGE_MESSAGES, which the bot role lost above.
    let r = api
        .call(
            "DELETE",
            &format!("/channels/{general}/messages/{said}"),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn role_hierarchy_and_moderation() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let g = w.g.guild_id;
    let (alice, owner) = (w.alice, w.owner);

    let above = w.sim.create_role(g, "Admins", p::ADMINISTRATOR, 5);
    let level = w.sim.create_role(g, "Level", 0, 1); // same position as the bot's role
    let below = w.sim.create_role(g, "Regular", 0, 0);
    // Positions given explicitly; the bot's role is at 1.
    let put = |role: u64| format!("/guilds/{g}/members/{alice}/roles/{role}");
    let r = api.call("PUT", &put(above), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (403, json!(50013)));
    let r = api.call("PUT", &put(level), None).await;
    assert_eq!(r.status, 403);
    let r = api
        .call_with(
            "PUT",
            &put(below),
            None,
            Some(&format!("Bot {}", w.sim.token())),
            &[("X-Audit-Log-Reason", "level%20up%20%F0%9F%8E%89")],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(w.sim.member_roles(g, alice), vec![below]);
    let rec = w.sim.requests().pop().unwrap();
    assert_eq!(rec.method, "PUT");
    assert_eq!(
        rec.path,
        format!("/guilds/{g}/members/{alice}/roles/{below}")
    );
    assert_eq!(rec.audit_reason.as_deref(), Some("level up 🎉"));
    assert_eq!(rec.status, 204);
    let r = api.call("DELETE", &put(below), None).await;
    assert_eq!(r.status, 204);
    assert!(w.sim.member_roles(g, alice).is_empty());
    let r = api.call("PUT", &put(42), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10011)));
    let r = api
        .call("GET", &format!("/guilds/{g}/members/12345"), None)
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10007)));

    // Without MANAGE_ROLES the bot cannot assign even a lower role.
    w.sim
        .set_role_permissions(g, w.g.bot_role_id, p::BOT_ROLE_DEFAULT & !p::MANAGE_ROLES);
    let r = api.call("PUT", &put(below), None).await;
    assert_eq!(r.status, 403);
    w.sim
        .set_role_permissions(g, w.g.bot_role_id, p::BOT_ROLE_DEFAULT);

    // Timeout: MODERATE_MEMBERS and hierarchy.
    let until = "2099-01-01T00:00:00.000Z";
    let r = api
        .call(
            "PATCH",
            &format!("/guilds/{g}/members/{alice}"),
            Some(json!({"communication_disabled_until": until})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (400, json!(50035)),
        "28-day cap"
    );
    let soon = "2000-01-01T00:00:00.000Z";
    let r = api
        .call(
            "PATCH",
            &format!("/guilds/{g}/members/{alice}"),
            Some(json!({"communication_disabled_until": soon})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user"]["id"], alice.to_string());

    // The owner can never be kicked or banned; an admin above the bot neither.
    let r = api
        .call("DELETE", &format!("/guilds/{g}/members/{owner}"), None)
        .await;
    assert_eq!(r.status, 403);
    let bob = w.sim.create_user("bob");
    w.sim.member_join(g, bob).await;
    w.sim.give_role(g, bob, above);
    let r = api
        .call(
            "PUT",
            &format!("/guilds/{g}/bans/{bob}"),
            Some(json!({"delete_message_seconds": 0})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(w.sim.is_member(g, bob));

    // Kick and ban members below the bot.
    let r = api
        .call("DELETE", &format!("/guilds/{g}/members/{alice}"), None)
        .await;
    assert_eq!(r.status, 204);
    assert!(!w.sim.is_member(g, alice));
    let carol = w.sim.create_user("carol");
    w.sim.member_join(g, carol).await;
    let spam = w.sim.say(g, w.g.general_channel_id, carol, "spam").await;
    let r = api
        .call(
            "PUT",
            &format!("/guilds/{g}/bans/{carol}"),
            Some(json!({"delete_message_seconds": 3600})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(!w.sim.is_member(g, carol));
    assert!(
        w.sim
            .messages(w.g.general_channel_id)
            .iter()
            .all(|m| m.id != spam)
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_then_succeed() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let path = format!("/guilds/{}", w.g.guild_id);
    w.sim.rate_limit(1, Duration::from_millis(250), false);

    let r = api.call("GET", &path, None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["message"], "You are being rate limited.");
    assert_eq!(r.body["retry_after"], 0.25);
    assert_eq!(r.body["global"], false);
    assert_eq!(r.headers["retry-after"], "0.25");
    assert_eq!(r.headers["x-ratelimit-reset-after"], "0.25");
    assert_eq!(r.headers["x-ratelimit-scope"], "user");
    assert!(r.headers.get("x-ratelimit-global").is_none());
    let started = Instant::now();

    // Ignoring Retry-After is punished.
    let r = api.call("GET", &path, None).await;
    assert_eq!(r.status, 429);
    let wait: f64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0.0 && wait <= 0.25);

    tokio::time::sleep(Duration::from_millis(260).saturating_sub(started.elapsed())).await;
    let r = api.call("GET", &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], w.g.guild_id.to_string());

    // Global 429s block every route and say so.
    w.sim.rate_limit(1, Duration::from_millis(100), true);
    let r = api.call("GET", "/users/@me", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["x-ratelimit-global"], "true");
    assert_eq!(r.headers["x-ratelimit-scope"], "global");
    assert_eq!(r.body["global"], true);
    let r = api.call("GET", &path, None).await;
    assert_eq!(r.status, 429);
    // GET /gateway is never rate limited.
    let r = api.call("GET", "/gateway/bot", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["shards"], 1);
    assert_eq!(r.body["session_start_limit"]["max_concurrency"], 1);
    tokio::time::sleep(Duration::from_millis(110)).await;
    assert_eq!(api.call("GET", &path, None).await.status, 200);

    // Injected 5xx.
    w.sim.fail_next(2, 502);
    let r = api.call("GET", &path, None).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body["code"], 0);
    assert_eq!(api.call("GET", &path, None).await.status, 502);
    assert_eq!(api.call("GET", &path, None).await.status, 200);

    let statuses: Vec<u16> = w.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![429, 429, 200, 429, 429, 200, 200, 502, 502, 200]
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn bulk_overwrite_validates_and_keeps_ids() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let (app, g) = (w.sim.application_id(), w.g.guild_id);
    let path = format!("/applications/{app}/guilds/{g}/commands");

    let r = api
        .call(
            "PUT",
            &path,
            Some(json!([{"name": "Rank", "description": "Show rank"}])),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 50035);
    assert_eq!(
        r.body["errors"]["0"]["name"]["_errors"][0]["code"],
        "APPLICATION_COMMAND_INVALID_NAME"
    );
    let r = api
        .call(
            "PUT",
            &path,
            Some(json!([{"name": "rank", "description": "x".repeat(101)}])),
        )
        .await;
    assert!(
        r.body["errors"]["0"]["description"].is_object(),
        "{}",
        r.body
    );
    let r = api
        .call(
            "PUT",
            &path,
            Some(json!([{"name": "rank", "description": "d", "options": [
                {"type": 6, "name": "Who", "description": "user"}]}])),
        )
        .await;
    assert!(
        r.body["errors"]["0"]["options"]["0"]["name"].is_object(),
        "{}",
        r.body
    );
    let many: Vec<_> = (0..101)
        .map(|i| json!({"name": format!("c{i}"), "description": "d"}))
        .collect();
    let r = api.call("PUT", &path, Some(json!(many))).await;
    assert_eq!(r.status, 400);
    assert_eq!(w.sim.command_overwrites(g), 0);

    let body = json!([
        {"name": "rank", "description": "Show rank", "options": [
            {"type": 6, "name": "user", "description": "Whose", "required": false}]},
        {"name": "hello", "description": "Say hello", "default_member_permissions": "8"},
    ]);
    let r = api.call("PUT", &path, Some(body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.body.as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["application_id"], app.to_string());
    assert_eq!(first[0]["guild_id"], g.to_string());
    assert_eq!(first[1]["default_member_permissions"], "8");
    assert!(first[0]["version"].is_string());
    let again = api.call("PUT", &path, Some(body)).await.body;
    assert_eq!(again[0]["id"], first[0]["id"]);
    assert_eq!(again[0]["version"], first[0]["version"]);
    assert_eq!(w.sim.command_overwrites(g), 2);
    assert_eq!(w.sim.guild_commands(g).len(), 2);
    let listed = api.call("GET", &path, None).await.body;
    assert_eq!(listed, again);
    let r = api.call("PUT", &path, Some(json!([]))).await;
    assert_eq!(r.body, json!([]));
    assert!(w.sim.guild_commands(g).is_empty());
    w.sim.shutdown().await;
}

#[tokio::test]
async fn reads_reactions_channels_and_dms() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let g = w.g.guild_id;
    let general = w.g.general_channel_id;

    let members = api
        .call("GET", &format!("/guilds/{g}/members?limit=1000"), None)
        .await
        .body;
    assert_eq!(members.as_array().unwrap().len(), 3);
    let after = members[0]["user"]["id"].as_str().unwrap().to_string();
    let rest = api
        .call(
            "GET",
            &format!("/guilds/{g}/members?limit=10&after={after}"),
            None,
        )
        .await
        .body;
    assert_eq!(rest.as_array().unwrap().len(), 2);
    let roles = api
        .call("GET", &format!("/guilds/{g}/roles"), None)
        .await
        .body;
    assert_eq!(roles.as_array().unwrap().len(), 2);
    let everyone = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(g.to_string()))
        .unwrap();
    let perms: u64 = everyone["permissions"].as_str().unwrap().parse().unwrap();
    assert_ne!(perms & p::VIEW_CHANNEL, 0);
    assert_eq!(perms & p::MANAGE_ROLES, 0);

    // Reactions: URL-encoded unicode.
    let said = w.sim.say(g, general, w.alice, "react to me").await;
    let r = api
        .call(
            "PUT",
            &format!("/channels/{general}/messages/{said}/reactions/%F0%9F%91%8D/@me"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let msg = api
        .call("GET", &format!("/channels/{general}/messages/{said}"), None)
        .await
        .body;
    assert_eq!(msg["reactions"][0]["emoji"]["name"], "👍");
    assert_eq!(msg["reactions"][0]["me"], true);
    let listed = api
        .call(
            "GET",
            &format!("/channels/{general}/messages?limit=10"),
            None,
        )
        .await
        .body;
    assert_eq!(listed[0]["id"], said.to_string());

    // Channels: create with overwrites, then delete.
    let r = api
        .call(
            "POST",
            &format!("/guilds/{g}/channels"),
            Some(json!({"name": "ticket-1", "type": 0, "topic": "help",
                "permission_overwrites": [
                    {"id": g.to_string(), "type": 0, "allow": "0", "deny": p::VIEW_CHANNEL.to_string()},
                    {"id": w.alice.to_string(), "type": 1, "allow": (p::VIEW_CHANNEL | p::SEND_MESSAGES).to_string(), "deny": "0"}
                ]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["permission_overwrites"].as_array().unwrap().len(), 2);
    let ticket = r.body["id"].as_str().unwrap().to_string();
    // As on Discord, hiding a channel from @everyone hides it from the bot too,
    // unless the bot gave itself an overwrite.
    let r = api
        .call("DELETE", &format!("/channels/{ticket}"), None)
        .await;
    assert_eq!(r.status, 403);
    let bot = w.sim.bot_user_id();
    let r = api
        .call(
            "PUT",
            &format!("/channels/{ticket}/permissions/{bot}"),
            Some(json!({"type": 1, "allow": p::VIEW_CHANNEL.to_string(), "deny": "0"})),
        )
        .await;
    // Not even its overwrites can be edited without seeing the channel.
    assert_eq!(r.status, 403);
    w.sim
        .set_overwrite(g, ticket.parse().unwrap(), bot, false, p::VIEW_CHANNEL, 0);
    let r = api
        .call("DELETE", &format!("/channels/{ticket}"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = api.call("GET", &format!("/channels/{ticket}"), None).await;
    assert_eq!(r.body["code"], 10003);

    // Bulk delete.
    let a = w.sim.say(g, general, w.alice, "a").await;
    let b = w.sim.say(g, general, w.alice, "b").await;
    let r = api
        .call(
            "POST",
            &format!("/channels/{general}/messages/bulk-delete"),
            Some(json!({"messages": [a.to_string(), b.to_string()]})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(
        w.sim
            .messages(general)
            .iter()
            .all(|m| m.id != a && m.id != b)
    );

    // DMs.
    let dm = api
        .call(
            "POST",
            "/users/@me/channels",
            Some(json!({"recipient_id": w.alice.to_string()})),
        )
        .await
        .body;
    assert_eq!(dm["type"], 1);
    assert_eq!(dm["recipients"][0]["id"], w.alice.to_string());
    let dm_id = dm["id"].as_str().unwrap();
    let r = api
        .call(
            "POST",
            &format!("/channels/{dm_id}/messages"),
            Some(json!({"content": "psst"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let dms = w.sim.dm_messages(w.alice);
    assert_eq!(dms.len(), 1);
    assert_eq!(dms[0].content, "psst");

    // Removed from the guild: no access any more.
    w.sim.remove_bot(g).await;
    let r = api.call("GET", &format!("/guilds/{g}"), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (403, json!(50001)));
    w.sim.shutdown().await;
}

/// serenity's own HTTP client, proxied to the simulator, deserializes what we answer.
#[tokio::test]
async fn serenity_http_reads_our_responses() {
    use serenity::all::{ChannelId, CreateMessage, GuildId, HttpBuilder, RoleId, UserId};
    let w = world().await;
    let http = HttpBuilder::new(w.sim.token())
        .proxy(w.sim.base_url())
        .ratelimiter_disabled(true)
        .build();
    let me = http.get_current_user().await.expect("current user");
    assert_eq!(me.id.get(), w.sim.bot_user_id());
    let app = http
        .get_current_application_info()
        .await
        .expect("application info");
    assert_eq!(app.id.get(), w.sim.application_id());
    http.get_bot_gateway().await.expect("gateway/bot");
    let g = GuildId::new(w.g.guild_id);
    let guild = http.get_guild(g).await.expect("guild");
    assert_eq!(guild.name, "Test Guild");
    let roles = http.get_guild_roles(g).await.expect("roles");
    assert_eq!(roles.len(), 2);
    let member = http
        .get_member(g, UserId::new(w.alice))
        .await
        .expect("member");
    assert_eq!(member.user.name, "alice");
    let channels = http.get_channels(g).await.expect("channels");
    assert_eq!(channels.len(), 1);
    let channel = ChannelId::new(w.g.general_channel_id);
    let sent = channel
        .send_message(&http, CreateMessage::new().content("from serenity"))
        .await
        .expect("send");
    assert_eq!(sent.content, "from serenity");
    let messages = http
        .get_messages(channel, None, Some(10))
        .await
        .expect("messages");
    assert_eq!(messages.len(), 1);
    let regular = RoleId::new(w.sim.create_role(w.g.guild_id, "Regular", 0, 0));
    http.add_member_role(g, UserId::new(w.alice), regular, Some("promoted"))
        .await
        .expect("add role");
    assert_eq!(
        w.sim.member_roles(w.g.guild_id, w.alice),
        vec![regular.get()]
    );
    assert_eq!(
        w.sim.requests().last().unwrap().audit_reason.as_deref(),
        Some("promoted")
    );
    let dm = UserId::new(w.alice)
        .create_dm_channel(&http)
        .await
        .expect("dm channel");
    dm.say(&http, "hi").await.expect("dm");
    assert_eq!(w.sim.dm_messages(w.alice).len(), 1);
    w.sim.shutdown().await;
}
