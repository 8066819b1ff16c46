//! `cargo xtask fuzz-api`: throws a property-based API fuzzer
//! ([schemathesis](https://schemathesis.readthedocs.io)) at a running
//! `townes serve` and fails on any 5xx or any response the committed
//! `docs/API/openapi.yaml` does not describe.
//!
//! What it does, in a fresh temporary directory:
//! 1. builds the shipped features (`features/*`, wasm32-wasip2) and `townes`;
//! 2. starts `townes serve <features>` offline (the Discord simulator's
//!    "Playground" guild, owned by `ada`, with the features enabled there) on a
//!    free port, SQLite in the temporary directory unless `--database-url` says
//!    otherwise, rate limits raised so they do not hide results;
//! 3. waits for `/readyz` and the playground guild, creates an API key for the
//!    guild's owner with `townes key create`, and signs ada in through the
//!    simulator's OAuth2 consent (`sim_user`) for a session cookie;
//! 4. writes a `schemathesis.toml` that makes path and body parameters hit the
//!    real guild, tenant, features, versions and audit entries often (and
//!    random values the rest of the time);
//! 5. runs schemathesis twice with every check: with the API key on every
//!    operation, then with the session on the session-only ones (`/api/keys`);
//! 6. stops the server and fails if it did not stop cleanly or panicked.
//!
//! Schemathesis is installed (pinned) into a venv under `target/` when
//! missing. Reports (JUnit) and the server's log are left in
//! `target/fuzz-api/`.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Failure, Result, cargo, discover_guests, target_dir};

/// The schemathesis release the run is written against (v4's CLI and config).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Test cases per operation and phase unless `--max-examples` says otherwise.
const DEFAULT_EXAMPLES: u32 = 100;
/// Fixed so a run can be repeated; `--seed` picks another.
const DEFAULT_SEED: u64 = 20261124;
/// Requests per minute for the server's limits: high enough never to trigger.
const NO_RATE_LIMIT: &str = "1000000";

const USAGE: &str = "\
usage: cargo xtask fuzz-api [--max-examples N] [--seed N] [--release]
                            [--database-url URL] [-- <schemathesis run args>]

  --max-examples N    test cases per operation and phase (default 100)
  --seed N            schemathesis' random seed (default 20261124)
  --release           build and run townes in release mode
  --database-url URL  a throwaway database (e.g. an empty Postgres database);
                      default: SQLite in a temporary directory
  -- ARGS             passed on to both `schemathesis run` invocations";

struct Options {
    examples: u32,
    seed: u64,
    release: bool,
    database_url: Option<String>,
    extra: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        examples: DEFAULT_EXAMPLES,
        seed: DEFAULT_SEED,
        release: false,
        database_url: None,
        extra: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| Failure::new(format!("{name} needs a value\n\n{USAGE}")))
        };
        match arg.as_str() {
            "--max-examples" => {
                options.examples = value(arg)?.parse().map_err(|_| {
                    Failure::new(format!("--max-examples takes a number\n\n{USAGE}"))
                })?;
            }
            "--seed" => {
                options.seed = value(arg)?
                    .parse()
                    .map_err(|_| Failure::new(format!("--seed takes a number\n\n{USAGE}")))?;
            }
            "--release" => options.release = true,
            "--database-url" => options.database_url = Some(value(arg)?),
            "--" => {
                options.extra = args.cloned().collect();
                break;
            }
            other => {
                return Err(Failure::new(format!(
                    "unknown `fuzz-api` argument `{other}`\n\n{USAGE}"
                )));
            }
        }
    }
    Ok(options)
}

