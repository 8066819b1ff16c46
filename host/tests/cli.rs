//! The `townes` binary as a user runs it: `feature run` and `migrate`, against a
//! fresh SQLite file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn townes(data_dir: &Path, args: &[&str]) -> Output {
    common::townes_command(data_dir)
        .args(args)
        .env_remove("TOWNES_PLANS")
        .output()
        .expect("running townes")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "townes failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn feature_run_prints_effects_and_the_reply_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = common::component_path("hello");
    let first = stdout(&townes(
        dir.path(),
        &["feature", "run", &wasm, "--command", "hello", "--json"],
    ));
    let line: serde_json::Value = serde_json::from_str(first.lines().last().unwrap()).unwrap();
    assert_eq!(line["ok"], true);
    assert_eq!(
        line["reply"]["body"]["content"],
        "Hello, ada! (greeting #1 in this server)"
    );
    assert_eq!(line["effects"][0]["effect"], "storage_incremented");

    // State lives in the SQLite file: a second run counts on.
    let second = stdout(&townes(
        dir.path(),
        &[
            "feature",
            "run",
            &wasm,
            "--command",
            "hello",
            "--user",
            "43",
            "--json",
        ],
    ));
    assert!(
        second.contains("Hello, bob! (greeting #2 in this server)"),
        "{second}"
    );
}

#[test]
fn feature_run_delivers_an_event_from_json() {
    let dir = tempfile::tempdir().unwrap();
    let event = r#"{"MemberJoined":{"user":{"id":43,"username":"bob","bot":false},"roles":[]}}"#;
    let config = r#"{"greeting":"Hi","welcome_channel":1001}"#;
    let out = stdout(&townes(
        dir.path(),
        &[
            "feature",
            "run",
            &common::component_path("hello"),
            "--config",
            config,
            "--event",
            event,
        ],
    ));
    assert!(out.contains("message → #1001: Hi, <@43>!"), "{out}");
}

#[test]
fn feature_run_explains_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = common::component_path("hello");
    let bad_event = townes(
        dir.path(),
        &["feature", "run", &wasm, "--event", "{\"Nope\": 1}"],
    );
    assert!(!bad_event.status.success());
    assert!(String::from_utf8_lossy(&bad_event.stderr).contains("--event is not an event"));

    let unknown_command = townes(dir.path(), &["feature", "run", &wasm, "--command", "nope"]);
    assert!(
        String::from_utf8_lossy(&unknown_command.stderr)
            .contains("has no command `nope`; its commands: hello")
    );

    let bad_capability = townes(
        dir.path(),
        &[
            "feature",
            "run",
            &wasm,
            "--command",
            "hello",
            "--approve",
            "telepathy",
        ],
    );
    assert!(
        String::from_utf8_lossy(&bad_capability.stderr).contains("unknown capability `telepathy`")
    );

    let missing = townes(
        dir.path(),
        &["feature", "run", "/nonexistent.wasm", "--command", "hello"],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading /nonexistent.wasm"));
}

#[test]
fn enabling_without_a_required_capability_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let refused = townes(
        dir.path(),
        &[
            "feature",
            "run",
            &common::component_path("hello"),
            "--command",
            "hello",
            "--approve",
            "messages",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("requires storage"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        assert!(stdout(&townes(dir.path(), &["migrate"])).contains("migrations applied"));
    }
}

#[test]
fn the_demo_plays_welcome_and_xp_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&townes(
        dir.path(),
        &[
            "demo",
            &common::component_path("hello"),
            &common::component_path("welcome"),
            &common::component_path("xp"),
        ],
    ));
    assert!(
        out.contains("message → #1001: Welcome <@44> to Playground! You are member #3."),
        "{out}"
    );
    assert!(
        out.contains("message → #1001: GG <@42>, you reached level 1!"),
        "{out}"
    );
    assert!(
        out.contains("role 1002 + 44"),
        "the level-1 role reward: {out}"
    );
    assert!(
        out.contains("#1 <@44> — level 1 (120 XP)\n#2 <@42> — level 1 (119 XP)"),
        "{out}"
    );
    // The playground's tenant and guild are in the store.
    let guild = stdout(&townes(dir.path(), &["guild", "show", "1000", "--json"]));
    let guild: serde_json::Value = serde_json::from_str(&guild).unwrap();
    assert!(guild["guild"]["tenant_id"].is_string(), "{guild}");
    assert_eq!(guild["features"].as_array().unwrap().len(), 3);
}

/// A `townes serve` playing the offline playground, and the reader of the
/// rest of its output.
struct Served {
    child: std::process::Child,
    rest: std::thread::JoinHandle<Vec<String>>,
}

