//! The examples in the OpenAPI document: one small, made-up guild seen through
//! every answer and request, so the ids and times agree from one example to
//! the next. The types name these with `#[schema(example = …)]` and the
//! operations with `example = …`; `openapi`'s tests check that every success
//! answer and request body has one and that each matches its schema.
//!
//! The guild "Lantern Cafe" belongs to Ada's tenant (plan `free`) and runs the
//! built-in `welcome` feature. Ids and secrets are invented: no example holds
//! a real token, key or path.

use serde_json::{Value, json};

/// The guild (and its @everyone role, which shares the guild's id).
const GUILD: &str = "1141234567890123456";
/// Ada: the guild's owner, signed in.
const ADA: &str = "1098765432109876543";
/// The bot's user.
const BOT: &str = "1139876543210987654";
/// Another member.
const BEN: &str = "1150011223344556677";
/// Ada's tenant: 32 hex digits.
const TENANT: &str = "3f9a0c2e7b1d48e6a5c4f0b2d9e8a731";
/// Ada's API key's id.
const KEY_ID: &str = "7c1e4b9a2f6d4e0b8a3c5d7e9f1a2b3c";
const ROLE_TOWNES: &str = "1141240001234567892";
const ROLE_MODERATORS: &str = "1141240001234567890";
const ROLE_MEMBERS: &str = "1141240001234567891";
const CHANNEL_CATEGORY: &str = "1141234567890123457";
const CHANNEL_GENERAL: &str = "1141234567890123458";
const CHANNEL_WELCOME: &str = "1141234567890123459";

/// View Channel, Send Messages, Kick, Ban, Manage Messages and Moderate
/// Members, as Discord's decimal string.
const MODERATOR_PERMISSIONS: &str = "1099511639046";

const WELCOME_MESSAGE: &str =
    "Welcome {user.mention} to {server.name}! You are member #{server.memberCount}.";
const WELCOME_DM: &str = "Welcome to {server.name}, {user}! Have a look around and say hi.";
const WELCOME_LEAVE: &str = "{user.name} left {server.name}.";
const WELCOME_DESCRIPTION: &str = "Welcomes new members with a message in a channel, an optional DM and \
     optional auto-roles, and can say goodbye when members leave. Templates: {user}, \
     {user.mention}, {user.name}, {server.name}, {server.memberCount}.";

// ------------------------------------------------------------------- health

pub fn health() -> Value {
    json!({ "status": "ok" })
}

pub fn readiness() -> Value {
    json!({ "status": "ok", "database": "ok", "redis": "not configured",
        "shards": "ok", "queue": "ok (3 waiting)" })
}

pub fn readiness_unavailable() -> Value {
    json!({ "status": "unavailable", "database": "ok", "redis": "ok",
        "shards": "1 of 2 connected", "queue": "ok (0 waiting)" })
}

/// A few lines of `GET /metrics` (Prometheus text exposition format).
pub fn metrics() -> Value {
    json!(concat!(
        "# HELP townes_events_total Gateway events dispatched to the features of a guild, by event kind.\n",
        "# TYPE townes_events_total counter\n",
        "townes_events_total{kind=\"member_joined\"} 12\n",
        "townes_events_total{kind=\"message_created\"} 4821\n",
        "# HELP townes_feature_invocations_total Feature invocations (events, commands, components, jobs, migrations) by outcome.\n",
        "# TYPE townes_feature_invocations_total counter\n",
        "townes_feature_invocations_total{feature=\"welcome\",outcome=\"ok\"} 12\n",
        "# HELP townes_api_requests_total Dashboard API requests by method, route template and status.\n",
        "# TYPE townes_api_requests_total counter\n",
        "townes_api_requests_total{method=\"GET\",route=\"/api/guild/{guild_id}/settings\",status=\"200\"} 37\n",
    ))
}

// --------------------------------------------------------------------- auth

pub fn user() -> Value {
    json!({ "id": ADA, "name": "Ada" })
}

