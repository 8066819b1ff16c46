//! Self-hosting licences end to end (ADR 0016): the hosted platform's
//! `/licenses/activate` and `/licenses/refresh` on both backends, a
//! self-hosted installation's client against them (activation, refresh, its
//! lease kept offline, the grace, degradation to `free`), each refusal with
//! the message its operator reads, and two `townes serve` processes from this
//! build talking to each other.

mod common;

use chrono::{TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::discord::LocalDiscord;
use townes::licensing::client::{ClientConfig, Degraded, LicenseClient, Standing, cache_path};
use townes::licensing::server::{ServerConfig, sign_ping};
use townes::licensing::{self, Claims, Secret, lease};
use townes::live::Live;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::{LicenseRecord, Store};

const TENANT: &str = "3f9a0c2e7b1d48e6a5c4f0b2d9e8a731";
const CHECK_SERVER: &str = "check LICENSE_SERVER_BASE, this machine's network and its clock";

/// The hosted platform: its API with licensing on, over `store`.
struct Hosted {
    server: Option<ApiServer>,
    base: String,
    key: SigningKey,
    store: Store,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A runtime over `store` with the default plans (`free`, `base`, `pro`).
fn runtime(store: Store, data: &Path) -> Arc<Runtime> {
    let config = RuntimeConfig {
        pool_instances: 4,
        ..RuntimeConfig::new(data)
    };
    Arc::new(Runtime::new(config, store, Arc::new(LocalDiscord::new())).unwrap())
}

impl Hosted {
    async fn start(store: Store) -> Hosted {
        let dir = tempfile::tempdir().unwrap();
        let key = licensing::new_signing_key();
        let key_file = dir.path().join("issuer.key");
        std::fs::write(&key_file, licensing::encode_signing_key(&key)).unwrap();
        let config = ApiConfig {
            licensing: ServerConfig {
                signing_key: Some(key_file),
                ..ServerConfig::default()
            },
            ..ApiConfig::local()
        };
        let parts = ApiParts::new(
            runtime(store.clone(), &dir.path().join("data")),
            Live::local(),
        );
        let server = ApiServer::start(ApiState::new(config, parts).unwrap())
            .await
            .unwrap();
        Hosted {
            base: format!("http://{}", server.addr),
            server: Some(server),
            key,
            store,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn public_key(&self) -> String {
        licensing::encode_public_key(&self.key.verifying_key())
    }

    /// Signs a licence and records it, as `townes license issue` does.
    async fn issue(&self, claims: &Claims) -> String {
        self.store
            .record_license(&LicenseRecord::new(
                &claims.id,
                &claims.tenant,
                &claims.plan,
                claims.issued_at,
                claims.expires_at,
            ))
            .await
            .unwrap();
        licensing::issue(claims, &self.key)
    }

    async fn post(&self, path: &str, body: Vec<u8>, signature: Option<String>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("Townes-Signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn activate(&self, license: &str) -> (u16, Value) {
        let body = json!({ "license": license, "instance": "test-box" });
        self.post("/licenses/activate", body.to_string().into_bytes(), None)
            .await
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }
}

/// A year-long licence for `pro`, licensed for `welcome` only, with its own
/// AI cap and CPU limit.
fn pro_licence(id: &str) -> Claims {
    let now = Utc::now();
    Claims {
        id: id.into(),
        tenant: TENANT.into(),
        plan: "pro".into(),
        flags: vec!["welcome".into()],
        limits: BTreeMap::from([("ai_tokens_per_day".into(), 1_234), ("cpu_ms".into(), 150)]),
        issued_at: now - TimeDelta::minutes(1),
        expires_at: now + TimeDelta::days(365),
    }
}

/// A ping's body and its signature at `signed_at`.
fn ping(activation: &str, ping_id: &str, secret: &str, signed_at: i64) -> (Vec<u8>, String) {
    let body = json!({ "activationId": activation, "pingId": ping_id, "sentAt": Utc::now() })
        .to_string()
        .into_bytes();
    let signature = sign_ping(&Secret::new(secret.into()), signed_at, &body);
    (body, signature)
}

fn error(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or_default(),
        body["error"]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_activates_refreshes_and_a_replayed_ping_changes_nothing() {
    for (label, store, _guard) in common::each_backend().await {
        let hosted = Hosted::start(store.clone()).await;
        let license = hosted.issue(&pro_licence("lic_one")).await;

        let (status, activated) = hosted.activate(&license).await;
        assert_eq!(status, 200, "{label}: {activated}");
        let activation = activated["activationId"].as_str().unwrap().to_string();
        let secret = activated["secret"].as_str().unwrap().to_string();
        assert!(activation.starts_with("act_"), "{label}");
        assert_eq!(secret.len(), 64, "{label}");
        assert_eq!(activated["plan"], "pro", "{label}");
        assert_eq!(activated["flags"], json!(["welcome"]), "{label}");
        assert_eq!(activated["limits"]["ai_tokens_per_day"], 1_234, "{label}");
        assert_eq!(activated["limits"]["cpu_ms"], 150, "{label}");
        assert_eq!(activated["limits"]["memory_mib"], 64, "{label}: pro's own");
        assert!(activated["limits"].get("stripe_price").is_none(), "{label}");
        assert_eq!(activated["refreshInSec"], 3_600, "{label}");
        // The lease is what a runner trusts: signed, and saying the same.
        let first = activated["lease"].as_str().unwrap().to_string();
        let claims = lease::open(&first, &hosted.key.verifying_key()).unwrap();
        assert_eq!(claims.activation_id, activation, "{label}");
        assert_eq!(claims.license_id, "lic_one", "{label}");
        assert_eq!(claims.plan.ai_tokens_per_day, Some(1_234), "{label}");
        assert_eq!(claims.plan.features, Some(vec!["welcome".to_string()]));
        let lasts = claims.expires_at - claims.issued_at;
        assert_eq!(lasts, TimeDelta::days(3), "{label}: the default lease TTL");
        assert_eq!(
            activated["expiresAt"],
            json!(claims.expires_at),
            "{label}: the same expiry"
        );

        // A signed ping gets a fresh lease, recorded with the ping.
        let (body, signature) = ping(&activation, "ping-1", &secret, Utc::now().timestamp());
        let (status, refreshed) = hosted
            .post("/licenses/refresh", body.clone(), Some(signature.clone()))
            .await;
        assert_eq!(status, 200, "{label}: {refreshed}");
        assert_eq!(refreshed["activationId"], activation.as_str());
        let second = refreshed["lease"].as_str().unwrap().to_string();
        // Leases are stamped to the second and Ed25519 signs deterministically,
        // so within the activation's second the lease reads the same.
        let renewed = lease::open(&second, &hosted.key.verifying_key()).unwrap();
        assert!(renewed.issued_at >= claims.issued_at, "{label}");
        assert_eq!(renewed.activation_id, activation, "{label}");
        let row = store
            .license_activation(&activation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.last_ping.as_deref(), Some("ping-1"), "{label}");
        assert_eq!(row.last_lease.as_deref(), Some(second.as_str()), "{label}");
        assert!(
            !format!("{row:?}").contains(&secret),
            "{label}: Debug hides it"
        );

        // The same ping again: the same lease, and nothing changes.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, replayed) = hosted
            .post("/licenses/refresh", body.clone(), Some(signature))
            .await;
        assert_eq!(status, 200, "{label}: {replayed}");
        assert_eq!(
            replayed["lease"],
            second.as_str(),
            "{label}: the same lease"
        );
        let after = store
            .license_activation(&activation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after, row, "{label}: nothing changed");

        // A forged ping (another secret), a stale one and an unsigned one.
        let (forged, forged_signature) = ping(
            &activation,
            "ping-2",
            &"0".repeat(64),
            Utc::now().timestamp(),
        );
        let (status, refused) = hosted
            .post("/licenses/refresh", forged, Some(forged_signature))
            .await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(
            error(&refused),
            (
                "signature_invalid",
                "the ping's signature does not match the activation's secret; activate again with the licence"
            ),
            "{label}"
        );
        let signed_at = Utc::now().timestamp() - 301;
        let (stale, stale_signature) = ping(&activation, "ping-3", &secret, signed_at);
        let (status, refused) = hosted
            .post("/licenses/refresh", stale, Some(stale_signature))
            .await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(
            error(&refused),
            (
                "signature_stale",
                format!("the ping is stale: signed at {signed_at} (unix seconds), more than 300 s from this platform's clock; check the installation's clock").as_str()
            ),
            "{label}"
        );
        let (unsigned, _) = ping(&activation, "ping-4", &secret, 0);
        let (status, refused) = hosted.post("/licenses/refresh", unsigned, None).await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(error(&refused).0, "signature_missing", "{label}");
        let (unknown, signature) = ping("act_nobody", "ping-5", &secret, Utc::now().timestamp());
        let (status, refused) = hosted
            .post("/licenses/refresh", unknown, Some(signature))
            .await;
        assert_eq!(status, 404, "{label}");
        assert_eq!(
            error(&refused),
            (
                "activation_unknown",
                "activation act_nobody is not known here (this platform forgot it, or it was made elsewhere); activate again with the licence"
            ),
            "{label}"
        );
        let unchanged = store
            .license_activation(&activation)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unchanged, row, "{label}: refused pings change nothing");
    }
}

/// A self-hosted installation's client: its own runtime (to see the plan it
/// applies) and data directory.
struct Installation {
    client: LicenseClient,
    runtime: Arc<Runtime>,
    data: tempfile::TempDir,
}

impl Installation {
    async fn new(hosted: &Hosted, license: &str, grace: Duration) -> Installation {
        Installation::in_dir(hosted, license, grace, tempfile::tempdir().unwrap()).await
    }

    async fn in_dir(
        hosted: &Hosted,
        license: &str,
        grace: Duration,
        data: tempfile::TempDir,
    ) -> Installation {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let runtime = runtime(store, &data.path().join("runtime"));
        let config = ClientConfig {
            license: Some(license.into()),
            server_base: Some(hosted.base.clone()),
            public_key: Some(hosted.public_key()),
            grace,
            instance: Some("test-box".into()),
        };
        let client = LicenseClient::new(config, runtime.clone(), data.path()).unwrap();
        Installation {
            client,
            runtime,
            data,
        }
    }

    fn plan(&self) -> Option<String> {
        self.runtime.installation_plan()
    }

    fn cached(&self) -> bool {
        cache_path(self.data.path()).exists()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_keeps_its_lease_offline_then_degrades_after_the_grace() {
    for (label, store, _guard) in common::each_backend().await {
        let mut hosted = Hosted::start(store).await;
        let license = hosted.issue(&pro_licence("lic_offline")).await;
        let grace = Duration::from_secs(2 * 86_400);
        let online = Installation::new(&hosted, &license, grace).await;
        let standing = online.client.check(Utc::now()).await;
        let Standing::Licensed {
            expires_at,
            refresh_at,
            ..
        } = standing.clone()
        else {
            panic!("{label}: {standing}");
        };
        assert_eq!(
            standing.to_string(),
            format!(
                "licence lic_offline: running on plan pro; the lease lasts until {expires_at} and is renewed at {refresh_at}"
            ),
            "{label}"
        );
        assert_eq!(online.plan().as_deref(), Some("pro"), "{label}");
        let limits = online.runtime.plan_of("free").1;
        assert_eq!(
            limits.limits.cpu_ms, 150,
            "{label}: the licence's own limit"
        );
        assert_eq!(limits.ai_tokens_per_day, Some(1_234), "{label}");
        // A refresh with the cached activation keeps it licensed.
        let again = online.client.check(Utc::now()).await;
        assert!(
            matches!(again, Standing::Licensed { .. }),
            "{label}: {again}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(cache_path(online.data.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{label}: the cache holds the secret");
        }
        let cached = std::fs::read_to_string(cache_path(online.data.path())).unwrap();
        let lease_claims = {
            let value: Value = serde_json::from_str(&cached).unwrap();
            lease::open(
                value["lease"].as_str().unwrap(),
                &hosted.key.verifying_key(),
            )
            .unwrap()
        };

        // The platform goes away; the installation restarts on its cache.
        hosted.stop().await;
        let Installation { data, .. } = online;
        let restarted = Installation::in_dir(&hosted, &license, grace, data).await;
        let standing = restarted.client.check(Utc::now()).await;
        let Standing::Offline { error, .. } = &standing else {
            panic!("{label}: {standing}");
        };
        assert!(error.contains("error sending request"), "{label}: {error}");
        let (expires, grace_ends) = (lease_claims.expires_at, lease_claims.grace_ends(grace));
        assert_eq!(
            standing.to_string(),
            format!(
                "licence lic_offline: the lease cannot be renewed ({error}); still on plan pro with the cached lease until {expires}, then in grace until {grace_ends}; {CHECK_SERVER}"
            ),
            "{label}"
        );
        assert_eq!(restarted.plan().as_deref(), Some("pro"), "{label}");

        // A day after the lease expired: in grace, a day left.
        let later = expires + TimeDelta::days(1);
        let standing = restarted.client.check(later).await;
        let Standing::Grace { error, left, .. } = &standing else {
            panic!("{label}: {standing}");
        };
        assert_eq!(*left, TimeDelta::days(1), "{label}");
        assert_eq!(
            standing.to_string(),
            format!(
                "licence lic_offline: the lease expired at {expires} and still cannot be renewed ({error}); plan pro holds for 1 d 0 h more, until {grace_ends}, then the free plan applies; {CHECK_SERVER}"
            ),
            "{label}"
        );
        assert_eq!(restarted.plan().as_deref(), Some("pro"), "{label}");

        // The grace is over: free, until the platform answers.
        let over = grace_ends + TimeDelta::seconds(1);
        let standing = restarted.client.check(over).await;
        let Standing::Free(Degraded::GraceOver { error, .. }) = &standing else {
            panic!("{label}: {standing}");
        };
        assert_eq!(
            standing.to_string(),
            format!(
                "licence lic_offline: the lease expired at {expires} and its grace ended at {grace_ends} without a renewal ({error}): running on the free plan until the licence server renews it; {CHECK_SERVER}"
            ),
            "{label}"
        );
        assert_eq!(restarted.plan().as_deref(), Some("free"), "{label}");
        assert!(
            restarted.cached(),
            "{label}: the activation is kept for when the platform answers"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_licences_say_why_and_run_on_free() {
    for (label, store, _guard) in common::each_backend().await {
        let hosted = Hosted::start(store.clone()).await;
        let grace = Duration::from_secs(86_400);

        // Revoked while installed: free at the next refresh, cache deleted.
        let license = hosted.issue(&pro_licence("lic_revoked")).await;
        let installed = Installation::new(&hosted, &license, grace).await;
        let standing = installed.client.check(Utc::now()).await;
        assert!(matches!(standing, Standing::Licensed { .. }), "{label}");
        assert!(installed.cached(), "{label}");
        store
            .revoke_license("lic_revoked", "chargeback", Utc::now())
            .await
            .unwrap();
        let revoked_at = store
            .license("lic_revoked")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .unwrap();
        let standing = installed.client.check(Utc::now()).await;
        assert_eq!(
            standing.to_string(),
            format!(
                "the licence server refused the licence (license_revoked): licence lic_revoked was revoked at {revoked_at}: chargeback; running on the free plan; ask the hosted platform's operator for a licence, put it in TOWNESDEV_LICENSE and restart"
            ),
            "{label}"
        );
        assert_eq!(installed.plan().as_deref(), Some("free"), "{label}");
        assert!(!installed.cached(), "{label}: the cache is deleted");
        let (status, body) = hosted.activate(&license).await;
        assert_eq!(
            (status, error(&body).0),
            (403, "license_revoked"),
            "{label}"
        );

        // Refused offline, before the platform is asked.
        let mut tampered: Vec<char> = hosted
            .issue(&pro_licence("lic_tampered"))
            .await
            .chars()
            .collect();
        let at = 12;
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let mut expired = pro_licence("lic_expired");
        expired.issued_at = Utc::now() - TimeDelta::days(30);
        expired.expires_at = Utc::now() - TimeDelta::days(1);
        let expired_at = expired.expires_at;
        let expired = hosted.issue(&expired).await;
        let mut future = pro_licence("lic_future");
        future.issued_at = Utc::now() + TimeDelta::hours(1);
        let future_at = future.issued_at;
        let future = hosted.issue(&future).await;
        let foreign = licensing::issue(&pro_licence("lic_foreign"), &licensing::new_signing_key());
        let cases: [(&str, String, (u16, &str)); 4] = [
            (
                &tampered,
                "TOWNESDEV_LICENSE is refused: the license's signature does not match: it was changed after it was issued, or another issuer signed it; ask for a new key; running on the free plan".into(),
                (403, "license_bad_signature"),
            ),
            (
                &foreign,
                "TOWNESDEV_LICENSE is refused: the license's signature does not match: it was changed after it was issued, or another issuer signed it; ask for a new key; running on the free plan".into(),
                (403, "license_bad_signature"),
            ),
            (
                &expired,
                format!("TOWNESDEV_LICENSE is refused: the license expired at {expired_at}; renew it on the hosted platform; running on the free plan"),
                (403, "license_expired"),
            ),
            (
                &future,
                format!("TOWNESDEV_LICENSE is refused: the license was issued at {future_at}, which is still in the future here; check this machine's clock; running on the free plan"),
                (422, "license_not_yet_valid"),
            ),
        ];
        for (license, message, (status, code)) in cases {
            let installation = Installation::new(&hosted, license, grace).await;
            let standing = installation.client.check(Utc::now()).await;
            assert_eq!(standing.to_string(), message, "{label}");
            assert_eq!(installation.plan().as_deref(), Some("free"), "{label}");
            assert_eq!(LicenseClient::next_check(&standing, Utc::now()), None);
            // The platform refuses it the same way.
            let (got, body) = hosted.activate(license).await;
            assert_eq!((got, error(&body).0), (status, code), "{label}: {body}");
        }

        // Refused by the platform: not issued there, another tenant's id.
        let unrecorded = licensing::issue(&pro_licence("lic_elsewhere"), &hosted.key);
        let mut other_tenant = pro_licence("lic_tenant");
        hosted.issue(&other_tenant).await;
        other_tenant.tenant = "globex".into();
        let other_tenant = licensing::issue(&other_tenant, &hosted.key);
        let cases = [
            (
                unrecorded,
                "the licence server refused the licence (license_unknown): licence lic_elsewhere was not issued by this platform; use the key this platform's operator gave you; running on the free plan; ask the hosted platform's operator for a licence, put it in TOWNESDEV_LICENSE and restart".to_string(),
            ),
            (
                other_tenant,
                format!("the licence server refused the licence (license_other_tenant): the license belongs to tenant globex, not {TENANT}; use that tenant's key; running on the free plan"),
            ),
        ];
        for (license, message) in cases {
            let installation = Installation::new(&hosted, &license, grace).await;
            let standing = installation.client.check(Utc::now()).await;
            assert_eq!(standing.to_string(), message, "{label}");
            assert_eq!(installation.plan().as_deref(), Some("free"), "{label}");
        }
    }
}

#[tokio::test]
async fn licensing_off_answers_503_saying_how_to_turn_it_on() {
    let (_, store, _guard) = common::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let parts = ApiParts::new(runtime(store, dir.path()), Live::local());
    let server = ApiServer::start(ApiState::new(ApiConfig::local(), parts).unwrap())
        .await
        .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("http://{}/licenses/activate", server.addr))
        .json(&json!({ "license": "tdl1.a.b" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "self-hosting licences are off on this platform"
    );
    assert_eq!(
        body["error"]["hint"],
        "its operator sets TOWNES_LICENSE_SIGNING_KEY to the signing key file `townes license keygen` wrote, and restarts"
    );
    server.shutdown().await.unwrap();
}

/// Lines a child process writes, read on a thread so the pipe never fills.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// The first line `lines` receives that contains `part`, within 60 s; what
/// was seen before it goes to `seen`.
fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    part: &str,
    seen: &mut Vec<String>,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(part) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with `{part}`; seen: {seen:#?}"),
        }
    }
}

/// Kills a child when dropped, so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The headline: a hosted `townes serve` with the signing key, and a
/// self-hosted `townes serve` with the licence, from this build, talk to
/// each other through `/licenses/activate` and `/licenses/refresh`.
#[test]
fn a_self_hosted_process_activates_its_licence_on_a_hosted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (hosted_dir, self_dir) = (dir.path().join("hosted"), dir.path().join("self"));
    std::fs::create_dir_all(&hosted_dir).unwrap();
    std::fs::create_dir_all(&self_dir).unwrap();
    let signing = hosted_dir.join("issuer.key");
    let licence_env = [
        "TOWNESDEV_LICENSE",
        "LICENSE_SERVER_BASE",
        "TOWNESDEV_LICENSE_PUBLIC_KEY",
        "TOWNES_LICENSE_SIGNING_KEY",
        "TOWNES_LICENSE_GRACE",
        "TOWNES_PLANS",
        "DISCORD_TOKEN",
    ];
    let townes = |data: &Path| {
        let mut command = common::townes_command(data);
        for name in licence_env {
            command.env_remove(name);
        }
        command.env("TOWNES_LOG", "warn,serenity=error,townes::licensing=info");
        command
    };
    let run = |command: &mut std::process::Command| {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let made = run(townes(&hosted_dir).args([
        "license",
        "keygen",
        "--signing-key",
        signing.to_str().unwrap(),
    ]));
    let public = made
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap()
        .to_string();

    // The hosted platform: leases renewed every second, so the test sees one.
    let mut hosted = Child(
        townes(&hosted_dir)
            .args(["serve"])
            .env("TOWNES_LICENSE_SIGNING_KEY", &signing)
            .env("TOWNES_LICENSE_REFRESH", "1s")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let hosted_out = lines_of(hosted.0.stdout.take().unwrap());
    let mut seen = Vec::new();
    let api = wait_for_line(&hosted_out, "dashboard API: ", &mut seen);
    let base = api.trim_start_matches("dashboard API: ").to_string();

    let license = run(townes(&hosted_dir).args([
        "license",
        "issue",
        "--signing-key",
        signing.to_str().unwrap(),
        "--tenant",
        TENANT,
        "--plan",
        "pro",
        "--flags",
        "welcome",
        "--limits",
        "ai_tokens_per_day=777",
    ]));
    let license = license.trim().to_string();
    let claims = licensing::verify(
        &license,
        &licensing::decode_public_key(&public).unwrap(),
        Utc::now(),
        Some(TENANT),
    )
    .unwrap();

    let mut installed = Child(
        townes(&self_dir)
            .args(["serve", "--no-api"])
            .env("TOWNESDEV_LICENSE", &license)
            .env("LICENSE_SERVER_BASE", &base)
            .env("TOWNESDEV_LICENSE_PUBLIC_KEY", &public)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let installed_log = lines_of(installed.0.stderr.take().unwrap());
    let mut log = Vec::new();
    let line = wait_for_line(&installed_log, "running on plan", &mut log);
    assert!(
        line.contains(&format!("licence {}: running on plan pro;", claims.id)),
        "{line}"
    );
    assert!(!line.contains(&license), "the licence key is never logged");

    // The hosted database has the activation, and soon a signed refresh.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}/townes.db", hosted_dir.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let last_lease = loop {
        let row = runtime.block_on(activation_of(&url, &claims.id));
        if let Some((_, Some(_), Some(lease))) = row {
            break lease;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh recorded: {row:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let lease = lease::open(&last_lease, &hosted_key(&signing)).unwrap();
    assert_eq!(lease.plan_name, "pro");
    assert_eq!(lease.plan.ai_tokens_per_day, Some(777));
    assert_eq!(lease.plan.features, Some(vec!["welcome".to_string()]));

    // The installation's own view of its lease.
    let status = run(townes(&self_dir)
        .args(["license", "status"])
        .env("TOWNESDEV_LICENSE_PUBLIC_KEY", &public));
    assert!(status.contains("plan: pro"), "{status}");
    assert!(
        status.contains("now: licensed: plan pro applies"),
        "{status}"
    );
    assert!(
        status.contains(&format!("licence {}", claims.id)),
        "{status}"
    );

    // Revoked on the hosted side: the installation runs on free within a refresh.
    let revoked = run(townes(&hosted_dir).args([
        "license",
        "revoke",
        &claims.id,
        "--reason",
        "moved to the hosted plan",
    ]));
    assert!(
        revoked.contains(&format!("licence {} revoked", claims.id)),
        "{revoked}"
    );
    let line = wait_for_line(&installed_log, "refused the licence", &mut log);
    assert!(line.contains("(license_revoked)"), "{line}");
    assert!(line.contains("moved to the hosted plan"), "{line}");
    assert!(line.contains("running on the free plan"), "{line}");
    assert!(!cache_path(&self_dir).exists(), "the cache is deleted");

    // Its replacement carries what the installation's leases said it had.
    let regenerated = run(townes(&hosted_dir).args([
        "license",
        "regen",
        &claims.id,
        "--signing-key",
        signing.to_str().unwrap(),
    ]));
    let successor = licensing::verify(
        regenerated.trim(),
        &hosted_key(&signing),
        Utc::now(),
        Some(TENANT),
    )
    .unwrap();
    assert_eq!(successor.flags, ["welcome"]);
    assert_eq!(successor.limits["ai_tokens_per_day"], 777);
    drop(installed);
    drop(hosted);
}

/// The activation of `license_id` with its last ping and lease, read straight
/// from the hosted process's database.
async fn activation_of(
    url: &str,
    license_id: &str,
) -> Option<(String, Option<String>, Option<String>)> {
    use sqlx::Connection as _;
    let mut db = sqlx::SqliteConnection::connect(url).await.ok()?;
    sqlx::query_as(
        "SELECT id, last_ping, last_lease FROM license_activations WHERE license_id = $1",
    )
    .bind(license_id)
    .fetch_optional(&mut db)
    .await
    .ok()
    .flatten()
}

fn hosted_key(signing: &Path) -> ed25519_dalek::VerifyingKey {
    licensing::decode_signing_key(&std::fs::read_to_string(signing).unwrap())
        .unwrap()
        .verifying_key()
}

/// The issuer's commands: `issue` records, `revoke` and `regen` withdraw and
/// replace, each saying what happened or what to do.
#[test]
fn the_issuer_revokes_and_regenerates_licences_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("issuer.key");
    let signing = signing.to_str().unwrap();
    let townes = |args: &[&str]| {
        common::townes_command(dir.path())
            .args(args)
            .env_remove("TOWNES_PLANS")
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = townes(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let fails = |args: &[&str]| {
        let out = townes(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let (made, _) = ok(&["license", "keygen", "--signing-key", signing]);
    let public = made
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap()
        .to_string();
    let issuer = licensing::decode_public_key(&public).unwrap();

    let refused = fails(&[
        "license",
        "issue",
        "--signing-key",
        signing,
        "--tenant",
        TENANT,
        "--plan",
        "gold",
    ]);
    for part in [
        "plan `gold` is not defined here (TOWNES_PLANS defines ",
        "); pick one of those, or define it in TOWNES_PLANS first",
    ] {
        assert!(refused.contains(part), "{refused}");
    }
    let (key, note) = ok(&[
        "license",
        "issue",
        "--signing-key",
        signing,
        "--tenant",
        TENANT,
        "--id",
        "lic_first",
        "--days",
        "30",
        "--flags",
        "welcome",
        "--limits",
        "ai_tokens_per_day=500,warp_drives=2",
    ]);
    assert!(
        note.contains(
            "note: warp_drives=2 name no limit a plan has, or do not fit it: runners ignore them"
        ),
        "{note}"
    );
    assert!(note.contains("licence lic_first recorded"), "{note}");
    let first = key.trim().to_string();
    let again = fails(&[
        "license",
        "issue",
        "--signing-key",
        signing,
        "--tenant",
        TENANT,
        "--id",
        "lic_first",
    ]);
    assert!(
        again.contains(
            "a licence with id lic_first is already recorded; issue it without --id for a new one"
        ),
        "{again}"
    );

    // Never activated: its features and limits are only in its key.
    let unknown_grant = fails(&["license", "regen", "lic_first", "--signing-key", signing]);
    assert!(
        unknown_grant.contains("pass its key with --license"),
        "{unknown_grant}"
    );
    let (key, note) = ok(&[
        "license",
        "regen",
        "lic_first",
        "--signing-key",
        signing,
        "--license",
        &first,
    ]);
    let second = licensing::verify(key.trim(), &issuer, Utc::now(), Some(TENANT)).unwrap();
    assert_ne!(second.id, "lic_first");
    assert_eq!(second.plan, "pro");
    assert_eq!(second.flags, ["welcome"]);
    assert_eq!(second.limits["ai_tokens_per_day"], 500);
    assert_eq!(
        (second.expires_at - second.issued_at).num_days(),
        30,
        "the old one's length"
    );
    assert!(
        note.contains(&format!(
            "licence {} issued in place of lic_first (now revoked: replaced by a new licence)",
            second.id
        )),
        "{note}"
    );
    let replaced = fails(&["license", "regen", "lic_first", "--signing-key", signing]);
    assert!(
        replaced.contains(&format!(
            "licence lic_first was already replaced by {0}; regenerate {0} instead",
            second.id
        )),
        "{replaced}"
    );
    let (revoked, _) = ok(&["license", "revoke", "lic_first", "--reason", "again"]);
    assert!(
        revoked.starts_with("licence lic_first was already revoked at "),
        "{revoked}"
    );
    assert!(
        revoked.contains(&format!(
            ": replaced by a new licence; its successor is {}; nothing changed",
            second.id
        )),
        "{revoked}"
    );
    let (revoked, _) = ok(&["license", "revoke", &second.id, "--reason", "chargeback"]);
    assert!(
        revoked.starts_with(&format!("licence {} revoked: chargeback.", second.id)),
        "{revoked}"
    );
    let unknown = fails(&["license", "revoke", "lic_nope", "--reason", "x"]);
    assert!(
        unknown.contains("no licence lic_nope is recorded in this database"),
        "{unknown}"
    );
    // No cached lease here: `status` says how to get one.
    let status = fails(&["license", "status", "--license-public-key", &public]);
    assert!(
        status.contains("this installation has not activated a licence"),
        "{status}"
    );
}