/// Runs `townes serve` offline in `dir` until it says it is running; returns
/// what it printed until then.
fn serve_playground(dir: &Path) -> (Vec<String>, Served) {
    use std::io::{BufRead, BufReader};
    let mut child = common::townes_command(dir)
        .args([
            "serve",
            &common::component_path("hello"),
            &common::component_path("welcome"),
            &common::component_path("xp"),
        ])
        .env_remove("DISCORD_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let running = line.contains("the platform is running offline");
        seen.push(line);
        if running {
            break;
        }
    }
    let rest = std::thread::spawn(move || lines.map(Result::unwrap).collect());
    (seen, Served { child, rest })
}

/// Interrupts a served playground; asserts it stopped cleanly.
fn stop_playground(mut served: Served) {
    let status = interrupt(&mut served.child);
    let rest = served.rest.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
}

#[test]
fn serve_plays_the_playground_then_runs_until_interrupted_and_continues_it_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, child) = serve_playground(dir.path());
    for expected in [
        "a new playground; the next run continues it",
        "bot → #general: Welcome @carol to Playground!",
        "bot → #general: GG @carol, you reached level 1!",
        "bot answers: Hello, carol!",
    ] {
        assert!(
            seen.iter().any(|l| l.contains(expected)),
            "{expected}: {seen:#?}"
        );
    }
    stop_playground(child);

    // The same guild and members, so carol's XP carries on: she is past
    // level 1 already.
    let (again, child) = serve_playground(dir.path());
    stop_playground(child);
    assert!(
        again
            .iter()
            .any(|l| l.contains("the playground continues: same guild, members and feature data")),
        "{again:#?}"
    );
    assert!(
        !again.iter().any(|l| l.contains("reached level 1")),
        "{again:#?}"
    );
    let guilds = stdout(&townes(dir.path(), &["guild", "list", "--json"]));
    let guilds: serde_json::Value = serde_json::from_str(&guilds).unwrap();
    assert_eq!(guilds.as_array().unwrap().len(), 1, "{guilds}");
}