pub fn tenant() -> Value {
    json!({
        "id": TENANT,
        "owner_id": ADA,
        "name": "Ada",
        "plan": "free",
        "created_at": "2026-09-14T18:03:27Z"
    })
}

pub fn me() -> Value {
    json!({ "user": user(), "tenant": tenant(), "via": "session" })
}

pub fn callback() -> Value {
    json!({
        "code": "example-code-from-discord-redirect",
        "state": "example-state-from-the-login-redirect"
    })
}

pub fn api_key() -> Value {
    json!({
        "id": KEY_ID,
        "name": "dashboard server",
        "created_at": "2026-10-02T11:15:40Z",
        "last_used_at": "2026-11-24T08:59:31Z",
        "revoked_at": null
    })
}

pub fn new_key() -> Value {
    json!({ "name": "dashboard server" })
}

pub fn created_key() -> Value {
    json!({
        "key": {
            "id": KEY_ID,
            "name": "dashboard server",
            "created_at": "2026-10-02T11:15:40Z",
            "last_used_at": null,
            "revoked_at": null
        },
        "secret": format!("tdk_{KEY_ID}_EXAMPLE-not-a-real-secret-EXAMPLE-000000000")
    })
}

// ------------------------------------------------------------------ tenants

pub fn feature_flag() -> Value {
    json!({ "feature_id": "welcome", "version": "0.1.0", "enabled": true })
}

pub fn asset() -> Value {
    json!({
        "id": GUILD,
        "name": "Lantern Cafe",
        "plan": "free",
        "owner_id": ADA,
        "tenant_id": TENANT,
        "left_at": null,
        "features": [feature_flag()]
    })
}

pub fn usage_day() -> Value {
    json!({ "day": "2026-11-24", "events": 1843, "commands": 57, "ai_tokens": 0 })
}

/// Lantern Cafe's health on 2026-11-23: 31 member-days over the week (4.4
/// a day: activity 60 × 4.43 / 25 + 40 × 24.1 / 100 = 20.3), 82 answers to
/// 169 messages (engagement 97), 9 joins and 3 leaves (growth 75), 3 of 5
/// newcomers still active a week on (retention 60); no moderation feature.
pub fn community_health() -> Value {
    json!({
        "guild_id": GUILD,
        "day": "2026-11-23",
        "score": 57,
        "parts": {
            "activity": 20,
            "engagement": 97,
            "retention": 60,
            "growth": 75,
            "moderation": null,
            "support": null
        },
        "figures": {
            "messages": 169,
            "replies": 21,
            "reactions": 44,
            "commands": 17,
            "joins": 9,
            "leaves": 3,
            "active_member_days": 31,
            "active_members": 12,
            "retention_cohort": 5,
            "retained": 3,
            "moderation_actions": null,
            "member_events": true
        },
        "change": 4,
        "trend": [
            { "day": "2026-11-21", "score": 53 },
            { "day": "2026-11-22", "score": 55 },
            { "day": "2026-11-23", "score": 57 }
        ]
    })
}

pub fn asset_detail() -> Value {
    json!({
        "asset": asset(),
        "settings": settings(),
        "features": [guild_feature()],
        "usage_today": usage_day()
    })
}

pub fn new_incident() -> Value {
    json!({
        "tenantId": TENANT,
        "guildId": GUILD,
        "severity": "high",
        "title": "Welcome messages are not posted",
        "description": "Since 14:00 UTC new members get no message in #welcome."
    })
}

pub fn incident() -> Value {
    json!({
        "id": "b2d4f6a8c0e24a6c8e0f1a3b5c7d9e1f",
        "tenant_id": TENANT,
        "guild_id": GUILD,
        "severity": "high",
        "title": "Welcome messages are not posted",
        "description": "Since 14:00 UTC new members get no message in #welcome.",
        "status": "open",
        "created_by": format!("user:{ADA}"),
        "created_at": "2026-11-24T14:12:09Z"
    })
}

// ------------------------------------------------------------ guild settings

