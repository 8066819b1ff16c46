//! Export and import bundles (issue 15; ADR 0018): a tenant with every kind of
//! data exported from Postgres, imported into SQLite and back, compared table
//! by table and field by field; refused bundles (wrong passphrase, cut short,
//! a byte changed, a newer schema, a tenant or guild that exists, a clashing
//! build) leave the target unchanged; the API's jobs, signed downloads and
//! guild imports, with their refusals.

mod common;

use chrono::{Duration as TimeDelta, NaiveDate, Utc};
use common::harness::{GUILD_A, GUILD_B, Harness, limits};
use serde_json::{Value, json};
use std::sync::Arc;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::billing::{Billing, BillingConfig};
use townes::discord::{LocalDiscord, LocalGuild};
use townes::export::bundle::{self, BundleData};
use townes::export::{
    ExportConfig, ExportError, ExportKey, Exports, export_bundle, import_bundle, open_bundle,
};
use townes::grants::{Approval, Quota};
use townes::live::Live;
use townes::marketplace::Marketplace;
use townes::runtime::{Plans, Runtime, RuntimeConfig};
use townes::store::export::ExportScope;
use townes::store::{
    FileQuota, GuildSettings, LicenseRecord, NewAuditEntry, NewIncident, Scope, Store,
};
use townes::wit::{CommandInvocation, CommandSource};

const MAX: u64 = 256 * 1024 * 1024;
const PASSPHRASE: &str = "correct horse battery staple";

fn key() -> ExportKey {
    ExportKey::passphrase(PASSPHRASE).unwrap()
}

/// A Discord with guilds A and B (ada 42, bob 43), for a runtime whose store
/// does not have them yet (an import target).
fn discord() -> Arc<LocalDiscord> {
    let discord = Arc::new(LocalDiscord::new());
    for (id, name) in [(GUILD_A, "A"), (GUILD_B, "B")] {
        let mut guild = LocalGuild::new(id, name);
        guild.add_member(42, "ada", vec![id + 2]);
        guild.add_member(43, "bob", vec![]);
        discord.add_guild(guild);
    }
    discord
}

/// A runtime over `store` with a data directory of its own (components are
/// cached per installation), as another installation.
fn installation(store: Store) -> (Arc<Runtime>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        pool_instances: 8,
        ..RuntimeConfig::new(data.path())
    };
    (
        Arc::new(Runtime::new(config, store, discord()).unwrap()),
        data,
    )
}

/// A harness whose plans include `base` (the trial's plan).
async fn harness(store: Store) -> Harness {
    Harness::with_config(store, limits(), |c| {
        c.plans = Plans::from_json(
            r#"{"free": {"storage_rows": 1000, "storage_bytes": 1000000},
                "base": {"storage_rows": 1000, "storage_bytes": 1000000}}"#,
        )
        .unwrap();
    })
    .await
}

/// Installs `name` and enables it in both guilds with every capability it asks for.
async fn install_everywhere(h: &Harness, name: &str) -> String {
    let (version, manifest) = h.runtime.install(&common::component(name)).await.unwrap();
    let approval = Approval::of(manifest.capabilities.iter().map(|r| r.capability));
    for guild in [GUILD_A, GUILD_B] {
        Marketplace::new(&h.runtime, "test")
            .enable(guild, &version.feature_id, None, approval.clone())
            .await
            .unwrap();
    }
    version.feature_id
}