pub fn fuzz_api(root: &Path, args: &[String]) -> Result {
    let before_separator = args.iter().take_while(|a| *a != "--");
    if before_separator.clone().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse(args)?;
    let target = target_dir(root);
    let schemathesis = ensure_schemathesis(&target)?;
    let features = build_features(root, &target)?;
    let townes = build_townes(root, &target, options.release)?;

    let out_dir = target.join("fuzz-api");
    fs::create_dir_all(&out_dir).map_err(|e| io_failure(&out_dir, e))?;
    let work = TempDir::new()?;
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/townes.db", work.path.display()));
    let env = TownesEnv {
        binary: townes,
        database_url,
        data_dir: work.path.clone(),
    };
    let mut server = Server::start(&env, &features, &out_dir.join("server.log"))?;
    println!("townes serve is up at http://{}", server.addr);
    let outcome = fuzz(
        root,
        &options,
        &schemathesis,
        &env,
        &server.addr,
        &work.path,
        &out_dir,
    );
    let stopped = server.stop();
    outcome?;
    stopped?;
    println!(
        "fuzz-api: no failures (reports in {})",
        out_dir.strip_prefix(root).unwrap_or(&out_dir).display()
    );
    Ok(())
}

/// Everything between a running server and a stopped one.
fn fuzz(
    root: &Path,
    options: &Options,
    schemathesis: &Path,
    env: &TownesEnv,
    addr: &str,
    work: &Path,
    out_dir: &Path,
) -> Result {
    wait_ready(addr)?;
    let (guild, owner) = playground_guild(env)?;
    let key = create_key(env, owner)?;
    let bearer = format!("Bearer {key}");
    let facts = Facts::read(addr, &bearer, guild)?;
    let session = sign_in(addr, owner)?;
    let config = work.join("schemathesis.toml");
    fs::write(&config, config_toml(&facts)).map_err(|e| io_failure(&config, e))?;
    let spec = root.join(crate::openapi::OPENAPI_YAML);
    let url = format!("http://{addr}");

    println!(
        "fuzzing {} at {url}: {} examples per operation and phase, seed {}",
        crate::openapi::OPENAPI_YAML,
        options.examples,
        options.seed
    );
    let mut failed = Vec::new();
    // Pass 1: every operation with the API key. The session-only ones answer 403
    // (documented) here; pass 2 covers them.
    let header = format!("Authorization: {bearer}");
    let pass1 = ["-H", header.as_str()];
    if !run_schemathesis(
        schemathesis,
        &config,
        &spec,
        &url,
        options,
        &pass1,
        &out_dir.join("api-key"),
    )? {
        failed.push("with the API key");
    }
    // Pass 2: the session-only routes with ada's session. Logging out would end
    // the session mid-run, so it is left to host/tests/api.rs.
    let cookie = format!("Cookie: townes_session={session}");
    let pass2 = ["-H", cookie.as_str(), "--include-path-regex", "^/api/keys"];
    if !run_schemathesis(
        schemathesis,
        &config,
        &spec,
        &url,
        options,
        &pass2,
        &out_dir.join("session"),
    )? {
        failed.push("with a session");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "schemathesis found failures ({}); each is printed above with a curl command to reproduce it",
            failed.join(", ")
        )))
    }
}

/// One `schemathesis run`; true when it passed.
fn run_schemathesis(
    schemathesis: &Path,
    config: &Path,
    spec: &Path,
    url: &str,
    options: &Options,
    pass: &[&str],
    report_dir: &Path,
) -> Result<bool> {
    let mut command = Command::new(schemathesis);
    command
        .current_dir(config.parent().unwrap_or(Path::new(".")))
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(spec)
        // Every check runs: schemathesis enables them all by default. Saying
        // `--checks all` here would also override the per-operation
        // exceptions in the config file (command-line choices win there).
        .args(["--url", url])
        .args(["--max-examples", &options.examples.to_string()])
        .args(["--seed", &options.seed.to_string()])
        // The credentials are given (-H): generating random ones for the
        // other security scheme would make `ignored_auth` read a request
        // carrying a random session cookie *and* a valid key as "accepted
        // with invalid auth". ignored_auth still probes each operation
        // without credentials and with made-up ones.
        .args(["--generation-with-security-parameters", "false"])
        // The API refuses U+0000 in any text by design (Postgres cannot store
        // it): 422 for a body, 400 in a path or query, which the schema's
        // `type: string` cannot say. Left on, every generated NUL would be a
        // "schema-valid request rejected". host/tests/api.rs
        // (`nul_characters_and_overlong_ids_are_refused_as_client_errors`)
        // keeps that refusal tested on both databases.
        .args(["--generation-allow-x00", "false"])
        // No example database: a run depends on its seed alone (and leaves no
        // `.schemathesis/` folder behind).
        .args(["--generation-database", "none"])
        .args(["--report", "junit", "--report-dir"])
        .arg(report_dir)
        .args(pass)
        .args(&options.extra)
        .env("NO_COLOR", "1");
    let shown: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .map(|a| {
            if a.starts_with("Authorization: ") || a.starts_with("Cookie: ") {
                format!("{}: <redacted>", a.split(':').next().unwrap_or_default())
            } else {
                a
            }
        })
        .collect();
    eprintln!("$ schemathesis {}", shown.join(" "));
    let status = command
        .status()
        .map_err(|e| Failure::new(format!("cannot run {}: {e}", schemathesis.display())))?;
    Ok(status.success())
}