pub fn settings() -> Value {
    json!({
        "prefix": "!",
        "use_slash_commands": true,
        "allow_prefix_fallback": true,
        "global_cooldown_seconds": 3,
        "updated_at": "2026-11-20T09:30:12Z",
        "moderation_enabled": true,
        "levelling_enabled": true,
        "fun_enabled": false,
        "tickets_enabled": true,
        "custom_commands_enabled": false,
        "auto_responders_enabled": false
    })
}

pub fn settings_update() -> Value {
    json!({ "prefix": "!", "global_cooldown_seconds": 3, "tickets_enabled": true })
}

pub fn permission() -> Value {
    json!({
        "id": format!("{ROLE_MODERATORS}:moderation"),
        "role_id": ROLE_MODERATORS,
        "command_group": "moderation"
    })
}

pub fn new_permission() -> Value {
    json!({ "role_id": ROLE_MODERATORS, "command_group": "moderation" })
}

pub fn audit_entry() -> Value {
    json!({
        "id": 4812,
        "guild_id": GUILD,
        "actor": format!("user:{ADA}"),
        "action": "settings.updated",
        "feature_id": null,
        "details": settings(),
        "created_at": "2026-11-20T09:30:12Z"
    })
}

// --------------------------------------------------------------- guild data

pub fn role() -> Value {
    json!({
        "id": ROLE_MODERATORS,
        "name": "Moderators",
        "position": 2,
        "permissions": MODERATOR_PERMISSIONS,
        "color": 0x3498db,
        "managed": false
    })
}

pub fn channel() -> Value {
    json!({
        "id": CHANNEL_WELCOME,
        "name": "welcome",
        "type": 0,
        "position": 1,
        "parent_id": CHANNEL_CATEGORY
    })
}

pub fn emoji() -> Value {
    json!({
        "id": "1142867530912345601",
        "name": "lantern",
        "animated": false,
        "url": "https://cdn.discordapp.com/emojis/1142867530912345601.png"
    })
}

pub fn member() -> Value {
    json!({
        "user_id": BEN,
        "username": "ben_lee",
        "global_name": "Ben",
        "nick": "Ben (barista)",
        "bot": false,
        "roles": [ROLE_MEMBERS],
        "joined_at": "2026-11-24T14:02:51.417000+00:00"
    })
}

pub fn roles() -> Value {
    json!([
        {
            "id": ROLE_TOWNES, "name": "Townes", "position": 3,
            "permissions": "268454912", "color": 0, "managed": true
        },
        role(),
        {
            "id": ROLE_MEMBERS, "name": "Members", "position": 1,
            "permissions": "0", "color": 0x2ecc71, "managed": false
        },
        {
            "id": GUILD, "name": "@everyone", "position": 0,
            "permissions": "1071698660929", "color": 0, "managed": false
        }
    ])
}

pub fn channels() -> Value {
    json!([
        {
            "id": CHANNEL_CATEGORY, "name": "Text Channels", "type": 4,
            "position": 0, "parent_id": null
        },
        {
            "id": CHANNEL_GENERAL, "name": "general", "type": 0,
            "position": 0, "parent_id": CHANNEL_CATEGORY
        },
        channel()
    ])
}

pub fn members() -> Value {
    json!([
        {
            "user_id": ADA, "username": "ada", "global_name": "Ada", "nick": null,
            "bot": false, "roles": [ROLE_MODERATORS],
            "joined_at": "2023-08-12T10:21:07.000000+00:00"
        },
        {
            "user_id": BOT, "username": "Townes", "global_name": null, "nick": null,
            "bot": true, "roles": [ROLE_TOWNES],
            "joined_at": "2026-09-14T18:05:44.912000+00:00"
        },
        member()
    ])
}

// -------------------------------------------------------------- marketplace

/// `welcome`'s configuration in the guild.
pub fn welcome_config() -> Value {
    json!({
        "channel": CHANNEL_WELCOME,
        "message": WELCOME_MESSAGE,
        "dm": { "enabled": true, "message": WELCOME_DM },
        "auto_roles": [ROLE_MEMBERS],
        "leave": { "enabled": false, "channel": null, "message": WELCOME_LEAVE },
        "ignore_bots": true
    })
}