/// A tenant owning guilds A and B with every kind of data: settings,
/// permissions, cooldowns, built-in features (hello, tickets with a transcript
/// file) and a third-party one (notes) with storage, scores, audit entries,
/// usage, a scheduled job, a trial, a licence and an incident.
async fn seed(h: &Harness) -> String {
    let store = &h.store;
    let tenant = store.create_tenant(777, Some("Olivia")).await.unwrap();
    for guild in [GUILD_A, GUILD_B] {
        store
            .set_guild_tenant(guild, Some(&tenant.id))
            .await
            .unwrap();
    }
    let hello = install_everywhere(h, "hello").await;
    let tickets = install_everywhere(h, "tickets").await;
    let notes = install_everywhere(h, "notes").await;
    assert_eq!((hello.as_str(), notes.as_str()), ("hello", "notes"));
    store
        .set_guild_settings(&GuildSettings {
            prefix: "?".into(),
            global_cooldown_seconds: 3,
            ..GuildSettings::new(GUILD_A)
        })
        .await
        .unwrap();
    store
        .grant_role_permission(GUILD_A, GUILD_A + 2, "moderation")
        .await
        .unwrap();
    store
        .set_command_cooldown(GUILD_A, "hello", 30)
        .await
        .unwrap();
    let quota = Quota {
        max_bytes: 1_000_000,
        max_rows: 1_000,
    };
    let scope = Scope::new(GUILD_A, notes.clone());
    store
        .kv_set(&scope, "note:1", r#"{"id":"1","text":"héllo ✓"}"#, quota)
        .await
        .unwrap();
    store
        .kv_set(&scope, "note:2", "plain", quota)
        .await
        .unwrap();
    store
        .board_increment(&scope, "xp", 42, 1234, quota)
        .await
        .unwrap();
    store
        .board_increment(&scope, "xp", u64::MAX - 1, -5, quota)
        .await
        .unwrap();
    // What tickets' `files.put` stores when it closes a ticket (the same
    // store call the capability makes), with bytes that are not UTF-8.
    let mut transcript = b"<html><body><p>ticket #1 closed</p>".to_vec();
    transcript.extend_from_slice(&[0, 159, 146, 150, 255]);
    store
        .put_file(
            &Scope::new(GUILD_A, tickets.clone()),
            "transcripts/1.html",
            "text/html; charset=utf-8",
            &transcript,
            FileQuota {
                max_bytes: 1_000_000,
                max_files: 10,
                max_file_bytes: 100_000,
            },
        )
        .await
        .unwrap();
    for (guild, action) in [
        (GUILD_A, "ticket.closed"),
        (GUILD_B, "note.added"),
        (GUILD_A, "x"),
    ] {
        store
            .audit(&NewAuditEntry {
                guild_id: Some(guild),
                actor: "user:42".into(),
                action: action.into(),
                feature_id: Some(notes.clone()),
                details: json!({"n": 1.5, "nested": {"a": [1, "two", null]}}),
            })
            .await
            .unwrap();
    }
    store
        .add_usage(
            GUILD_A,
            NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
            10,
            3,
            500,
        )
        .await
        .unwrap();
    store
        .add_usage(
            GUILD_B,
            NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            1,
            0,
            0,
        )
        .await
        .unwrap();
    store
        .schedule_job(
            &scope,
            "remind",
            "{\"note\":\"1\"}",
            Utc::now() + TimeDelta::hours(3),
            10,
        )
        .await
        .unwrap();
    Billing::new(
        store.clone(),
        h.runtime.plans().clone(),
        BillingConfig::local(),
    )
    .start_trial(&tenant.id, Utc::now())
    .await
    .unwrap();
    store
        .record_license(&LicenseRecord {
            id: "lic_export_test".into(),
            tenant_id: tenant.id.clone(),
            plan: "base".into(),
            issued_at: Utc::now(),
            expires_at: Utc::now() + TimeDelta::days(30),
            revoked_at: None,
            revoked_reason: None,
            replaced_by: None,
        })
        .await
        .unwrap();
    store
        .create_incident(&NewIncident {
            tenant_id: tenant.id.clone(),
            guild_id: Some(GUILD_B),
            severity: "low".into(),
            title: "Welcome message twice".into(),
            description: "Seen once.".into(),
            created_by: "user:42".into(),
        })
        .await
        .unwrap();
    tenant.id
}

async fn export(runtime: &Runtime, tenant: &str) -> Vec<u8> {
    export_bundle(
        runtime,
        &ExportScope::Tenant(tenant.into()),
        &key(),
        MAX,
        |_, _| {},
    )
    .await
    .unwrap()
}

async fn open(bytes: &[u8]) -> BundleData {
    open_bundle(bytes.to_vec(), &key(), MAX).await.unwrap().1
}

/// Compares two bundles' data table by table, row by row, so a difference
/// names the table, the row and the fields.
fn assert_same(first: &BundleData, second: &BundleData, what: &str) {
    let (a, b) = (
        serde_json::to_value(&first.rows).unwrap(),
        serde_json::to_value(&second.rows).unwrap(),
    );
    for (table, rows) in a.as_object().unwrap() {
        let (rows, others) = (rows.as_array().unwrap(), b[table].as_array().unwrap());
        assert_eq!(rows.len(), others.len(), "{what}: {table} row count");
        for (row, other) in rows.iter().zip(others) {
            assert_eq!(row, other, "{what}: a row of {table}");
        }
    }
    assert_eq!(first.rows, second.rows, "{what}: typed rows");
    assert_eq!(first.components, second.components, "{what}: components");
}

/// Ada runs `/hello` in guild A of `runtime`: the imported feature runs.
async fn hello_runs(runtime: &Runtime, discord: &LocalDiscord) -> bool {
    let invoker = discord.member_of(GUILD_A, 42).unwrap();
    let outcome = runtime
        .command(
            GUILD_A,
            "hello",
            CommandInvocation {
                source: CommandSource::Slash,
                name: "hello".into(),
                subcommand: None,
                arguments: vec![],
                invoker,
                channel_id: GUILD_A + 1,
            },
            0,
        )
        .await;
    matches!(outcome.result, Ok(Some(_)))
}

/// The source database: Postgres when reachable (required in CI), else SQLite.
async fn source() -> (String, Store, common::Guard) {
    match common::postgres().await {
        Ok(backend) => backend,
        Err(reason) if common::in_ci() => panic!("Postgres is required when CI is set: {reason}"),
        Err(reason) => {
            eprintln!("skipping Postgres: {reason}");
            common::sqlite().await
        }
    }
}

#[tokio::test]
async fn a_tenant_goes_from_postgres_to_sqlite_and_back_without_loss() {
    let (label, store, _source) = source().await;
    let h = harness(store).await;
    let tenant = seed(&h).await;
    let first = export(&h.runtime, &tenant).await;
    let data = open(&first).await;
    let counts = data.rows.counts();
    for (table, n) in &counts {
        // Every table the bundle carries has rows here: "every kind of data".
        assert!(*n > 0, "{label}: the seed wrote no {table}");
    }
    assert_eq!(
        data.components.len(),
        3,
        "{label}: hello, tickets and notes"
    );
    // Three written here, the rest by enabling features and the trial.
    assert!(data.rows.audit_log.len() > 3, "{label}");

    // Into SQLite.
    let (_, sqlite, _sqlite_guard) = common::sqlite().await;
    let (target, _data) = installation(sqlite);
    let report = import_bundle(&target, &first, &key(), MAX).await.unwrap();
    assert_eq!(report.tenant_id, tenant);
    assert_eq!(report.guild_ids, vec![GUILD_A, GUILD_B]);
    let second = export(&target, &tenant).await;
    assert_same(&data, &open(&second).await, &format!("{label} → sqlite"));
    let discord = discord();
    assert!(
        hello_runs(&target, &discord).await,
        "{label} → sqlite: the imported hello answers"
    );
    let policy = target.store().guild_policy(GUILD_A).await.unwrap();
    assert!(policy.feature("notes").is_some_and(|f| f.enabled));

    // And back, into a fresh database of the first kind (Postgres when there).
    let (_, back, _back_guard) = source().await;
    let (returned, _returned_data) = installation(back);
    import_bundle(&returned, &second, &key(), MAX)
        .await
        .unwrap();
    let third = export(&returned, &tenant).await;
    assert_same(
        &data,
        &open(&third).await,
        &format!("{label} → sqlite → {label}"),
    );
    assert!(hello_runs(&returned, &discord).await);
}

/// A bundle whose header claims schema `schema` (the rest unchanged).
fn with_schema(bytes: &[u8], schema: i64) -> Vec<u8> {
    let (mut header, body) = bundle::read_header(bytes).unwrap();
    header.schema = schema;
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[body..]);
    out
}