/// Sends SIGINT and waits (at most 30 s) for the process to end.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Fail rather than hang if the interrupt is not honoured.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("townes did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A database that fails for a while (here: the jobs table is gone) is logged
/// and retried; serving goes on, and a later interrupt still shuts down in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rides_out_database_errors_and_still_stops_gracefully() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::townes_command(dir.path())
        .args(["serve", "--no-api", &common::component_path("hello")])
        .env_remove("DISCORD_TOKEN")
        .env("TOWNES_LOG", "warn,serenity=error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map(Result::unwrap)
            .any(|l| l.contains("the platform is running offline")),
        "serve did not start"
    );
    let db =
        sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}/townes.db", dir.path().display()))
            .await
            .unwrap();
    sqlx::query("ALTER TABLE scheduled_jobs RENAME TO scheduled_jobs_away")
        .execute(&db)
        .await
        .unwrap();
    // Several job polls fail meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve ended on a database error"
    );
    sqlx::query("ALTER TABLE scheduled_jobs_away RENAME TO scheduled_jobs")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let status = interrupt(&mut child);
    let rest: Vec<_> = lines.map(Result::unwrap).collect();
    let log = log.join().unwrap();
    assert!(status.success(), "{status:?}: {log}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    assert!(
        log.contains("could not run scheduled jobs; retrying"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_bad_discord_token_without_printing_it() {
    let sim = townes_discord_sim::Simulator::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::from(common::townes_command(dir.path()))
        .arg("serve")
        .env("DISCORD_TOKEN", "not-a-real-token")
        .env("DISCORD_API_BASE", sim.base_url())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Discord refused the bot token"), "{stderr}");
    assert!(stderr.contains("check DISCORD_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("not-a-real-token"),
        "the token must never be printed: {stderr}"
    );
}

#[test]
fn marketplace_commands_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(stdout(&townes(dir.path(), args)).trim()).unwrap()
    };
    // The playground guild (1000) exists after a demo run.
    stdout(&townes(
        dir.path(),
        &["demo", &common::component_path("hello")],
    ));
    // hello is the platform's: a local publisher cannot add a version of it.
    let squat = townes(
        dir.path(),
        &["feature", "install", &common::component_path("hello_next")],
    );
    let why = String::from_utf8_lossy(&squat.stderr);
    assert!(
        !squat.status.success() && why.contains("belongs to publisher `townes`"),
        "{why}"
    );
    stdout(&townes(
        dir.path(),
        &[
            "feature",
            "install",
            "--builtin",
            &common::component_path("hello_next"),
        ],
    ));
    let catalogue = json(&["feature", "list", "--json"]);
    assert_eq!(
        catalogue[0]["versions"].as_array().unwrap().len(),
        2,
        "{catalogue}"
    );

    let upgraded = json(&[
        "feature", "upgrade", "hello", "--guild", "1000", "--to", "0.2.0", "--json",
    ]);
    assert_eq!(
        (
            upgraded["version"].as_str(),
            upgraded["previous_version"].as_str()
        ),
        (Some("0.2.0"), Some("0.1.0"))
    );
    let text = stdout(&townes(
        dir.path(),
        &["feature", "rollback", "hello", "--guild", "1000"],
    ));
    assert_eq!(text.trim(), "hello in guild 1000: 0.2.0 → 0.1.0");

    let bad = townes(
        dir.path(),
        &[
            "feature",
            "config",
            "hello",
            "--guild",
            "1000",
            "--set",
            r#"{"greeting": 5}"#,
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("/greeting: 5 is not of type \"string\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let disabled = json(&["feature", "disable", "hello", "--guild", "1000", "--json"]);
    assert_eq!(disabled["enabled"], false);
    let enabled = json(&[
        "feature",
        "enable",
        "hello",
        "--guild",
        "1000",
        "--version",
        "0.1.0",
        "--json",
    ]);
    assert_eq!(
        (enabled["enabled"].as_bool(), enabled["version"].as_str()),
        (Some(true), Some("0.1.0"))
    );

    // Dangerous permissions are elevated by name, never Administrator.
    let elevate = |what: &'static str| -> Vec<&str> {
        vec![
            "feature",
            "grants",
            "hello",
            "--guild",
            "1000",
            "--elevate",
            what,
        ]
    };
    let grants = json(&[elevate("manage-server,Ban Members"), vec!["--json"]].concat());
    assert_eq!(
        grants["approved"]["elevated_permissions"],
        (1u64 << 5) | (1 << 2),
        "{grants}"
    );
    for (what, why) in [
        (
            "administrator",
            "Administrator is never handed to a feature",
        ),
        ("send-messages", "is not a dangerous permission"),
        ("manage-everything", "is not a permission name"),
    ] {
        let refused = townes(dir.path(), &elevate(what));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains(why),
            "{stderr}"
        );
    }
    let text = stdout(&townes(dir.path(), &elevate("none")));
    assert!(text.contains("elevated permissions: none"), "{text}");
}

#[test]
fn api_keys_from_the_command_line_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(stdout(&townes(dir.path(), args)).trim()).unwrap()
    };
    // `feature run` leaves its local guild (1000) in the store, no tenant's yet.
    stdout(&townes(
        dir.path(),
        &[
            "feature",
            "run",
            &common::component_path("hello"),
            "--command",
            "hello",
        ],
    ));
    let unclaimed = json(&["guild", "show", "1000", "--json"]);
    assert!(unclaimed["guild"]["tenant_id"].is_null(), "{unclaimed}");
    let owner = unclaimed["guild"]["owner_id"].to_string();

    let created = json(&[
        "key",
        "create",
        "--owner",
        &owner,
        "--name",
        "dashboard",
        "--json",
    ]);
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with(&format!("tdk_{id}_")) && secret.len() > 40,
        "{created}"
    );
    let tenant = created["tenant_id"].as_str().unwrap();
    assert_eq!(created["claimed_guilds"], serde_json::json!(["1000"]));
    // The owner's guild belongs to the key's tenant now, as after a login.
    let guild = json(&["guild", "show", "1000", "--json"]);
    assert_eq!(guild["guild"]["tenant_id"], tenant, "{guild}");

    // The same tenant again: a second key sits next to the first.
    let second = json(&["key", "create", "--owner", &owner, "--json"]);
    assert_eq!(second["tenant_id"], tenant);
    let listed = json(&["key", "list", "--owner", &owner, "--json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&id.as_str()), "{listed}");
    assert!(
        !listed.to_string().contains(&secret[secret.len() - 20..]),
        "the secret is shown once, never listed"
    );

    let text = stdout(&townes(
        dir.path(),
        &["key", "revoke", "--owner", &owner, &id],
    ));
    assert_eq!(text.trim(), format!("revoked API key {id}"));
    let listed = json(&["key", "list", "--owner", &owner, "--json"]);
    let revoked = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{listed}");
    // Revoking twice, or as someone else, is refused.
    for owner in [owner.as_str(), "43"] {
        let again = townes(dir.path(), &["key", "revoke", "--owner", owner, &id]);
        assert!(!again.status.success());
    }
    let human = stdout(&townes(dir.path(), &["key", "list", "--owner", &owner]));
    assert!(human.contains(&format!("{id}  \"dashboard\"")), "{human}");
    assert!(human.contains("revoked"), "{human}");
}

/// `townes api` alone: it serves probes, refuses unauthenticated calls, and stops
/// cleanly on SIGINT.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_runs_alone_and_stops_on_interrupt() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::from(common::townes_command(dir.path()))
        .arg("api")
        .env_remove("DISCORD_TOKEN")
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("dashboard API: http://") {
                return addr.to_string();
            }
        }
        panic!("townes api ended without announcing its address");
    })
    .await
    .expect("no address announced within 60 s");
    let get = |path: &str| reqwest::get(format!("http://{addr}{path}"));
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    let ready: serde_json::Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "ok", "{ready}");
    assert_eq!(ready["redis"], "not configured", "{ready}");
    assert_eq!(get("/me").await.unwrap().status().as_u16(), 401);
    // Login is off without OAuth settings, and says how to turn it on.
    let login = get("/auth/discord/login").await.unwrap();
    assert_eq!(login.status().as_u16(), 503);
    let body: serde_json::Value = login.json().await.unwrap();
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("DISCORD_CLIENT_ID"),
        "{body}"
    );

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("townes api did not stop on SIGINT")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// Secrets in the environment never reach help output or error messages: clap
/// would print an `env` argument's value in `--help`, and a database URL
/// carries its password.
#[test]
fn help_and_errors_never_print_secrets_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = [
        (
            "DATABASE_URL",
            "postgres://townes:pg-pass-s3cret@127.0.0.1:1/townes",
            "pg-pass-s3cret",
        ),
        ("DISCORD_TOKEN", "token-s3cret", "token-s3cret"),
        (
            "REDIS_URL",
            "redis://:redis-pass-s3cret@127.0.0.1:1",
            "redis-pass-s3cret",
        ),
        ("DISCORD_CLIENT_SECRET", "client-s3cret", "client-s3cret"),
        (
            "DISCORD_API_BASE",
            "https://proxy:proxy-pass-s3cret@127.0.0.1:1",
            "proxy-pass-s3cret",
        ),
        ("STRIPE_SECRET", "pk_stripe-s3cret", "stripe-s3cret"),
        ("TOWNESDEV_LICENSE", "tdl1.license-s3cret", "license-s3cret"),
        (
            "LICENSE_SERVER_BASE",
            "https://lic:lic-pass-s3cret@127.0.0.1:1",
            "lic-pass-s3cret",
        ),
    ];
    let run = |args: &[&str]| {
        let mut command = common::townes_command(dir.path());
        for (name, value, _) in secrets {
            command.env(name, value);
        }
        command.args(args).output().expect("running townes")
    };
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["api", "--help"],
        &["migrate"],
        &["check-config"],
        &["backup", "copy.db"],
    ] {
        let out = run(args);
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for (name, _, secret) in secrets {
            assert!(
                !shown.contains(secret),
                "`townes {args:?}` printed {name}: {shown}"
            );
        }
        if args == ["--help"] {
            assert!(
                shown.contains("DATABASE_URL"),
                "the variable is still named: {shown}"
            );
        }
        if args == ["migrate"] || args == ["check-config"] {
            assert!(!out.status.success(), "nothing listens on port 1: {shown}");
        }
    }
}