/// The values that make generated requests reach real data.
struct Facts {
    guild: u64,
    tenant: String,
    features: Vec<String>,
    versions: Vec<String>,
    audit_entries: Vec<String>,
    roles: Vec<String>,
    /// Granted before the run, so that revoking one can succeed.
    permissions: Vec<String>,
}

impl Facts {
    fn read(addr: &str, bearer: &str, guild: u64) -> Result<Facts> {
        let get = |path: &str| -> Result<serde_norway::Value> {
            let response = http(addr, "GET", path, &[("Authorization", bearer)], None)
                .map_err(|e| Failure::new(format!("GET {path}: {e}")))?;
            if response.status != 200 {
                return Err(Failure::new(format!(
                    "GET {path} answered {}: {}",
                    response.status, response.body
                )));
            }
            serde_norway::from_str(&response.body)
                .map_err(|e| Failure::new(format!("GET {path}: unreadable JSON: {e}")))
        };
        let field = |v: &serde_norway::Value, name: &str| -> String {
            match &v[name] {
                serde_norway::Value::String(s) => s.clone(),
                serde_norway::Value::Number(n) => n.to_string(),
                _ => String::new(),
            }
        };
        let list = |v: serde_norway::Value| match v {
            serde_norway::Value::Sequence(items) => items,
            _ => Vec::new(),
        };
        let me = get("/me")?;
        let tenant = field(&me["tenant"], "id");
        let catalogue = list(get("/api/marketplace/features")?);
        let features: Vec<String> = catalogue.iter().map(|f| field(f, "id")).collect();
        let mut versions: Vec<String> = catalogue
            .iter()
            .flat_map(|f| list(f["versions"].clone()))
            .map(|v| field(&v, "version"))
            .collect();
        versions.sort();
        versions.dedup();
        let roles: Vec<String> = list(get(&format!("/api/guild/{guild}/roles"))?)
            .iter()
            .map(|r| field(r, "id"))
            .collect();
        let mut permissions = Vec::new();
        for role in &roles {
            let body = format!(r#"{{"role_id":"{role}","command_group":"fuzz"}}"#);
            let path = format!("/api/guild/{guild}/permissions");
            let granted = http(
                addr,
                "POST",
                &path,
                &[
                    ("Authorization", bearer),
                    ("Content-Type", "application/json"),
                ],
                Some(&body),
            )
            .map_err(|e| Failure::new(format!("POST {path}: {e}")))?;
            if granted.status != 201 {
                return Err(Failure::new(format!("POST {path} {}", granted.summary())));
            }
            permissions.push(format!("{role}:fuzz"));
        }
        // Read after the grants, which are audited.
        let audit_entries = list(get(&format!("/api/guild/{guild}/audit-logs"))?)
            .iter()
            .map(|e| field(e, "id"))
            .collect();
        if tenant.is_empty() || features.is_empty() {
            return Err(Failure::new(format!(
                "the playground should have a tenant and features (tenant {tenant:?}, features {features:?})"
            )));
        }
        Ok(Facts {
            guild,
            tenant,
            features,
            versions,
            audit_entries,
            roles,
            permissions,
        })
    }
}

/// The schemathesis configuration: where generated values come from, and the
/// few places a check is relaxed, each with its reason.
fn config_toml(facts: &Facts) -> String {
    let strings = |values: &[String]| {
        let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    // Audit entry ids are integers in the schema.
    let numbers = |values: &[String]| format!("[{}]", values.join(", "));
    let one = |v: &str| strings(&[v.to_string()]);
    let entries = if facts.audit_entries.is_empty() {
        // A dictionary needs an entry; an id that does not exist still exercises 404.
        vec!["1".to_string()]
    } else {
        facts.audit_entries.clone()
    };
    format!(
        r#"# Written by `cargo xtask fuzz-api` for one run against the playground.

# Real ids, so that generated requests reach the handlers behind the guild
# check often; the rest of the time schemathesis generates values itself.
[dictionaries.guilds]
values = {guilds}
[dictionaries.tenants]
values = {tenants}
[dictionaries.features]
values = {features}
[dictionaries.versions]
values = {versions}
[dictionaries.audit_entries]
values = {entries}
[dictionaries.roles]
values = {roles}
[dictionaries.permissions]
values = {permissions}

[parameters]
"path.guild_id" = {{ dictionary = "guilds", probability = 0.8 }}
"path.tenant_id" = {{ dictionary = "tenants", probability = 0.8 }}
"path.feature_id" = {{ dictionary = "features", probability = 0.7 }}
"path.entry_id" = {{ dictionary = "audit_entries", probability = 0.7 }}
"path.permission_id" = {{ dictionary = "permissions", probability = 0.5 }}
"query.version" = {{ dictionary = "versions", probability = 0.5 }}
"body.version" = {{ dictionary = "versions", probability = 0.5 }}
"body.tenantId" = {{ dictionary = "tenants", probability = 0.8 }}
"body.guildId" = {{ dictionary = "guilds", probability = 0.5 }}
"body.role_id" = {{ dictionary = "roles", probability = 0.5 }}
"body.role_ceiling" = {{ dictionary = "roles", probability = 0.5 }}

# /api/ws is a WebSocket handshake. Schemathesis speaks plain HTTP only, so
# no request it makes can be accepted: without `Upgrade: websocket` the
# documented answer is 400 (host/tests/live.rs covers the socket itself).
[[operations]]
include-path = "/api/ws"
checks.positive_data_acceptance.enabled = false

# Which capabilities may be approved depends on the feature: it may only be
# granted what its manifest requests, and must be granted what it requires
# (GET /api/marketplace/features/{{feature_id}} lists both). The schema can only
# say which capability names exist, so schema-valid approvals can be refused
# with the documented 422 naming each capability.
[[operations]]
include-path = [
    "/api/guild/{{guild_id}}/features/{{feature_id}}/install",
    "/api/guild/{{guild_id}}/features/{{feature_id}}/enable",
    "/api/guild/{{guild_id}}/features/{{feature_id}}/upgrade",
    "/assets/{{guild_id}}/features/{{feature_id}}/enable",
]
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

# `from` must not be after `to`, and at most 366 days apart: a rule between two
# parameters, which OpenAPI cannot state, so schema-valid pairs can break it.
# The refusal is the documented 422.
[[operations]]
include-path = "/usage/{{guild_id}}/daily"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

# A feature's configuration is checked against that feature's own JSON
# Schema (GET /api/marketplace/features/{{feature_id}}), which a static
# document cannot hold: any object is schema-valid, and most are refused
# with the documented 422 naming each bad value.
[[operations]]
include-path = "/api/guild/{{guild_id}}/features/{{feature_id}}/config"
include-method = "PUT"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"#,
        guilds = one(&facts.guild.to_string()),
        tenants = one(&facts.tenant),
        features = strings(&facts.features),
        versions = strings(&facts.versions),
        entries = numbers(&entries),
        roles = strings(&facts.roles),
        permissions = strings(&facts.permissions),
    )
}

/// The schemathesis executable in `target/schemathesis-venv`, installed there
/// (pinned) when missing.
fn ensure_schemathesis(target: &Path) -> Result<PathBuf> {
    let venv = target.join("schemathesis-venv");
    let bin = venv.join("bin").join("schemathesis");
    let wanted = SCHEMATHESIS.trim_start_matches("schemathesis==");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(wanted));
    if installed {
        return Ok(bin);
    }
    if !venv.join("bin").join("python").exists() {
        eprintln!("$ python3 -m venv {}", venv.display());
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return Err(Failure::new(format!(
                "`python3 -m venv {}` failed: fuzz-api needs Python 3.10+ with venv (Debian: apt-get install python3-venv)",
                venv.display()
            )));
        }
    }
    eprintln!(
        "$ {}/bin/pip install --quiet {SCHEMATHESIS}",
        venv.display()
    );
    let pip = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", SCHEMATHESIS])
        .status()
        .is_ok_and(|s| s.success());
    if !pip || !bin.exists() {
        return Err(Failure::new(format!(
            "could not install {SCHEMATHESIS} into {}",
            venv.display()
        )));
    }
    Ok(bin)
}