pub fn version() -> Value {
    json!({
        "version": "0.1.0",
        "published": true,
        "sha256": "bc76f0667c9d24fba838028c2efe2bd4167f1768ec21d8448bc205b2cba3656e",
        "size_bytes": 412877,
        "created_at": "2026-09-01T12:00:00Z"
    })
}

pub fn catalogue_entry() -> Value {
    json!({
        "id": "welcome",
        "name": "Welcome",
        "description": WELCOME_DESCRIPTION,
        "builtin": true,
        "publisher": null,
        "latest_version": "0.1.0",
        "versions": [version()]
    })
}

pub fn command() -> Value {
    json!({
        "name": "welcome-test",
        "description": "Preview the welcome message as a new member would see it"
    })
}

pub fn capability_request() -> Value {
    json!({
        "capability": "messages",
        "required": true,
        "reason": "post welcome and leave messages in the configured channels"
    })
}

pub fn requested_import() -> Value {
    json!({
        "interface": "http",
        "description": "send HTTPS requests to the host names you approve (public addresses only; answers up to 1 MiB)"
    })
}

/// `welcome` 0.1.0's manifest.
pub fn feature_detail() -> Value {
    let snowflake_or_null = json!({ "anyOf": [
        { "type": "integer", "minimum": 1 },
        { "type": "string", "pattern": "^[1-9][0-9]{0,18}$" },
        { "type": "null" }
    ] });
    let template = json!({ "type": "string", "minLength": 1, "maxLength": 2000 });
    json!({
        "id": "welcome",
        "version": "0.1.0",
        "name": "Welcome",
        "description": WELCOME_DESCRIPTION,
        "commands": [command()],
        "events": ["MemberJoined", "MemberLeft"],
        "capabilities": [
            capability_request(),
            {
                "capability": "members",
                "required": false,
                "reason": "read the server's name and member count for {server.*} placeholders, and DM new members when enabled"
            },
            {
                "capability": "roles",
                "required": false,
                "reason": "give new members the configured auto-roles"
            }
        ],
        "imports": [],
        "config_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "channel": snowflake_or_null,
                "message": template,
                "dm": {
                    "type": "object",
                    "properties": { "enabled": { "type": "boolean" }, "message": template },
                    "additionalProperties": false
                },
                "auto_roles": {
                    "type": "array",
                    "items": { "anyOf": [
                        { "type": "integer", "minimum": 1 },
                        { "type": "string", "pattern": "^[1-9][0-9]{0,18}$" }
                    ] },
                    "maxItems": 10,
                    "uniqueItems": true
                },
                "leave": {
                    "type": "object",
                    "properties": {
                        "enabled": { "type": "boolean" },
                        "channel": snowflake_or_null,
                        "message": template
                    },
                    "additionalProperties": false
                },
                "ignore_bots": { "type": "boolean" }
            },
            "additionalProperties": false
        },
        "default_config": {
            "channel": null,
            "message": WELCOME_MESSAGE,
            "dm": { "enabled": false, "message": WELCOME_DM },
            "auto_roles": [],
            "leave": { "enabled": false, "channel": null, "message": WELCOME_LEAVE },
            "ignore_bots": true
        }
    })
}

/// `welcome` as enabled in the guild.
pub fn guild_feature() -> Value {
    json!({
        "feature_id": "welcome",
        "version": "0.1.0",
        "enabled": true,
        "capabilities": ["messages", "members", "roles"],
        "channels": [CHANNEL_WELCOME],
        "role_ceiling": ROLE_MODERATORS,
        "elevated_permissions": "0",
        "mention_roles": [],
        "ai": false,
        "http_hosts": [],
        "config": welcome_config(),
        "previous_version": null,
        "breaker_open_until": null,
        "updated_at": "2026-11-21T16:45:03Z",
        "notice": null
    })
}