#[test]
fn an_issuer_makes_keys_issues_a_license_and_a_runner_checks_it_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("issuer.key");
    let signing = signing.to_str().unwrap();
    let made = stdout(&townes(
        dir.path(),
        &["license", "keygen", "--signing-key", signing],
    ));
    let public = made
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("the public key is printed")
        .to_string();
    let secret = std::fs::read_to_string(signing).unwrap();
    assert!(
        !made.contains(secret.trim()),
        "the signing key is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(signing).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    let again = townes(dir.path(), &["license", "keygen", "--signing-key", signing]);
    assert!(
        !again.status.success(),
        "an existing key is never overwritten"
    );
    assert_eq!(std::fs::read_to_string(signing).unwrap(), secret);

    let license = stdout(&townes(
        dir.path(),
        &[
            "license",
            "issue",
            "--signing-key",
            signing,
            "--tenant",
            "acme",
            "--plan",
            "pro",
            "--days",
            "30",
            "--flags",
            "tickets,xp",
            "--limits",
            "ai_tokens_per_day=50000",
        ],
    ));
    let license = license.trim();
    let shown = stdout(&townes(
        dir.path(),
        &[
            "license",
            "show",
            license,
            "--public-key",
            &public,
            "--tenant",
            "acme",
            "--json",
        ],
    ));
    let claims: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["plan"], "pro");
    assert_eq!(claims["flags"], serde_json::json!(["tickets", "xp"]));
    assert_eq!(claims["limits"]["ai_tokens_per_day"], 50_000);

    let foreign = townes(
        dir.path(),
        &[
            "license",
            "show",
            license,
            "--public-key",
            &public,
            "--tenant",
            "globex",
        ],
    );
    assert!(!foreign.status.success());
    let why = String::from_utf8_lossy(&foreign.stderr);
    assert!(why.contains("belongs to tenant acme, not globex"), "{why}");
    let mut tampered = license.to_string();
    tampered.insert(
        10,
        if license.as_bytes()[10] == b'A' {
            'B'
        } else {
            'A'
        },
    );
    let refused = townes(
        dir.path(),
        &["license", "show", &tampered, "--public-key", &public],
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("signature does not match") || why.contains("not a TownesDev license key"),
        "{why}"
    );
}

