//! The operators' `/admin` routes and the public status pages, on both
//! backends: every admin route refused to tenants (session, API key),
//! strangers and revoked operators, and answering operators; a replay
//! delivering journaled events to a real feature again; an anonymization
//! after which no user id is left anywhere in the database; the adoption
//! figures of a seeded platform; `/status` and `/changelog` without sign-in.

mod common;

use chrono::{SubsecRound as _, Utc};
use common::harness::{GUILD_A, GUILD_B, Harness, limits};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use townes::api::auth::hash_secret;
use townes::api::auth::operator::issue_operator;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::grants::{Approval, Quota};
use townes::licensing::{self, Claims, issuer};
use townes::live::Live;
use townes::marketplace::{Marketplace, Publisher};
use townes::store::{
    BillingAccount, BillingChange, BillingStatus, FileQuota, Guild, NewAuditEntry, NewIncident,
    NewSession, Scope, Store,
};
use townes::wit::{Event, Member, User};

/// How a request authenticates.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Bearer(String),
    Cookie(String),
}

struct World {
    h: Harness,
    server: ApiServer,
    http: reqwest::Client,
    base: String,
    tenant: String,
    key: String,
    session: String,
    operator: String,
    revoked_operator: String,
    /// A recorded licence and its key, for regeneration.
    license: (String, String),
    _signing_key: tempfile::TempDir,
}