/// Approvals for `welcome`: what [`guild_feature`] holds.
pub fn install_request() -> Value {
    json!({
        "version": "0.1.0",
        "capabilities": ["messages", "members", "roles"],
        "channels": [CHANNEL_WELCOME],
        "role_ceiling": ROLE_MODERATORS,
        "elevated_permissions": "0"
    })
}

pub fn upgrade_request() -> Value {
    json!({
        "version": "0.2.0",
        "capabilities": ["messages", "members", "roles"],
        "channels": [CHANNEL_WELCOME],
        "role_ceiling": ROLE_MODERATORS,
        "elevated_permissions": "0"
    })
}

/// The head of `GET /api/openapi.json` and one route a feature serves (the
/// API's own operations are left out here).
pub fn openapi_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "TownesDev Bot Platform API",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" },
            "version": env!("CARGO_PKG_VERSION")
        },
        "paths": {
            "/api/guild/{guild_id}/features/moderation/api/cases/{number}": {
                "get": {
                    "tags": ["feature: moderation"],
                    "summary": "One case",
                    "description": "Served by feature `moderation` 0.1.0.",
                    "operationId": "moderationGetCase",
                    "parameters": [
                        {
                            "name": "guild_id", "in": "path", "required": true,
                            "schema": { "$ref": "#/components/schemas/Snowflake" }
                        },
                        {
                            "name": "number", "in": "path", "required": true,
                            "schema": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$" }
                        }
                    ],
                    "responses": {
                        "2XX": {
                            "description": "The feature's answer",
                            "content": { "application/json": { "schema": { "type": "object" } } }
                        }
                    },
                    "security": [{ "session": [] }, { "api_key": [] }]
                }
            }
        }
    })
}

// -------------------------------------------------------------------- files

pub fn file() -> Value {
    json!({
        "name": "transcripts/42.html",
        "content_type": "text/html; charset=utf-8",
        "size": 18734,
        "created_at": "2026-11-23T19:42:55Z"
    })
}

/// A ticket transcript, as `tickets` keeps it.
pub fn transcript() -> Value {
    json!(concat!(
        "<!DOCTYPE html>\n",
        "<html><head><meta charset=\"utf-8\"><title>Ticket #42</title></head>\n",
        "<body><h1>Ticket #42</h1>\n",
        "<p><b>Ben</b>: The welcome message did not show up for me.</p>\n",
        "<p><b>Ada</b>: Fixed, thanks for telling us!</p>\n",
        "</body></html>\n",
    ))
}

/// A tenant in its trial of the base plan, with one guild.
pub fn billing_view() -> Value {
    json!({
        "tenant_id": TENANT,
        "plan": "base",
        "status": "trialing",
        "subscribed_plan": "base",
        "trial_available": false,
        "trial_ends_at": "2026-12-24T09:00:00Z",
        "renews_at": null,
        "current_period_end": null,
        "cancel_at_period_end": false,
        "grace_until": null,
        "stripe_enabled": true,
        "limits": {
            "memory_mib": 32, "cpu_ms": 100, "wall_ms": 3000, "host_calls": 2500,
            "storage_bytes": 16777216, "storage_rows": 100000,
            "stripe_price": "price_base", "ai_tokens_per_day": 50000, "guilds": 5
        },
        "usage": {
            "guilds": 1,
            "guilds_limit": 5,
            "ai_tokens_today": 1200,
            "ai_tokens_today_busiest_guild": 1200,
            "ai_tokens_per_day_limit": 50000,
            "storage_bytes_limit": 16777216,
            "storage_rows_limit": 100000
        }
    })
}

pub fn export_request() -> Value {
    json!({
        "tenant_id": TENANT,
        "guild_id": "123456789012345678",
        "passphrase": "correct horse battery staple"
    })
}