#[test]
fn plans_print_as_json_and_load_from_a_file_the_operator_edits() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = stdout(&townes(dir.path(), &["plans"]));
    let plans = townes::runtime::Plans::from_json(&defaults).expect("the output loads back");
    assert_eq!(
        plans.get("base").stripe_price.as_deref(),
        Some("price_base")
    );

    let file = dir.path().join("plans.json");
    std::fs::write(
        &file,
        r#"{"free": {"cpu_ms": 25}, "base": {"stripe_price": "price_live_base", "guilds": 3}}"#,
    )
    .unwrap();
    let setting = format!("@{}", file.display());
    let edited = common::townes_command(dir.path())
        .args(["plans"])
        .env("TOWNES_PLANS", &setting)
        .output()
        .unwrap();
    let plans = townes::runtime::Plans::from_json(&stdout(&edited)).unwrap();
    assert_eq!(plans.get("free").limits.cpu_ms, 25);
    assert_eq!(plans.get("base").guilds, Some(3));

    std::fs::write(&file, r#"{"base": {}}"#).unwrap();
    let refused = common::townes_command(dir.path())
        .args(["plans"])
        .env("TOWNES_PLANS", &setting)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("must define a `free` plan"), "{said}");
}

/// `.env` in the working directory is read at start; a variable set in the
/// environment wins over it; a line dotenv cannot read stops the binary with
/// the line's number and name, never its value.
#[test]
fn dotenv_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let plans = |env: Option<&str>| {
        let mut command = common::townes_command(dir.path());
        command.current_dir(dir.path()).arg("plans");
        match env {
            Some(value) => command.env("TOWNES_PLANS", value),
            None => command.env_remove("TOWNES_PLANS"),
        };
        command.output().unwrap()
    };
    std::fs::write(
        dir.path().join(".env"),
        "# the operator's settings\nTOWNES_PLANS='{\"free\": {\"cpu_ms\": 77}}'\n",
    )
    .unwrap();
    let from_file = townes::runtime::Plans::from_json(&stdout(&plans(None))).unwrap();
    assert_eq!(from_file.get("free").limits.cpu_ms, 77);
    let from_env =
        townes::runtime::Plans::from_json(&stdout(&plans(Some(r#"{"free": {"cpu_ms": 5}}"#))))
            .unwrap();
    assert_eq!(
        from_env.get("free").limits.cpu_ms,
        5,
        "the environment wins"
    );

    std::fs::write(dir.path().join(".env"), "DISCORD_TOKEN=Bot tok-s3cret\n").unwrap();
    let refused = plans(None);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("line 1 (DISCORD_TOKEN)"), "{said}");
    assert!(said.contains("single quotes"), "{said}");
    assert!(!said.contains("tok-s3cret"), "{said}");
}

/// With `TOWNES_LOG_FORMAT=json` every log line is one JSON object, and a
/// line logged inside a feature invocation carries its guild and feature,
/// under the default filter too.
#[test]
fn json_logs_carry_the_invocation_span() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::townes_command(dir.path())
        .args([
            "feature",
            "run",
            &common::component_path("hostile"),
            "--command",
            "panic",
        ])
        .env("TOWNES_LOG_FORMAT", "json")
        .env_remove("TOWNES_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l["message"] == "feature invocation failed")
        .unwrap_or_else(|| panic!("no invocation line: {log}"));
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["span"]["name"], "invocation", "{failed}");
    assert_eq!(failed["span"]["guild"], 1000, "{failed}");
    assert_eq!(failed["span"]["feature"], "hostile", "{failed}");
}

/// An API request's log lines carry its request id and, once the caller is
/// known, the caller's tenant.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_of_an_api_request_carry_its_id_and_tenant() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let created: serde_json::Value = serde_json::from_str(&stdout(&townes(
        dir.path(),
        &["key", "create", "--owner", "42", "--json"],
    )))
    .unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    let tenant = created["tenant_id"].as_str().unwrap().to_string();
    let mut child = tokio::process::Command::from(common::townes_command(dir.path()))
        .arg("api")
        .env_remove("DISCORD_TOKEN")
        .env_remove("REDIS_URL")
        .env("TOWNES_LOG_FORMAT", "json")
        .env("TOWNES_LOG", "warn,townes::api=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let within = std::time::Duration::from_secs(60);
    let addr = tokio::time::timeout(within, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("dashboard API: http://") {
                return addr.to_string();
            }
        }
        panic!("townes api ended without announcing its address");
    })
    .await
    .expect("no address announced within 60 s");
    let me = reqwest::Client::new()
        .get(format!("http://{addr}/me"))
        .bearer_auth(&secret)
        .header("x-request-id", "check-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let served = tokio::time::timeout(within, async {
        while let Some(line) = log.next_line().await.unwrap() {
            let line: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if line["span"]["request_id"] == "check-1234" {
                return line;
            }
        }
        panic!("townes api ended before logging the request");
    })
    .await
    .expect("the request was not logged within 60 s");
    assert_eq!(served["span"]["name"], "request", "{served}");
    assert_eq!(served["span"]["tenant"], tenant.as_str(), "{served}");
    assert!(
        !served.to_string().contains(&secret),
        "the key never reaches the log: {served}"
    );
    child.start_kill().unwrap();
}