impl World {
    async fn new(store: Store) -> World {
        let h = Harness::new(store.clone(), limits()).await;
        let tenant = store.create_tenant(7, Some("Olivia")).await.unwrap();
        store
            .set_guild_tenant(GUILD_A, Some(&tenant.id))
            .await
            .unwrap();
        let (_, key) = townes::api::auth::issue_api_key(&store, &tenant.id, "test", "test".into())
            .await
            .unwrap();
        let session = "a-session-token".to_string();
        store
            .create_session(&NewSession {
                token_hash: &hash_secret(&session),
                tenant_id: &tenant.id,
                discord_user_id: 7,
                user_name: "olivia",
                expires_at: Utc::now() + chrono::TimeDelta::hours(1),
            })
            .await
            .unwrap();
        let (_, operator) = issue_operator(&store, "Oscar").await.unwrap();
        let (revoked, revoked_operator) = issue_operator(&store, "Former").await.unwrap();
        assert!(store.revoke_operator(&revoked.id).await.unwrap());

        let keys = tempfile::tempdir().unwrap();
        let signing = licensing::new_signing_key();
        let key_file = keys.path().join("issuer.key");
        std::fs::write(&key_file, licensing::encode_signing_key(&signing)).unwrap();
        let issued_at = Utc::now().trunc_subsecs(0);
        let claims = Claims {
            id: issuer::new_id(),
            tenant: tenant.id.clone(),
            plan: townes::runtime::FREE_PLAN.into(),
            flags: vec!["welcome".into()],
            limits: BTreeMap::new(),
            issued_at,
            expires_at: issued_at + chrono::TimeDelta::days(30),
        };
        store
            .record_license(&issuer::record_of(&claims))
            .await
            .unwrap();
        let license = (claims.id.clone(), licensing::issue(&claims, &signing));

        let mut config = ApiConfig::local();
        config.licensing.signing_key = Some(key_file);
        let parts = ApiParts::new(h.runtime.clone(), Live::local());
        let server = ApiServer::start(ApiState::new(config, parts).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        World {
            h,
            server,
            http: reqwest::Client::new(),
            base,
            tenant: tenant.id,
            key,
            session,
            operator,
            revoked_operator,
            license,
            _signing_key: keys,
        }
    }

    async fn call(
        &self,
        auth: &Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Cookie(token) => request.header("Cookie", format!("townes_session={token}")),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn as_operator(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self
            .call(&Auth::Bearer(self.operator.clone()), method, path, body)
            .await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }
}

/// Every `/admin` route, with a body it accepts.
fn admin_routes(w: &World, anonymized_tenant: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/admin/tenants?q=oli".into(), None),
        (Method::GET, format!("/admin/tenants/{}", w.tenant), None),
        (Method::GET, "/admin/guilds".into(), None),
        (Method::GET, "/admin/incidents".into(), None),
        (Method::GET, "/admin/migrations".into(), None),
        (Method::GET, "/admin/stats".into(), None),
        (
            Method::POST,
            format!("/admin/guilds/{GUILD_A}/replay"),
            Some(json!({"last": 10})),
        ),
        (
            Method::POST,
            format!("/admin/licenses/{}/regen", w.license.0),
            Some(json!({"reason": "leaked", "license": w.license.1})),
        ),
        (
            Method::POST,
            format!("/admin/tenants/{}/export", w.tenant),
            Some(json!({"passphrase": "a support passphrase"})),
        ),
        (
            Method::POST,
            format!("/admin/tenants/{anonymized_tenant}/anonymize"),
            None,
        ),
    ]
}

#[tokio::test]
async fn admin_routes_answer_operators_only() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let doomed = store.create_tenant(99, Some("Leaving")).await.unwrap();
        let routes = admin_routes(&w, &doomed.id);
        let refused = [
            (Auth::None, 401, "a stranger"),
            (
                Auth::Bearer("tdo_nope_nope".into()),
                401,
                "a made-up operator token",
            ),
            (Auth::Bearer("not-a-token".into()), 401, "garbage"),
            (
                Auth::Bearer("tdk_nope_nope".into()),
                401,
                "a made-up API key",
            ),
            (
                Auth::Bearer(w.revoked_operator.clone()),
                401,
                "a revoked operator",
            ),
            (Auth::Cookie(w.session.clone()), 403, "a tenant's session"),
            (Auth::Bearer(w.key.clone()), 403, "a tenant's API key"),
        ];
        for (method, path, body) in &routes {
            for (auth, status, who) in &refused {
                let (got, answer) = w.call(auth, method.clone(), path, body.as_ref()).await;
                assert_eq!(got, *status, "{label}: {who} on {method} {path}: {answer}");
                if *status == 403 {
                    let message = answer["error"]["message"].as_str().unwrap_or_default();
                    assert!(
                        message.contains("operator credentials"),
                        "{label}: {answer}"
                    );
                }
            }
        }
        // The export a support call starts is read back by operators only.
        let unknown = "/admin/exports/0123456789abcdef0123456789abcdef";
        for (auth, status, who) in &refused {
            let (got, answer) = w.call(auth, Method::GET, unknown, None).await;
            assert_eq!(got, *status, "{label}: {who} on {unknown}: {answer}");
        }
        // Nothing was done by the refused calls.
        assert_eq!(
            store
                .tenant(&doomed.id)
                .await
                .unwrap()
                .unwrap()
                .name
                .as_deref(),
            Some("Leaving"),
            "{label}"
        );
        let mut export = None;
        for (method, path, body) in &routes {
            let answer = w.as_operator(method.clone(), path, body.as_ref()).await;
            if path.ends_with("/export") {
                export = answer["id"].as_str().map(str::to_string);
            }
        }
        let export = export.expect("the export route answers its job");
        let read = w
            .as_operator(Method::GET, &format!("/admin/exports/{export}"), None)
            .await;
        assert_eq!(read["tenant_id"], w.tenant.as_str(), "{label}: {read}");
        // Every operator call is audited under the operator's id and name.
        let audited = store.audit_since(0, 1000).await.unwrap();
        let by_operator: Vec<_> = audited
            .iter()
            .filter(|e| e.actor.starts_with("operator:") && e.action.starts_with("admin."))
            .collect();
        assert_eq!(
            by_operator.len(),
            routes.len() + 1,
            "{label}: {by_operator:?}"
        );
        assert!(
            by_operator.iter().all(|e| e.details["operator"] == "Oscar"),
            "{label}"
        );
        w.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn operators_see_tenants_guilds_migrations_and_regenerate_licences() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let tenants = w
            .as_operator(Method::GET, "/admin/tenants?q=oli", None)
            .await;
        assert_eq!(tenants.as_array().unwrap().len(), 1, "{label}: {tenants}");
        assert_eq!(tenants[0]["id"], w.tenant.as_str(), "{label}");
        assert_eq!(tenants[0]["guilds"], 1, "{label}");
        assert_eq!(tenants[0]["billing_status"], "free", "{label}");
        let none = w
            .as_operator(Method::GET, "/admin/tenants?q=nobody", None)
            .await;
        assert_eq!(none, json!([]), "{label}");
        let by_owner = w.as_operator(Method::GET, "/admin/tenants?q=7", None).await;
        assert_eq!(by_owner[0]["id"], w.tenant.as_str(), "{label}");