pub fn export_job() -> Value {
    json!({
        "id": "5f0c6a8e2d1b4c3a9e7f6d5c4b3a2910",
        "tenant_id": TENANT,
        "guild_id": "123456789012345678",
        "status": "done",
        "step": "done",
        "done": 1,
        "total": 1,
        "error": null,
        "size_bytes": 1048576,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "requested_by": "user:111111111111111111",
        "created_at": "2026-12-07T09:00:00Z",
        "finished_at": "2026-12-07T09:00:04Z",
        "expires_at": "2026-12-08T09:00:04Z",
        "download_url": "https://townes.example/exports/5f0c6a8e2d1b4c3a9e7f6d5c4b3a2910/download?expires=1796720404&sig=3q2-7w"
    })
}

pub fn import_request() -> Value {
    json!({
        "passphrase": "correct horse battery staple",
        "bundle": "VE9XTkVTWAEAAAB7eyJmb3JtYXQiOjEsLi4ufQ=="
    })
}

pub fn import_report() -> Value {
    json!({
        "kind": "guild",
        "tenant_id": TENANT,
        "guild_ids": ["123456789012345678"],
        "counts": { "guilds": 1, "guild_features": 3, "feature_kv": 12, "components": 3 }
    })
}

pub fn checkout_request() -> Value {
    json!({ "addons": [] })
}

pub fn checkout_link() -> Value {
    json!({ "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3" })
}

pub fn webhook_receipt() -> Value {
    json!({ "outcome": "applied" })
}

pub fn stripe_event() -> Value {
    json!({
        "id": "evt_1Q2w3E4r5T6y",
        "object": "event",
        "type": "invoice.paid",
        "created": 1796000000,
        "data": {"object": {"id": "in_1", "customer": "cus_1", "subscription": "sub_1"}}
    })
}

pub fn offboarding() -> Value {
    json!({
        "id": "off_3f9a1c2b7d4e5f60718293a4",
        "tenant_id": TENANT,
        "guild_id": null,
        "kind": "self_host",
        "state": "awaiting_activation",
        "license_id": "lic_8c1d2e3f4a5b6c7d",
        "export_id": "5b0e2f7c9a1d4e36b8c0f2a4d6e8b1c3",
        "started_by": "user:80351110224678912",
        "retire_at": "2026-12-21T09:00:00Z",
        "retired_at": null,
        "purge_at": null,
        "purged_at": null,
        "canceled_at": null,
        "created_at": "2026-12-07T09:00:00Z",
        "next": "the hosted runner retires when the self-hosted runner activates its licence, at the latest 2026-12-21T09:00:00+00:00"
    })
}

pub fn offboarding_request() -> Value {
    json!({ "kind": "self_host", "passphrase": "correct horse battery staple" })
}

pub fn offboarding_started() -> Value {
    json!({
        "offboarding": offboarding(),
        "env": [
            "TOWNESDEV_LICENSE=tdl1.eyJpZCI6ImxpY184YzFkMmUzZjRhNWI2YzdkIn0.c2lnbmF0dXJl",
            "LICENSE_SERVER_BASE=https://api.townes.dev",
            "TOWNESDEV_LICENSE_PUBLIC_KEY=Qm9vdHN0cmFwcGVkUHVibGljS2V5Rm9yRXhhbXBsZQ"
        ],
        "export_error": null
    })
}

// -------------------------------------------------------------------- status

pub fn status() -> Value {
    json!({
        "status": "ok",
        "version": "0.2.0",
        "components": [
            {"name": "database", "status": "ok", "detail": null},
            {"name": "gateway", "status": "ok", "detail": "2 of 2 shards connected"},
            {"name": "queue", "status": "ok", "detail": "3 Discord calls waiting"}
        ]
    })
}

pub fn forget_request() -> Value {
    json!({ "user_id": "80351110224678912" })
}

pub fn forgotten() -> Value {
    json!({ "storage_keys": 3, "scores": 2, "files": 1, "audit_entries": 4, "jobs": 0 })
}

pub fn changelog() -> Value {
    json!({
        "releases": [{
            "version": "Unreleased",
            "date": null,
            "sections": [{
                "kind": "Added",
                "entries": ["`GET /status` and `GET /changelog`, for anyone."]
            }]
        }]
    })
}