/// `townes check-config` with only `vars` (and the test's database and data
/// directory) set.
fn check_config(dir: &Path, vars: &[(&str, &str)]) -> Output {
    let mut command = common::townes_command(dir);
    command.current_dir(dir).arg("check-config");
    // Whatever the machine running the tests has set.
    for name in [
        "TOWNES_PLANS",
        "DISCORD_TOKEN",
        "DISCORD_API_BASE",
        "REDIS_URL",
        "DISCORD_CLIENT_ID",
        "DISCORD_CLIENT_SECRET",
        "TOWNES_OAUTH_REDIRECT_URI",
        "TOWNES_CORS_ORIGINS",
        "STRIPE_SECRET",
        "STRIPE_WEBHOOK_SECRET",
        "TOWNESDEV_LICENSE",
        "TOWNESDEV_LICENSE_PUBLIC_KEY",
        "LICENSE_SERVER_BASE",
        "TOWNES_LICENSE_SIGNING_KEY",
        "TOWNES_INTERACTIONS_ADDR",
        "TOWNES_LOG",
        "SENTRY_DSN",
        "TOWNES_EXPORT_MAX_BYTES",
        "TOWNES_EXPORT_LINK_HOURS",
    ] {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied()).output().unwrap()
}

#[test]
fn check_config_passes_a_good_configuration_and_names_each_problem_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&townes(dir.path(), &["migrate"]));
    let good = stdout(&check_config(dir.path(), &[]));
    assert!(good.contains("migrations applied, up to date"), "{good}");
    assert!(good.ends_with("configuration OK\n"), "{good}");

    let problem = |vars: &[(&str, &str)], expected: &str| {
        let out = check_config(dir.path(), vars);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(expected), "{expected}: {said}");
        assert!(said.contains("fix: "), "{said}");
        assert!(!said.contains("configuration OK"), "{said}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("1 problem in the configuration"),
            "{said}"
        );
    };
    problem(
        &[("TOWNES_PLANS", r#"{"free": {"cpu_ms": "lots"}}"#)],
        "PROBLEM  TOWNES_PLANS: TOWNES_PLANS is not valid plan JSON",
    );
    problem(
        &[("TOWNES_JOURNAL_RETENTION", "0s")],
        "PROBLEM  TOWNES_JOURNAL_RETENTION: 0: every journaled event is swept at once",
    );
    problem(
        &[("TOWNES_EXPORT_MAX_BYTES", "1000")],
        "PROBLEM  TOWNES_EXPORT_MAX_BYTES: 1000 bytes is too small for any bundle with a component",
    );
    problem(
        &[("DISCORD_CLIENT_ID", "123456789012345678")],
        "DISCORD_CLIENT_ID set but DISCORD_CLIENT_SECRET and TOWNES_OAUTH_REDIRECT_URI not: Discord login needs all three",
    );
    // Reported here rather than refused at start, so the fix is shown.
    problem(
        &[("SENTRY_DSN", "not-a-dsn")],
        "PROBLEM  SENTRY_DSN: not a Sentry DSN",
    );
    let key = townes::licensing::new_signing_key();
    let public = townes::licensing::encode_public_key(&key.verifying_key());
    let claims = townes::licensing::Claims {
        id: "lic_check".into(),
        tenant: "acme".into(),
        plan: "pro".into(),
        flags: Vec::new(),
        limits: Default::default(),
        issued_at: chrono::Utc::now(),
        expires_at: chrono::Utc::now() + chrono::TimeDelta::days(30),
    };
    let license = townes::licensing::issue(&claims, &key);
    problem(
        &[
            ("TOWNESDEV_LICENSE", &license),
            ("TOWNESDEV_LICENSE_PUBLIC_KEY", &public),
        ],
        "PROBLEM  TOWNESDEV_LICENSE: a licence needs LICENSE_SERVER_BASE and TOWNESDEV_LICENSE_PUBLIC_KEY beside it",
    );
    let licensed = stdout(&check_config(
        dir.path(),
        &[
            ("TOWNESDEV_LICENSE", &license),
            ("TOWNESDEV_LICENSE_PUBLIC_KEY", &public),
            ("LICENSE_SERVER_BASE", "https://api.example.com"),
        ],
    ));
    assert!(
        licensed.contains("licence lic_check of tenant acme, plan pro"),
        "{licensed}"
    );

    // A value clap refuses names the variable it came from.
    let refused = check_config(dir.path(), &[("TOWNES_API_ADDR", "nowhere")]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("comes from the environment variable TOWNES_API_ADDR"),
        "{said}"
    );
}

/// A failing command is reported to the Sentry project `SENTRY_DSN` names,
/// with the process's secrets and credential-shaped text scrubbed from it;
/// a DSN that does not parse stops the process with its fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_sentry_with_secrets_scrubbed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sent, mut received) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let sentry =
        axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let _ = sent.send((
                uri.path().to_string(),
                String::from_utf8_lossy(&body).into(),
            ));
            async { "{}" }
        });
    tokio::spawn(async move { axum::serve(listener, sentry).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.sentry-test-secret-token";
    // The error names the file, so the secrets reach the message unless scrubbed.
    let file = dir
        .path()
        .join(format!("{token}-tdk_leakedkey0123456789.db"));
    let mut command = common::townes_command(dir.path());
    command
        .arg("restore")
        .arg(&file)
        .env("SENTRY_DSN", format!("http://publickey@{addr}/42"))
        .env("DISCORD_TOKEN", token);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(token),
        "the person sees it"
    );
    let (path, envelope) =
        tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
            .await
            .expect("nothing reached Sentry within 10 s")
            .unwrap();
    assert_eq!(path, "/api/42/envelope/");
    assert!(envelope.contains("[redacted]"), "{envelope}");
    for secret in ["sentry-test-secret-token", "tdk_leakedkey"] {
        assert!(
            !envelope.contains(secret),
            "{secret} reached Sentry: {envelope}"
        );
    }

    let mut bad = common::townes_command(dir.path());
    bad.arg("plans").env("SENTRY_DSN", "not-a-dsn");
    let out = bad.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SENTRY_DSN is not a Sentry DSN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A SQLite database is copied while a townes process has it open, the copy
/// is refused over the open database, and restored into a fresh data
/// directory its data reads back. Postgres gets the commands to use.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_a_sqlite_database() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let live = tempfile::tempdir().unwrap();
    stdout(&townes(
        live.path(),
        &[
            "feature",
            "run",
            &common::component_path("hello"),
            "--command",
            "hello",
        ],
    ));
    let mut running = tokio::process::Command::from(common::townes_command(live.path()))
        .arg("api")
        .env_remove("DISCORD_TOKEN")
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("dashboard API: ") {
                return;
            }
        }
        panic!("townes api ended before it listened");
    })
    .await
    .expect("townes api did not start within 60 s");

    let copies = tempfile::tempdir().unwrap();
    let backup = copies.path().join("townes-backup.db");
    let backup = backup.to_str().unwrap();
    let made = stdout(&townes(live.path(), &["backup", backup]));
    assert!(made.contains("database copied to"), "{made}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    let again = townes(live.path(), &["backup", backup]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let in_use = townes(live.path(), &["restore", backup]);
    assert!(!in_use.status.success(), "restored under a running townes");
    let said = String::from_utf8_lossy(&in_use.stderr);
    assert!(said.contains("is in use"), "{said}");
    running.start_kill().unwrap();
    running.wait().await.unwrap();

    let fresh = tempfile::tempdir().unwrap();
    let restored = stdout(&townes(fresh.path(), &["restore", backup]));
    assert!(restored.contains("restored"), "{restored}");
    assert!(
        restored.contains("installed components are not in"),
        "the hello component stayed behind: {restored}"
    );
    let guilds: serde_json::Value =
        serde_json::from_str(&stdout(&townes(fresh.path(), &["guild", "list", "--json"]))).unwrap();
    assert_eq!(guilds[0]["id"], 1000, "{guilds}");
    assert_eq!(guilds[0]["name"], "Playground", "{guilds}");

    // Over the stopped original: the database it replaces is kept aside.
    let over = stdout(&townes(live.path(), &["restore", backup]));
    assert!(over.contains("is kept as"), "{over}");

    let not_a_backup = copies.path().join("notes.txt");
    std::fs::write(&not_a_backup, "not a database at all, just some text").unwrap();
    let refused = townes(fresh.path(), &["restore", not_a_backup.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("is not a backup townes can restore"),
        "{said}"
    );

    let postgres = common::townes_command(fresh.path())
        .args(["backup", backup])
        .env(
            "DATABASE_URL",
            "postgres://townes:pg-s3cret@127.0.0.1:1/townes",
        )
        .output()
        .unwrap();
    assert!(!postgres.status.success());
    let said = String::from_utf8_lossy(&postgres.stderr);
    assert!(said.contains("pg_dump --format=custom"), "{said}");
    assert!(!said.contains("pg-s3cret"), "{said}");
}

/// `townes seed` writes its demo data once: a second run finds everything in
/// place and leaves every table as it was (but `control_changes`, the change
/// feed other processes follow, which notes every upsert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_writes_demo_data_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed = || {
        let mut command = common::townes_command(dir.path());
        command.args([
            "seed",
            &common::component_path("hello"),
            &common::component_path("xp"),
        ]);
        stdout(&command.output().unwrap())
    };
    let first = seed();
    assert!(
        first.contains("seeded   guild 4000000100 \"Demo Guild\""),
        "{first}"
    );
    assert!(first.contains("seeded   xp "), "{first}");
    assert!(first.contains("seeded   14 days of usage"), "{first}");
    let db =
        sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}/townes.db", dir.path().display()))
            .await
            .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_sqlx%'
         AND name NOT LIKE 'sqlite%' AND name <> 'control_changes' ORDER BY name",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let counts = || async {
        let mut counts = Vec::new();
        for table in &tables {
            // Table names read from sqlite_master a line above.
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&db)
                    .await
                    .unwrap();
            counts.push((table.clone(), n));
        }
        counts
    };
    let before = counts().await;
    let usage: i64 = sqlx::query_scalar("SELECT SUM(events) FROM usage_counters")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(before.contains(&("guilds".to_string(), 2)), "{before:?}");
    assert!(before.contains(&("incidents".to_string(), 1)), "{before:?}");

    let second = seed();
    assert!(!second.contains("seeded "), "{second}");
    assert!(second.contains("present  xp "), "{second}");
    assert_eq!(counts().await, before);
    let usage_again: i64 = sqlx::query_scalar("SELECT SUM(events) FROM usage_counters")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(usage_again, usage);
}

/// Operators are made, listed and revoked from the command line only; the
/// token is printed once and audited as the CLI's act.
#[test]
fn operators_are_added_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let added: serde_json::Value = serde_json::from_str(&stdout(&townes(
        dir.path(),
        &["operator", "add", "Oscar", "--json"],
    )))
    .unwrap();
    let id = added["operator"]["id"].as_str().unwrap().to_string();
    let token = added["token"].as_str().unwrap();
    assert!(token.starts_with(&format!("tdo_{id}_")), "{added}");
    let listed = stdout(&townes(dir.path(), &["operator", "list"]));
    assert!(
        listed.contains(&id) && listed.contains("never used"),
        "{listed}"
    );
    assert!(!listed.contains(token), "the token is never shown again");
    stdout(&townes(dir.path(), &["operator", "revoke", &id]));
    let listed = stdout(&townes(dir.path(), &["operator", "list"]));
    assert!(listed.contains("revoked"), "{listed}");
    let again = townes(dir.path(), &["operator", "revoke", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no live operator"));
}