        let detail = w
            .as_operator(Method::GET, &format!("/admin/tenants/{}", w.tenant), None)
            .await;
        assert_eq!(detail["guilds"][0]["id"], GUILD_A.to_string(), "{label}");
        let (status, _) = w
            .call(
                &Auth::Bearer(w.operator.clone()),
                Method::GET,
                "/admin/tenants/unknown",
                None,
            )
            .await;
        assert_eq!(status, 404, "{label}");

        let guilds = w
            .as_operator(Method::GET, "/admin/guilds?limit=1", None)
            .await;
        assert_eq!(guilds.as_array().unwrap().len(), 1, "{label}");
        let (status, _) = w
            .call(
                &Auth::Bearer(w.operator.clone()),
                Method::GET,
                "/admin/guilds?limit=1000",
                None,
            )
            .await;
        assert_eq!(status, 400, "{label}");

        let migrations = w.as_operator(Method::GET, "/admin/migrations", None).await;
        assert_eq!(migrations["up_to_date"], true, "{label}: {migrations}");
        let known = migrations["known"].as_array().unwrap();
        assert!(
            known
                .iter()
                .any(|m| m["version"] == 14 && m["applied"] == true),
            "{label}: {migrations}"
        );
        assert_eq!(migrations["backend"], label.as_str(), "{label}");

        // Incidents of every tenant, newest first.
        for title in ["first", "second"] {
            store
                .create_incident(&NewIncident {
                    tenant_id: w.tenant.clone(),
                    guild_id: None,
                    severity: "low".into(),
                    title: title.into(),
                    description: String::new(),
                    created_by: "user:7".into(),
                })
                .await
                .unwrap();
        }
        let feed = w.as_operator(Method::GET, "/admin/incidents", None).await;
        assert_eq!(feed[0]["title"], "second", "{label}: {feed}");
        assert_eq!(feed[1]["title"], "first", "{label}: {feed}");

        // Regeneration: a new licence, the old one revoked and replaced.
        let (old_id, old_key) = &w.license;
        let body = json!({"reason": "leaked", "license": old_key});
        let new = w
            .as_operator(
                Method::POST,
                &format!("/admin/licenses/{old_id}/regen"),
                Some(&body),
            )
            .await;
        assert_eq!(new["replaces"], old_id.as_str(), "{label}");
        assert_eq!(new["tenant_id"], w.tenant.as_str(), "{label}");
        let new_id = new["id"].as_str().unwrap();
        let old = store.license(old_id).await.unwrap().unwrap();
        assert_eq!(old.replaced_by.as_deref(), Some(new_id), "{label}");
        assert!(
            new["license"].as_str().unwrap().starts_with("tdl1."),
            "{label}"
        );
        let (status, answer) = w
            .call(
                &Auth::Bearer(w.operator.clone()),
                Method::POST,
                &format!("/admin/licenses/{old_id}/regen"),
                Some(&body),
            )
            .await;
        assert_eq!(status, 409, "{label}: {answer}");
        w.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn replay_delivers_the_journaled_events_to_the_features_again() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let market = Marketplace::new(&w.h.runtime, "test");
        let (_, manifest) = market
            .install(&common::component("welcome"), &Publisher::Platform)
            .await
            .unwrap();
        market
            .enable(
                GUILD_A,
                "welcome",
                None,
                Approval::everything_requested(&manifest.capabilities),
            )
            .await
            .unwrap();
        market
            .set_config(
                GUILD_A,
                "welcome",
                json!({"channel": GUILD_A + 1, "auto_roles": [GUILD_A + 2]}),
            )
            .await
            .unwrap();
        let carol =
            w.h.discord
                .with_guild(GUILD_A, |g| g.add_member(44, "carol", vec![]))
                .unwrap();
        let joined =
            w.h.runtime
                .dispatch_event(GUILD_A, &Event::MemberJoined(carol))
                .await
                .unwrap();
        assert_eq!(joined.len(), 1, "{label}");
        // Guild B has no feature listening: nothing is journaled for it.
        let dave =
            w.h.discord
                .with_guild(GUILD_B, |g| g.add_member(45, "dave", vec![]))
                .unwrap();
        w.h.runtime
            .dispatch_event(GUILD_B, &Event::MemberJoined(dave))
            .await
            .unwrap();
        common::wait_until(|| async { store.journal_len(GUILD_A).await.unwrap() == 1 }).await;
        assert_eq!(store.journal_len(GUILD_B).await.unwrap(), 0, "{label}");