pub fn changelog_markdown() -> Value {
    json!(
        "# Changelog\n\n## [Unreleased]\n\n### Added\n- `GET /status` and `GET /changelog`, for anyone.\n"
    )
}

// --------------------------------------------------------------------- admin

/// The licence Ada's tenant self-hosts with, and its successor.
const LICENSE: &str = "lic_9f2a7c1e4b8d063a";
const NEW_LICENSE: &str = "lic_4c7e1a9b2d6f8035";

pub fn admin_tenant() -> Value {
    json!({
        "id": TENANT,
        "name": "Ada",
        "owner_discord_id": ADA,
        "plan": "free",
        "billing_status": "free",
        "guilds": 1,
        "created_at": "2026-11-20T09:30:00Z"
    })
}

pub fn admin_tenant_detail() -> Value {
    json!({ "tenant": admin_tenant(), "guilds": [asset()] })
}

pub fn admin_migrations() -> Value {
    json!({
        "backend": "sqlite",
        "known": [
            {"version": 1, "description": "runtime", "applied": true},
            {"version": 14, "description": "operators and journal", "applied": true}
        ],
        "unknown": [],
        "changed": [],
        "failed": [],
        "up_to_date": true
    })
}

pub fn admin_replay_request() -> Value {
    json!({ "last": 20 })
}

pub fn admin_replayed() -> Value {
    json!({ "guild_id": GUILD, "events": 20, "invocations": 20, "failed": 0 })
}

pub fn admin_regen_request() -> Value {
    json!({ "reason": "key leaked in a public repository", "days": null, "license": null })
}

pub fn admin_regenerated() -> Value {
    json!({
        "id": NEW_LICENSE,
        "replaces": LICENSE,
        "tenant_id": TENANT,
        "plan": "pro",
        "license": "tdl1.eyJpZCI6ImxpY180YzdlMWE5YjJkNmY4MDM1In0.bWFkZS11cC1zaWduYXR1cmUtZm9yLXRoZS1leGFtcGxl",
        "expires_at": "2027-12-07T12:00:00Z"
    })
}

pub fn admin_anonymized() -> Value {
    json!({
        "tenant_id": TENANT,
        "guilds": 1,
        "user_ids": 14,
        "sessions_deleted": 2,
        "api_keys_deleted": 1,
        "storage_rows_emptied": 38,
        "files_emptied": 0,
        "audit_entries_scrubbed": 412,
        "incidents_scrubbed": 1,
        "journal_entries_deleted": 950
    })
}

pub fn admin_stats() -> Value {
    json!({
        "tenants": {"total": 120, "active": 87, "new": 14},
        "guilds": {"total": 163, "active": 118, "new": 19},
        "features_enabled": {"welcome": 102, "xp": 77, "tickets": 31},
        "paying_by_plan": {"pro": 9, "base": 21},
        "trialing": 4,
        "canceled": 2,
        "guilds_left": 6,
        "since": "2026-11-07T12:00:00Z"
    })
}

pub fn admin_export_request() -> Value {
    json!({ "passphrase": "correct horse battery staple" })
}

/// The guild's own AI key: set, never shown.
pub fn ai_key() -> Value {
    json!({"set": true, "set_at": "2026-12-07T10:00:00Z", "set_by": format!("user:{ADA}")})
}

/// A key to set (invented).
pub fn ai_key_update() -> Value {
    json!({"key": "sk-example-not-a-real-key"})
}

/// The caps in the guild and today's use.
pub fn ai_caps() -> Value {
    json!({
        "available": true,
        "plan_daily_tokens": 2000,
        "daily_tokens": 1500,
        "member_daily_tokens": null,
        "member_share_percent": 25,
        "used_today": 312,
        "used_today_own_key": 0,
    })
}

/// The admins' caps to set.
pub fn ai_caps_update() -> Value {
    json!({"daily_tokens": 1500, "member_daily_tokens": null})
}