#[tokio::test]
async fn refused_bundles_leave_nothing_behind() {
    let (_, store, _guard) = common::sqlite().await;
    let h = harness(store).await;
    let tenant = seed(&h).await;
    let good = export(&h.runtime, &tenant).await;
    let schema = townes::store::schema_version();
    for (label, store, _guard) in common::each_backend().await {
        let (target, _data) = installation(store.clone());
        let before = store.export_table_counts().await.unwrap();
        let wrong = ExportKey::passphrase("not the right passphrase").unwrap();
        let mut tampered = good.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x20;
        let cases: Vec<(&str, Vec<u8>, ExportKey)> = vec![
            ("wrong passphrase", good.clone(), wrong),
            ("cut short", good[..good.len() - 100].to_vec(), key()),
            ("a byte changed", tampered, key()),
            ("newer schema", with_schema(&good, schema + 1), key()),
            // The header is authenticated: an older claim is a change too.
            ("header changed", with_schema(&good, schema - 1), key()),
        ];
        for (case, bytes, key) in cases {
            let error = import_bundle(&target, &bytes, &key, MAX).await.unwrap_err();
            let expected = match case {
                "wrong passphrase" => matches!(error, ExportError::WrongKey),
                "newer schema" => matches!(error, ExportError::Newer { .. }),
                _ => matches!(error, ExportError::Damaged(_)),
            };
            assert!(expected, "{label}: {case}: {error}");
            let message = error.to_string();
            match case {
                "wrong passphrase" => assert!(message.contains("wrong passphrase"), "{message}"),
                "newer schema" => assert!(message.contains("upgrade first"), "{message}"),
                _ => assert!(message.contains("damaged bundle"), "{message}"),
            }
            assert_eq!(
                store.export_table_counts().await.unwrap(),
                before,
                "{label}: {case} left rows behind"
            );
        }

        // A build of the same version with other contents: refused after the
        // tenant and catalogue rows were written in the transaction, which
        // is rolled back.
        store
            .insert_feature_version(&townes::store::FeatureVersion {
                feature_id: "notes".into(),
                version: "0.1.0".into(),
                sha256: "0".repeat(64),
                manifest: json!({}),
                size_bytes: 1,
                created_at: Utc::now(),
                published: true,
            })
            .await
            .unwrap();
        let before = store.export_table_counts().await.unwrap();
        let error = import_bundle(&target, &good, &key(), MAX)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ExportError::Conflict(m) if m.contains("notes 0.1.0")),
            "{label}: {error}"
        );
        assert_eq!(
            store.export_table_counts().await.unwrap(),
            before,
            "{label}"
        );
        assert!(store.tenant(&tenant).await.unwrap().is_none(), "{label}");
    }

    // A tenant that exists: refused, naming it.
    let (_, store, _guard) = common::sqlite().await;
    let (target, _data) = installation(store.clone());
    import_bundle(&target, &good, &key(), MAX).await.unwrap();
    let before = store.export_table_counts().await.unwrap();
    let error = import_bundle(&target, &good, &key(), MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ExportError::Conflict(m) if m.contains(&tenant) && m.contains("already exists")),
        "{error}"
    );
    assert_eq!(store.export_table_counts().await.unwrap(), before);
}