        let welcomed = |store: Store| async move {
            store
                .audit_entries(GUILD_A, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.actor == "feature:welcome")
                .count()
        };
        let before = welcomed(store.clone()).await;
        assert!(before >= 1, "{label}: the welcome feature acted once");

        let replayed = w
            .as_operator(
                Method::POST,
                &format!("/admin/guilds/{GUILD_A}/replay"),
                Some(&json!({"last": 5})),
            )
            .await;
        assert_eq!(
            replayed,
            json!({"guild_id": GUILD_A.to_string(), "events": 1, "invocations": 1, "failed": 0}),
            "{label}"
        );
        // The feature acted again: its role change is audited a second time.
        assert_eq!(welcomed(store.clone()).await, 2 * before, "{label}");
        // A replay is not journaled again, and is audited as the operator's.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(store.journal_len(GUILD_A).await.unwrap(), 1, "{label}");
        let audit = store.audit_entries(GUILD_A, 100).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "admin.replay" && e.actor.starts_with("operator:")),
            "{label}"
        );

        // Bounded: at most 1000 events.
        let (status, _) = w
            .call(
                &Auth::Bearer(w.operator.clone()),
                Method::POST,
                &format!("/admin/guilds/{GUILD_A}/replay"),
                Some(&json!({"last": 1001})),
            )
            .await;
        assert_eq!(status, 422, "{label}");

        // The sweep keeps each guild's newest entries, and none older than asked.
        assert_eq!(
            store
                .sweep_journal(Utc::now() - chrono::TimeDelta::days(1), 1000)
                .await
                .unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            store
                .sweep_journal(Utc::now() + chrono::TimeDelta::seconds(1), 1000)
                .await
                .unwrap(),
            1,
            "{label}"
        );
        w.server.shutdown().await.unwrap();
    }
}

/// Every value of every table, as text (blobs read as text too, so ids
/// stored inside them are seen).
async fn dump(label: &str, url: &str) -> String {
    use sqlx::Connection as _;
    let mut text = String::new();
    if label == "sqlite" {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut db)
                .await
                .unwrap();
        for table in tables {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(&mut db)
                .await
                .unwrap();
            let row = columns
                .iter()
                .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            // Bytes, not text: a blob (a checksum) need not be UTF-8.
            let rows: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST({row} AS BLOB) FROM \"{table}\""
            )))
            .fetch_all(&mut db)
            .await
            .unwrap();
            for row in rows {
                text.push_str(&format!("{table}: {}\n", String::from_utf8_lossy(&row)));
            }
        }
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        for table in tables {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(&table)
            .fetch_all(&mut db)
            .await
            .unwrap();
            let row = columns
                .iter()
                .map(|(c, kind)| match kind.as_str() {
                    "bytea" => format!("encode(\"{c}\", 'escape')"),
                    _ => format!("\"{c}\"::text"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT concat_ws('|', {row}) FROM \"{table}\""
            )))
            .fetch_all(&mut db)
            .await
            .unwrap();
            text.push_str(&format!("{table}: {}\n", rows.join("\n")));
        }
    }
    text
}