/// Builds the shipped features and returns their components.
fn build_features(root: &Path, target: &Path) -> Result<Vec<PathBuf>> {
    crate::ensure_wasm_target()?;
    let features_dir = root.join("features");
    let features: Vec<_> = discover_guests(root)?
        .into_iter()
        .filter(|g| g.dir.starts_with(&features_dir))
        .collect();
    let mut args = vec![
        "build".to_string(),
        "--release".into(),
        "--target".into(),
        crate::WASM_TARGET.into(),
    ];
    for f in &features {
        args.push("-p".into());
        args.push(f.package.clone());
    }
    cargo(root, &args)?;
    let out = target.join(crate::WASM_TARGET).join("release");
    Ok(features
        .iter()
        .map(|f| out.join(format!("{}.wasm", f.lib_name)))
        .collect())
}

fn build_townes(root: &Path, target: &Path, release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "-p", "townes"];
    if release {
        args.push("--release");
    }
    cargo(root, &args)?;
    let profile = if release { "release" } else { "debug" };
    Ok(target
        .join(profile)
        .join(format!("townes{}", env::consts::EXE_SUFFIX)))
}

/// How to run `townes` against the run's database.
struct TownesEnv {
    binary: PathBuf,
    database_url: String,
    data_dir: PathBuf,
}