struct Api {
    server: ApiServer,
    exports: Arc<Exports>,
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn start(runtime: Arc<Runtime>, live: Live, link_ttl: std::time::Duration) -> Api {
        let data = runtime.data_dir().to_path_buf();
        let exports = Arc::new(Exports::new(
            runtime.clone(),
            live.clone(),
            ExportConfig {
                link_ttl,
                ..ExportConfig::new(&data)
            },
        ));
        let parts = ApiParts {
            runtime,
            live,
            discord: None,
            platform: None,
            billing: None,
            exports: Some(exports.clone()),
            offboarding: None,
        };
        let server = ApiServer::start(ApiState::new(ApiConfig::local(), parts).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        Api {
            server,
            exports,
            http: reqwest::Client::new(),
            base,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn import(&self, key: &str, passphrase: &str, bundle: Vec<u8>) -> (u16, Value) {
        use base64::Engine as _;
        let body = json!({
            "passphrase": passphrase,
            "bundle": base64::engine::general_purpose::STANDARD.encode(bundle),
        });
        let response = self
            .http
            .post(format!("{}/imports", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn api_key(store: &Store, tenant: &str) -> String {
    townes::api::auth::issue_api_key(store, tenant, "test", "test".into())
        .await
        .unwrap()
        .1
}

/// Rewrites a query parameter of a URL.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[tokio::test]
async fn exports_run_as_jobs_behind_signed_expiring_links() {
    use reqwest::Method;
    for (label, store, _guard) in common::each_backend().await {
        let h = harness(store.clone()).await;
        let tenant = seed(&h).await;
        let other = store.create_tenant(888, Some("Mallory")).await.unwrap();
        let (owner, mallory) = (
            api_key(&store, &tenant).await,
            api_key(&store, &other.id).await,
        );
        let live = Live::local();
        let mut events = live.subscribe();
        let api = Api::start(h.runtime.clone(), live, std::time::Duration::from_secs(3)).await;

        let (status, body) = api
            .call(
                Method::POST,
                "/exports",
                &owner,
                Some(json!({"tenant_id": tenant, "passphrase": "short"})),
            )
            .await;
        assert_eq!(status, 422, "{label}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("12 characters")
        );
        let (status, _) = api
            .call(
                Method::POST,
                "/exports",
                &mallory,
                Some(json!({"tenant_id": tenant, "passphrase": PASSPHRASE})),
            )
            .await;
        assert_eq!(
            status, 404,
            "{label}: another tenant's export is not told apart from none"
        );
        let (status, _) = api
            .call(
                Method::POST,
                "/exports",
                &mallory,
                Some(json!({"tenant_id": other.id, "guild_id": GUILD_A.to_string(), "passphrase": PASSPHRASE})),
            )
            .await;
        assert_eq!(status, 404, "{label}: another tenant's guild");

        let (status, job) = api
            .call(
                Method::POST,
                "/exports",
                &owner,
                Some(json!({"tenant_id": tenant, "passphrase": PASSPHRASE})),
            )
            .await;
        assert_eq!(status, 202, "{label}: {job}");
        let path = format!("/exports/{}", job["id"].as_str().unwrap());
        let mut done = Value::Null;
        for _ in 0..200 {
            let (status, job) = api.call(Method::GET, &path, &owner, None).await;
            assert_eq!(status, 200, "{label}: {job}");
            if job["status"] != "queued" && job["status"] != "running" {
                done = job;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(done["status"], "done", "{label}: {done}");
        let (status, _) = api.call(Method::GET, &path, &mallory, None).await;
        assert_eq!(status, 404, "{label}: another tenant cannot see the export");
        // Each exported guild's dashboard hears the job through to its end
        // (published just after the row says done).
        let mut heard = Vec::new();
        while ![GUILD_A, GUILD_B]
            .iter()
            .all(|g| heard.contains(&(*g, "done".to_string())))
        {
            let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
                .await
                .unwrap_or_else(|_| panic!("{label}: heard only {heard:?}"))
                .unwrap();
            if event.kind == townes::live::LiveKind::ExportProgress
                && event.data["export_id"] == job["id"]
            {
                heard.push((
                    event.guild_id,
                    event.data["status"].as_str().unwrap().to_string(),
                ));
            }
        }

        let url = done["download_url"].as_str().unwrap().replace(
            townes::runtime::DEFAULT_PUBLIC_URL.trim_end_matches('/'),
            &api.base,
        );
        let response = api.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{label}");
        let bytes = response.bytes().await.unwrap().to_vec();
        assert_eq!(bytes.len() as u64, done["size_bytes"].as_u64().unwrap());
        assert_eq!(open(&bytes).await.rows.tenants[0].id, tenant, "{label}");

        for (what, changed) in [
            ("signature", with_param(&url, "sig", "AAAA")),
            ("expiry", with_param(&url, "expires", "99999999999")),
            (
                "export",
                url.replace(job["id"].as_str().unwrap(), &"0".repeat(32)),
            ),
        ] {
            let response = api.http.get(&changed).send().await.unwrap();
            assert_eq!(response.status(), 403, "{label}: a changed {what}");
        }
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let response = api.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 410, "{label}: an expired link");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "link_expired");
        // An expired export offers no link any more, and the sweep deletes it.
        let (_, listed) = api.call(Method::GET, &path, &owner, None).await;
        assert!(listed["download_url"].is_null(), "{label}: {listed}");
        let file = h
            .runtime
            .data_dir()
            .join("exports")
            .join(format!("{}.bundle", job["id"].as_str().unwrap()));
        assert!(file.exists(), "{label}: {}", file.display());
        api.exports.sweep().await.unwrap();
        assert!(!file.exists(), "{label}: the expired bundle is deleted");
        api.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_operator_imports_a_guild_over_the_api_and_the_runtime_sees_it() {
    let (_, store, _guard) = common::sqlite().await;
    let h = harness(store).await;
    let tenant = seed(&h).await;
    let guild = |guild_id| ExportScope::Guild {
        tenant_id: tenant.clone(),
        guild_id,
    };
    let bundle_a = export_bundle(&h.runtime, &guild(GUILD_A), &key(), MAX, |_, _| {})
        .await
        .unwrap();
    let bundle_b = export_bundle(&h.runtime, &guild(GUILD_B), &key(), MAX, |_, _| {})
        .await
        .unwrap();
    let whole = export(&h.runtime, &tenant).await;

    for (label, store, _guard) in common::each_backend().await {
        // The operator brings the tenant with guild A; its owner brings B.
        let (target, _data) = installation(store.clone());
        import_bundle(&target, &bundle_a, &key(), MAX)
            .await
            .unwrap();
        // A bundle's rows are whatever its maker wrote (guild ids, owners,
        // plans): tenants, even the one it names, cannot import one.
        let owner = api_key(&store, &tenant).await;
        let (_, operator) = townes::api::auth::operator::issue_operator(&store, "Oscar")
            .await
            .unwrap();
        let api = Api::start(
            target.clone(),
            Live::local(),
            std::time::Duration::from_secs(60),
        )
        .await;
        let before = store.export_table_counts().await.unwrap();

        let (status, body) = api.import(&owner, PASSPHRASE, bundle_b.clone()).await;
        assert_eq!(status, 403, "{label}: its own guild's bundle: {body}");
        let (status, body) = api.import("", PASSPHRASE, bundle_b.clone()).await;
        assert_eq!(status, 401, "{label}: a stranger: {body}");
        let (status, body) = api.import(&operator, PASSPHRASE, whole.clone()).await;
        assert_eq!(status, 409, "{label}: the tenant is here already: {body}");
        let (status, body) = api
            .import(&operator, "not the right passphrase", bundle_b.clone())
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("wrong_passphrase")),
            "{label}: {body}"
        );
        let cut = bundle_b[..bundle_b.len() - 1].to_vec();
        let (status, body) = api.import(&operator, PASSPHRASE, cut).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("damaged_bundle")),
            "{label}: {body}"
        );
        let (status, body) = api.import(&operator, PASSPHRASE, bundle_a.clone()).await;
        assert_eq!(status, 409, "{label}: guild A is here already: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&GUILD_A.to_string())
        );
        let (status, body) = api
            .import(
                &operator,
                PASSPHRASE,
                with_schema(&bundle_b, townes::store::schema_version() + 1),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("newer_version")),
            "{label}: {body}"
        );
        let counts = store.export_table_counts().await.unwrap();
        assert_eq!(counts, before, "{label}: refusals left rows behind");

        let (status, body) = api.import(&operator, PASSPHRASE, bundle_b.clone()).await;
        assert_eq!(status, 201, "{label}: {body}");
        assert_eq!(body["guild_ids"], json!([GUILD_B.to_string()]));
        let policy = target.store().guild_policy(GUILD_B).await.unwrap();
        assert!(
            policy.feature("notes").is_some_and(|f| f.enabled),
            "{label}"
        );
        let guild_b = store.guild(GUILD_B).await.unwrap().unwrap();
        assert_eq!(guild_b.tenant_id.as_deref(), Some(tenant.as_str()));
        api.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_interrupted_export_is_failed_with_a_hint_and_nothing_offered() {
    for (label, store, _guard) in common::each_backend().await {
        let h = harness(store.clone()).await;
        let tenant = store.create_tenant(777, None).await.unwrap();
        // A job whose process stopped mid-way: its row stopped moving and a
        // partial file was left.
        let scope = ExportScope::Tenant(tenant.id.clone());
        let job = store
            .create_export_job(&scope, "user:42")
            .await
            .unwrap()
            .unwrap();
        // One unfinished export per tenant.
        assert_eq!(
            store.create_export_job(&scope, "user:42").await.unwrap(),
            None,
            "{label}"
        );
        store
            .set_export_progress(&job.id, "reading", 1, 2)
            .await
            .unwrap();
        let dir = h.runtime.data_dir().join("exports");
        std::fs::create_dir_all(&dir).unwrap();
        let partial = dir.join(format!("{}.partial", job.id));
        std::fs::write(&partial, b"half").unwrap();
        let exports = Exports::new(
            h.runtime.clone(),
            Live::local(),
            ExportConfig {
                stale_after: std::time::Duration::ZERO,
                ..ExportConfig::new(h.runtime.data_dir())
            },
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        exports.sweep().await.unwrap();
        let failed = exports.job(&job.id).await.unwrap().unwrap();
        assert_eq!(
            failed.status,
            townes::store::export::ExportStatus::Failed,
            "{label}"
        );
        let error = failed.error.clone().unwrap();
        assert!(
            error.contains("interrupted") && error.contains("start it again"),
            "{label}: {error}"
        );
        assert!(!partial.exists(), "{label}: the partial file is removed");
        assert_eq!(
            exports.download_url(&failed).await.unwrap(),
            None,
            "{label}"
        );
    }
}

#[tokio::test]
async fn townes_export_and_import_move_a_tenant_between_databases() {
    let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = |dir: &tempfile::TempDir| format!("sqlite://{}/townes.db", dir.path().display());
    let store = Store::connect(&url(&source)).await.unwrap();
    let data_dir = source.path().to_path_buf();
    let h = Harness::with_config(store, limits(), |c| {
        c.data_dir = data_dir;
        c.plans = Plans::from_json(r#"{"free": {}, "base": {}}"#).unwrap();
    })
    .await;
    let tenant = seed(&h).await;
    let file = target.path().join("olivia.bundle");
    let run = |dir: &tempfile::TempDir, passphrase: &str, args: &[&str]| {
        common::townes_command(dir.path())
            .args(args)
            .env("TOWNES_EXPORT_PASSPHRASE", passphrase)
            .output()
            .unwrap()
    };
    let export_args = [
        "export",
        "--tenant",
        &tenant,
        "--out",
        file.to_str().unwrap(),
    ];

    let short = run(&source, "short", &export_args);
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    assert!(!file.exists());

    let exported = run(&source, PASSPHRASE, &export_args);
    let stdout = String::from_utf8_lossy(&exported.stdout);
    assert!(
        exported.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert!(stdout.contains("sha256"), "{stdout}");
    assert!(
        !stdout.contains(PASSPHRASE)
            && !String::from_utf8_lossy(&exported.stderr).contains(PASSPHRASE)
    );

    let import_args = ["import", file.to_str().unwrap()];
    let wrong = run(&target, "not the right passphrase", &import_args);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    let imported = run(&target, PASSPHRASE, &import_args);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stdout).contains(&tenant));

    // The target holds what the file holds, components in its own data directory.
    let bytes = std::fs::read(&file).unwrap();
    let store = Store::connect(&url(&target)).await.unwrap();
    let config = RuntimeConfig {
        pool_instances: 8,
        ..RuntimeConfig::new(target.path())
    };
    let runtime = Runtime::new(config, store, discord()).unwrap();
    assert_same(
        &open(&bytes).await,
        &open(&export(&runtime, &tenant).await).await,
        "cli",
    );
}