#[tokio::test]
async fn anonymization_leaves_no_user_id_and_keeps_the_counts() {
    const GUILD: u64 = 3000;
    // Owner, guild owner, a session's user, members, an audit actor.
    let people: [u64; 6] = [
        911000000000000001,
        911000000000000002,
        911000000000000003,
        911000000000000004,
        911000000000000005,
        911000000000000006,
    ];
    let [owner, guild_owner, signed_in, member, actor, joiner] = people;
    for (label, store, guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let tenant = store
            .create_tenant(owner, Some("Zed Zedson"))
            .await
            .unwrap();
        store
            .upsert_guild(&Guild::new(GUILD, "Zed's place", guild_owner))
            .await
            .unwrap();
        store
            .set_guild_tenant(GUILD, Some(&tenant.id))
            .await
            .unwrap();
        store
            .create_session(&NewSession {
                token_hash: &hash_secret("zed-session"),
                tenant_id: &tenant.id,
                discord_user_id: signed_in,
                user_name: "zed",
                expires_at: Utc::now() + chrono::TimeDelta::hours(1),
            })
            .await
            .unwrap();
        townes::api::auth::issue_api_key(&store, &tenant.id, "ci", format!("user:{owner}"))
            .await
            .unwrap();
        let scope = Scope::new(GUILD, "xp");
        let quota = Quota {
            max_bytes: 1 << 20,
            max_rows: 1000,
        };
        for (n, person) in [member, signed_in, guild_owner].into_iter().enumerate() {
            store
                .board_increment(&scope, "xp", person, 10 * (n as i64 + 1), quota)
                .await
                .unwrap();
            store
                .kv_set(
                    &scope,
                    &format!("xp:{person}"),
                    &format!("{{\"by\":{actor}}}"),
                    quota,
                )
                .await
                .unwrap();
        }
        store
            .put_file(
                &Scope::new(GUILD, "tickets"),
                &format!("transcript-{member}.txt"),
                "text/plain",
                format!("<@{member}> said hi").as_bytes(),
                FileQuota {
                    max_bytes: 1 << 20,
                    max_files: 10,
                    max_file_bytes: 1 << 20,
                },
            )
            .await
            .unwrap();
        store
            .audit(&NewAuditEntry {
                guild_id: Some(GUILD),
                actor: format!("user:{actor}"),
                action: "moderation.ban".into(),
                feature_id: None,
                details: json!({"target": member.to_string()}),
            })
            .await
            .unwrap();
        store
            .create_incident(&NewIncident {
                tenant_id: tenant.id.clone(),
                guild_id: Some(GUILD),
                severity: "high".into(),
                title: format!("{member} is spamming"),
                description: format!("see <@{member}>"),
                created_by: format!("user:{signed_in}"),
            })
            .await
            .unwrap();
        let day = Utc::now().date_naive();
        store.add_usage(GUILD, day, 40, 3, 100).await.unwrap();
        store.journal(
            GUILD,
            "member_joined",
            &Event::MemberJoined(Member {
                user: User {
                    id: joiner,
                    username: "joiner".into(),
                    global_name: None,
                    bot: false,
                },
                nick: None,
                roles: vec![],
                joined_at: None,
            }),
        );
        common::wait_until(|| async { store.journal_len(GUILD).await.unwrap() == 1 }).await;
        let before = dump(&label, guard.url()).await;
        for person in people {
            assert!(
                before.contains(&person.to_string()),
                "{label}: the seed holds {person}"
            );
        }
        let usage = store.usage(GUILD, day, day).await.unwrap();
        let rows = store.storage_usage(&scope).await.unwrap().rows;

        let done = w
            .as_operator(
                Method::POST,
                &format!("/admin/tenants/{}/anonymize", tenant.id),
                None,
            )
            .await;
        assert_eq!(done["guilds"], 1, "{label}: {done}");
        assert_eq!(done["sessions_deleted"], 1, "{label}: {done}");
        assert_eq!(done["api_keys_deleted"], 1, "{label}: {done}");
        assert_eq!(done["journal_entries_deleted"], 1, "{label}: {done}");

        let after = dump(&label, guard.url()).await;
        for person in people {
            assert!(
                !after.contains(&person.to_string()),
                "{label}: {person} is still in the database:\n{}",
                after
                    .lines()
                    .filter(|l| l.contains(&person.to_string()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(!after.contains("Zed"), "{label}: names are removed");
        // Counts stay: usage, storage rows, the scores on the board.
        assert_eq!(
            store.usage(GUILD, day, day).await.unwrap(),
            usage,
            "{label}"
        );
        assert_eq!(
            store.storage_usage(&scope).await.unwrap().rows,
            rows,
            "{label}"
        );
        let top = store.board_top(&scope, "xp", 10).await.unwrap();
        let mut scores: Vec<i64> = top.iter().map(|e| e.score).collect();
        scores.sort_unstable();
        assert_eq!(scores, [10, 20, 30], "{label}");
        // Someone else's tenant is untouched.
        assert_eq!(
            store
                .tenant(&w.tenant)
                .await
                .unwrap()
                .unwrap()
                .owner_discord_id,
            7,
            "{label}"
        );
        let (status, _) = w
            .call(
                &Auth::Bearer(w.operator.clone()),
                Method::POST,
                "/admin/tenants/unknown/anonymize",
                None,
            )
            .await;
        assert_eq!(status, 404, "{label}");
        w.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn stats_count_a_seeded_platform() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        // Seeded: the world's tenant (guild A) and three more tenants; guild B
        // unclaimed; guild 3000 left by the bot; welcome enabled in A and B.
        let market = Marketplace::new(&w.h.runtime, "test");
        let (_, manifest) = market
            .install(&common::component("welcome"), &Publisher::Platform)
            .await
            .unwrap();
        for guild in [GUILD_A, GUILD_B] {
            market
                .enable(
                    guild,
                    "welcome",
                    None,
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await
                .unwrap();
        }
        let paying = store.create_tenant(20, None).await.unwrap();
        let trying = store.create_tenant(21, None).await.unwrap();
        let gone = store.create_tenant(22, None).await.unwrap();
        let now = Utc::now();
        for (tenant, status) in [
            (&paying.id, BillingStatus::Active),
            (&trying.id, BillingStatus::Trialing),
            (&gone.id, BillingStatus::Canceled),
        ] {
            let change = BillingChange {
                account: BillingAccount {
                    status,
                    ..BillingAccount::new(tenant, "pro")
                },
                applied_plan: if status.has_plan() { "pro" } else { "free" }.into(),
                guild_cap: None,
                action: "billing.seeded",
                details: json!({}),
            };
            store
                .change_billing(tenant, None, |_| Some(change))
                .await
                .unwrap();
        }
        store
            .upsert_guild(&Guild::new(3000, "left", 22))
            .await
            .unwrap();
        store.set_guild_tenant(3000, Some(&gone.id)).await.unwrap();
        store.mark_guild_left(3000, Some(now)).await.unwrap();

        let stats = w.as_operator(Method::GET, "/admin/stats", None).await;
        assert_eq!(
            stats["tenants"],
            json!({"total": 4, "active": 1, "new": 4}),
            "{label}: {stats}"
        );
        assert_eq!(
            stats["guilds"],
            json!({"total": 3, "active": 2, "new": 3}),
            "{label}: {stats}"
        );
        assert_eq!(stats["features_enabled"], json!({"welcome": 2}), "{label}");
        assert_eq!(stats["paying_by_plan"], json!({"pro": 1}), "{label}");
        assert_eq!(stats["trialing"], 1, "{label}");
        assert_eq!(stats["canceled"], 1, "{label}");
        assert_eq!(stats["guilds_left"], 1, "{label}");
        w.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn status_and_changelog_answer_anyone() {
    let (label, store, _guard) = common::sqlite().await;
    let w = World::new(store).await;
    let (status, body) = w.call(&Auth::None, Method::GET, "/status", None).await;
    assert_eq!(status, 200, "{label}: {body}");
    assert_eq!(body["status"], "ok", "{label}: {body}");
    assert_eq!(
        body["components"][0],
        json!({"name": "database", "status": "ok", "detail": null})
    );
    assert!(!body.to_string().contains(&w.tenant), "no tenant data");
    let (status, body) = w.call(&Auth::None, Method::GET, "/changelog", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["releases"][0]["version"], "Unreleased");
    let released = &body["releases"][1];
    assert_eq!(released["version"], "0.2.0", "{body}");
    assert_eq!(released["date"], "2026-12-07", "{body}");
    let markdown = w
        .http
        .get(format!("{}/changelog.md", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(markdown.status(), 200);
    assert_eq!(
        markdown.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert!(markdown.text().await.unwrap().starts_with("# Changelog"));
    w.server.shutdown().await.unwrap();
}