impl TownesEnv {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("DATABASE_URL", &self.database_url)
            .env("TOWNES_DATA_DIR", &self.data_dir)
            .env("TOWNES_API_ADDR", "127.0.0.1:0")
            .env("TOWNES_RATE_LIMIT_IP", NO_RATE_LIMIT)
            .env("TOWNES_RATE_LIMIT_KEY", NO_RATE_LIMIT)
            .env("TOWNES_COOKIE_SECURE", "false")
            // Offline and self-contained, whatever the caller's shell has set.
            .env_remove("DISCORD_TOKEN")
            .env_remove("DISCORD_API_BASE")
            .env_remove("DISCORD_CLIENT_ID")
            .env_remove("DISCORD_CLIENT_SECRET")
            .env_remove("REDIS_URL")
            .env_remove("TOWNES_PLANS")
            .stdin(Stdio::null());
        command
    }

    /// `townes <args>`'s standard output; a failure carries its standard error.
    fn output(&self, args: &[&str]) -> Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|e| Failure::new(format!("cannot run townes: {e}")))?;
        if !output.status.success() {
            return Err(Failure::new(format!(
                "`townes {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// `townes serve`, stopped (SIGINT, then killed) on drop.
struct Server {
    child: Option<Child>,
    addr: String,
    log: PathBuf,
}

impl Server {
    fn start(env: &TownesEnv, features: &[PathBuf], log: &Path) -> Result<Server> {
        let log_file = fs::File::create(log).map_err(|e| io_failure(log, e))?;
        let stderr = log_file.try_clone().map_err(|e| io_failure(log, e))?;
        let mut child = env
            .command()
            .arg("serve")
            .args(features)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start townes serve: {e}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Copy the server's output to the log, and pass on where the API listens.
        std::thread::spawn(move || {
            let mut log_file = log_file;
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = writeln!(log_file, "{line}");
                if let Some(addr) = line.strip_prefix("dashboard API: http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(200)) {
                server.addr = addr;
                return Ok(server);
            }
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Failure::new(format!(
                    "townes serve exited ({status}) before starting the API; see {}",
                    server.log.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(Failure::new(format!(
                    "townes serve did not start the API within 120 s; see {}",
                    server.log.display()
                )));
            }
        }
    }

    /// Stops the server; fails if it does not stop cleanly or logged a panic.
    fn stop(&mut self) -> Result {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = interrupt_and_wait(&mut child);
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        if log.contains("panicked at") {
            return Err(Failure::new(format!(
                "townes serve panicked during the run; see {}",
                self.log.display()
            )));
        }
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(Failure::new(format!(
                "townes serve did not stop cleanly ({status}); see {}",
                self.log.display()
            ))),
            None => Err(Failure::new(format!(
                "townes serve did not stop within 30 s of SIGINT and was killed; see {}",
                self.log.display()
            ))),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            interrupt_and_wait(&mut child);
        }
    }
}

/// SIGINT (Ctrl-C, a clean stop), then up to 30 s; killed after that (`None`).
fn interrupt_and_wait(child: &mut Child) -> Option<std::process::ExitStatus> {
    #[cfg(unix)]
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    #[cfg(not(unix))]
    let _ = child.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn wait_ready(addr: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http(addr, "GET", "/readyz", &[], None) {
            Ok(r) if r.status == 200 => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(Failure::new(format!(
                    "http://{addr}/readyz did not answer 200 within 60 s"
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The playground guild's id and its owner (ada), from `townes guild list`.
fn playground_guild(env: &TownesEnv) -> Result<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = env.output(&["guild", "list", "--json"])?;
        let guilds: serde_norway::Value = serde_norway::from_str(&listed)
            .map_err(|e| Failure::new(format!("`townes guild list --json`: {e}")))?;
        let found = guilds.as_sequence().and_then(|guilds| {
            guilds
                .iter()
                .find(|g| g["name"].as_str() == Some("Playground"))
                .and_then(|g| Some((g["id"].as_u64()?, g["owner_id"].as_u64()?)))
        });
        if let Some(found) = found {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "no \"Playground\" guild in the database within 60 s: {listed}"
            )));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn create_key(env: &TownesEnv, owner: u64) -> Result<String> {
    let owner = owner.to_string();
    let created = env.output(&[
        "key", "create", "--owner", &owner, "--name", "fuzz-api", "--json",
    ])?;
    let created: serde_norway::Value = serde_norway::from_str(&created)
        .map_err(|e| Failure::new(format!("`townes key create --json`: {e}")))?;
    created["secret"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::new("`townes key create --json` printed no secret"))
}

/// Signs `user` in through the simulator's OAuth2 consent and returns the
/// session token: the login redirect, the consent (`sim_user`), the callback.
fn sign_in(addr: &str, user: u64) -> Result<String> {
    let fail = |step: &str, detail: String| Failure::new(format!("signing in: {step}: {detail}"));
    let login = http(addr, "GET", "/auth/discord/login", &[], None)
        .map_err(|e| fail("GET /auth/discord/login", e.to_string()))?;
    let authorize = login
        .header("location")
        .filter(|_| login.status == 303)
        .ok_or_else(|| fail("GET /auth/discord/login", login.summary()))?;
    let state = login
        .cookie("townes_oauth_state")
        .ok_or_else(|| fail("GET /auth/discord/login", "no state cookie".into()))?;
    let (sim_addr, path) = split_url(&format!("{authorize}&sim_user={user}"))
        .ok_or_else(|| fail("the consent URL", authorize.to_string()))?;
    let consent = http(&sim_addr, "GET", &path, &[], None)
        .map_err(|e| fail("the consent page", e.to_string()))?;
    let code = consent
        .header("location")
        .and_then(|to| query_value(to, "code"))
        .ok_or_else(|| fail("the consent page", consent.summary()))?;
    let body = format!(r#"{{"code":"{code}","state":"{state}"}}"#);
    let cookie = format!("townes_oauth_state={state}");
    let callback = http(
        addr,
        "POST",
        "/auth/discord/callback",
        &[("Content-Type", "application/json"), ("Cookie", &cookie)],
        Some(&body),
    )
    .map_err(|e| fail("POST /auth/discord/callback", e.to_string()))?;
    callback
        .cookie("townes_session")
        .filter(|_| callback.status == 200)
        .ok_or_else(|| fail("POST /auth/discord/callback", callback.summary()))
}

/// `http://host:port/path?query` → (`host:port`, `/path?query`).
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    Some((host.to_string(), path.to_string()))
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A cookie's value from the `Set-Cookie` headers.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| v.to_string())
    }

    fn summary(&self) -> String {
        format!("answered {}: {}", self.status, self.body.trim())
    }
}

/// A minimal HTTP/1.0 client for loopback calls (one request per connection,
/// the body read to the end): enough for the set-up steps, no dependency.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

/// A directory removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = env::temp_dir().join(format!(
            "townes-fuzz-api-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        ));
        fs::create_dir_all(&path).map_err(|e| io_failure(&path, e))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_have_defaults_and_pass_the_rest_on() {
        let args: Vec<String> = ["--max-examples", "7", "--release", "--", "--workers", "2"]
            .map(String::from)
            .into();
        let options = parse(&args).ok().expect("parses");
        assert_eq!(options.examples, 7);
        assert_eq!(options.seed, DEFAULT_SEED);
        assert!(options.release);
        assert_eq!(options.extra, ["--workers", "2"]);
        assert!(parse(&["--nope".to_string()]).is_err());
    }

    #[test]
    fn urls_and_cookies_are_read() {
        assert_eq!(
            split_url("http://127.0.0.1:9/oauth2/authorize?a=1&state=s"),
            Some(("127.0.0.1:9".into(), "/oauth2/authorize?a=1&state=s".into()))
        );
        assert_eq!(
            query_value("http://x/cb?code=abc&state=s", "code").as_deref(),
            Some("abc")
        );
        let response = HttpResponse {
            status: 200,
            headers: vec![
                (
                    "Set-Cookie".into(),
                    "townes_oauth_state=; Path=/auth".into(),
                ),
                (
                    "set-cookie".into(),
                    "townes_session=t0k; Path=/; HttpOnly".into(),
                ),
            ],
            body: String::new(),
        };
        assert_eq!(response.cookie("townes_session").as_deref(), Some("t0k"));
        assert_eq!(response.cookie("townes_oauth_state"), None);
    }

    #[test]
    fn the_config_names_every_real_value() {
        let facts = Facts {
            guild: 42,
            tenant: "t".into(),
            features: vec!["hello".into(), "xp".into()],
            versions: vec!["0.1.0".into()],
            audit_entries: vec!["3".into(), "9".into()],
            roles: vec!["7".into()],
            permissions: vec!["7:fuzz".into()],
        };
        let toml = config_toml(&facts);
        for expected in [
            "values = [\"42\"]",
            "values = [\"hello\", \"xp\"]",
            "values = [3, 9]",
            "include-path = \"/usage/{guild_id}/daily\"",
            "\"path.guild_id\" = { dictionary = \"guilds\", probability = 0.8 }",
        ] {
            assert!(toml.contains(expected), "{expected} in:\n{toml}");
        }
    }
}
