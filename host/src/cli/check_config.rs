//! `townes check-config`: reads the configuration through the same flags and
//! variables as `townes serve` (whose settings include everything `townes
//! api` reads) and checks what parsing alone cannot: that the database
//! answers and which migrations it has, that the plans load, the shape of
//! secrets, settings that only work together, that Redis answers and the data
//! directory is writable. Every problem is printed with its fix; none is ever
//! printed with a secret's value.

use super::serve::ServeArgs;
use super::{DOTENV, Settings, runtime_config};
use std::path::Path;
use townes::error_reporting::SENTRY_DSN;
use townes::interactions::http::SignatureCheck;
use townes::licensing::{self, server::LicenseServer};
use townes::runtime::{BASE_PLAN, Plans};
use townes::store::{Backend, maintenance};

#[derive(clap::Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// What the checks found, in order.
#[derive(Default)]
struct Report {
    lines: Vec<Line>,
}

enum Line {
    Fine {
        setting: &'static str,
        what: String,
    },
    Problem {
        setting: &'static str,
        what: String,
        fix: String,
    },
}

impl Report {
    fn fine(&mut self, setting: &'static str, what: impl Into<String>) {
        self.lines.push(Line::Fine {
            setting,
            what: what.into(),
        });
    }

    fn problem(&mut self, setting: &'static str, what: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(Line::Problem {
            setting,
            what: what.into(),
            fix: fix.into(),
        });
    }

    fn problems(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l, Line::Problem { .. }))
            .count()
    }
}

pub async fn run(settings: &Settings, args: CheckConfigArgs) -> anyhow::Result<()> {
    let serve = &args.serve;
    let mut report = Report::default();
    if Path::new(DOTENV).is_file() {
        report.fine(
            DOTENV,
            "read from the working directory (variables set in the environment win over it)",
        );
    }
    database(settings, &mut report).await;
    data_dir(&settings.data_dir, &mut report);
    exports(settings, &mut report);
    let plans = plans(settings, &mut report);
    url_setting(&mut report, "TOWNES_PUBLIC_URL", &settings.public_url, true);
    redis(settings, &mut report).await;
    discord(serve, &mut report);
    oauth(serve, &mut report);
    cors(&serve.api.cors_origins, &mut report);
    billing(serve, plans.as_ref(), &mut report);
    license_client(serve, &mut report);
    license_server(serve, &mut report);
    journal(serve, &mut report);
    logging(&mut report);

    for line in &report.lines {
        match line {
            Line::Fine { setting, what } => println!("ok       {setting}: {what}"),
            Line::Problem { setting, what, fix } => {
                println!("PROBLEM  {setting}: {what}\n         fix: {fix}")
            }
        }
    }
    match report.problems() {
        0 => {
            println!("configuration OK");
            Ok(())
        }
        1 => anyhow::bail!(
            "1 problem in the configuration; fix it and run `townes check-config` again"
        ),
        n => anyhow::bail!(
            "{n} problems in the configuration; fix them and run `townes check-config` again"
        ),
    }
}

async fn database(settings: &Settings, report: &mut Report) {
    const SETTING: &str = "DATABASE_URL";
    let url = &settings.database_url;
    let sqlite = match maintenance::sqlite_file(url) {
        Ok(file) => file,
        Err(e) => {
            return report.problem(
                SETTING,
                e.to_string(),
                "set it to sqlite://PATH (a file, created on first start) or postgres://USER:PASSWORD@HOST:5432/DATABASE",
            );
        }
    };
    let shown = match &sqlite {
        Some(file) => format!("SQLite {}", file.display()),
        // The URL holds the password: the backend alone is named.
        None if url.trim().starts_with("postgres") => "Postgres".to_string(),
        None => "SQLite in memory (nothing is kept after a stop)".to_string(),
    };
    let migrations = match maintenance::migration_report(url).await {
        Ok(migrations) => migrations,
        Err(e) => {
            let fix = match sqlite {
                Some(_) => "check that the file is a SQLite database this user may read and write",
                None => {
                    "check that Postgres runs and that the URL's host, port, user, password and database are right"
                }
            };
            return report.problem(
                SETTING,
                format!("{shown} cannot be opened: {}", scrub(url, &e.to_string())),
                fix,
            );
        }
    };
    if let Some((why, fix)) = migrations.refusal() {
        return report.problem(SETTING, format!("{shown}: {why}"), fix);
    }
    if !migrations.exists {
        if let Some(dir) = sqlite.as_deref().and_then(Path::parent)
            && let Err(e) = writable(dir)
        {
            return report.problem(
                SETTING,
                format!("{shown} does not exist and cannot be created: {e}"),
                "point DATABASE_URL at a folder this user may write, or create it",
            );
        }
        return report.fine(
            SETTING,
            format!("{shown} does not exist yet: the first start creates and migrates it"),
        );
    }
    let answers = match migrations.backend {
        Backend::Sqlite => "",
        Backend::Postgres => " answers",
    };
    let state = match (migrations.applied, migrations.pending.len()) {
        (_, 0) => format!("{} migrations applied, up to date", migrations.applied),
        (0, pending) => format!(
            "no tables yet: the first start (or `townes migrate`) applies its {pending} migrations"
        ),
        (applied, pending) => format!(
            "{applied} migrations applied; {pending} newer ones are applied on the next start (or `townes migrate`): {}",
            migrations
                .pending
                .iter()
                .map(|(version, name)| format!("{version} {name}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    report.fine(SETTING, format!("{shown}{answers}, {state}"));
}

/// The smallest bundle limit that fits a bundle with a built-in component.
const MIN_EXPORT_BYTES: u64 = 1024 * 1024;

fn exports(settings: &Settings, report: &mut Report) {
    const SETTING: &str = "TOWNES_EXPORT_MAX_BYTES";
    if settings.export_max_bytes < MIN_EXPORT_BYTES {
        return report.problem(
            SETTING,
            format!(
                "{} bytes is too small for any bundle with a component",
                settings.export_max_bytes
            ),
            "set it to 1048576 (1 MiB) or more, or unset it for 256 MiB",
        );
    }
    report.fine(
        SETTING,
        format!(
            "bundles up to {} MiB; download links last {} h (TOWNES_EXPORT_LINK_HOURS)",
            settings.export_max_bytes / (1024 * 1024),
            settings.export_link_hours
        ),
    );
}

fn data_dir(dir: &Path, report: &mut Report) {
    const SETTING: &str = "TOWNES_DATA_DIR";
    if dir.exists() && !dir.is_dir() {
        return report.problem(
            SETTING,
            format!("{} is a file, not a folder", dir.display()),
            "point TOWNES_DATA_DIR at a folder (it is created when missing)",
        );
    }
    match writable(dir) {
        Ok(()) if dir.is_dir() => report.fine(SETTING, format!("{} is writable", dir.display())),
        Ok(()) => report.fine(
            SETTING,
            format!(
                "{} does not exist yet: the first start creates it",
                dir.display()
            ),
        ),
        Err(e) => report.problem(
            SETTING,
            format!("{} is not writable: {e}", dir.display()),
            "give this user write access to it, or point TOWNES_DATA_DIR elsewhere",
        ),
    }
}

/// Whether this user may create files in `dir`, or in the nearest folder
/// above it that exists (the platform creates the rest). Nothing is left
/// behind.
fn writable(dir: &Path) -> std::io::Result<()> {
    let existing = dir
        .ancestors()
        .find(|d| d.as_os_str().is_empty() || d.exists())
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(Path::new("."));
    let probe = existing.join(format!(".townes-check-config-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

fn plans(settings: &Settings, report: &mut Report) -> Option<Plans> {
    const SETTING: &str = "TOWNES_PLANS";
    match runtime_config(settings) {
        Ok(config) => {
            let names: Vec<&str> = config.plans.iter().map(|(name, _)| name).collect();
            let source = if settings.plans.is_some() {
                "set"
            } else {
                "not set: the defaults"
            };
            report.fine(SETTING, format!("{source}; plans {}", names.join(", ")));
            Some(config.plans)
        }
        Err(e) => {
            report.problem(
                SETTING,
                e.to_string(),
                r#"write JSON such as {"free": {"cpu_ms": 50}} or @path to a JSON file; `townes plans` (with TOWNES_PLANS unset) prints the defaults to start from"#,
            );
            None
        }
    }
}

/// Checks an http(s) URL. `shown`: whether its value may be printed (a URL
/// may carry credentials).
fn url_setting(report: &mut Report, setting: &'static str, value: &str, shown: bool) {
    match url::Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            let what = if shown {
                url.to_string()
            } else {
                format!("an {} URL", url.scheme())
            };
            report.fine(setting, what)
        }
        _ => report.problem(
            setting,
            if shown {
                format!("`{value}` is not an http(s) URL")
            } else {
                "it is not an http(s) URL".into()
            },
            format!("set {setting} to an address such as https://example.com"),
        ),
    }
}

async fn redis(settings: &Settings, report: &mut Report) {
    const SETTING: &str = "REDIS_URL";
    let Some(url) = settings
        .redis_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    else {
        return report.fine(
            SETTING,
            "not set: live events, command cooldowns and API rate limits stay in each process (enough for one `townes serve`)",
        );
    };
    // Every error already leaves the URL's password out.
    let answered = match townes::live::Live::with_redis(url).await {
        Ok(live) => live.ping().await,
        Err(e) => Err(format!("{e:#}")),
    };
    // The shared limits also need Redis to run their scripts (an ACL may forbid it).
    let answered = match answered {
        Ok(()) => townes::shared_limits::SharedLimits::with_redis(url)
            .await
            .map(drop)
            .map_err(|e| format!("{e:#}")),
        Err(e) => Err(e),
    };
    match answered {
        Ok(()) => report.fine(SETTING, "Redis answers and loads the shared limits' scripts"),
        Err(e) => report.problem(
            SETTING,
            e,
            "check that Redis runs, the URL's host, port and password, and that its user may run SCRIPT LOAD and EVALSHA; unset REDIS_URL to keep live events and limits in each process",
        ),
    }
}

fn discord(serve: &ServeArgs, report: &mut Report) {
    match serve.discord_token.as_deref() {
        None => report.fine(
            "DISCORD_TOKEN",
            "not set: `townes serve` runs the offline playground against the Discord simulator",
        ),
        Some(token) => {
            match token_shape(token) {
                Ok(()) => report.fine("DISCORD_TOKEN", "set, shaped like a bot token"),
                Err(why) => report.problem(
                    "DISCORD_TOKEN",
                    why,
                    "copy the token again from the developer portal (your application → Bot → Reset Token)",
                ),
            }
            if !serve.components.is_empty() {
                report.problem(
                    "components",
                    "components on the command line are for the offline playground, and DISCORD_TOKEN is set",
                    "install features with `townes feature install` and enable them per guild instead",
                );
            }
        }
    }
    if let Some(base) = &serve.discord_api_base {
        url_setting(report, "DISCORD_API_BASE", base, false);
    }
    for component in &serve.components {
        if !component.is_file() {
            report.problem(
                "components",
                format!("{} does not exist", component.display()),
                "build the features first (`cargo xtask build-guests`) or correct the path",
            );
        }
    }
    report.fine("TOWNES_SHARDS", serve.shards.to_string());
    match (&serve.interactions_addr, &serve.discord_public_key) {
        (Some(_), None) => report.problem(
            "TOWNES_INTERACTIONS_ADDR",
            "the interactions endpoint needs the application's public key, and DISCORD_PUBLIC_KEY is not set",
            "set DISCORD_PUBLIC_KEY (developer portal → General Information → Public Key), or unset TOWNES_INTERACTIONS_ADDR",
        ),
        (addr, Some(key)) => match SignatureCheck::from_hex(key) {
            Ok(_) if addr.is_some() => {
                report.fine("TOWNES_INTERACTIONS_ADDR", "set, with DISCORD_PUBLIC_KEY")
            }
            Ok(_) => report.fine(
                "DISCORD_PUBLIC_KEY",
                "set, but unused until TOWNES_INTERACTIONS_ADDR is",
            ),
            Err(why) => report.problem(
                "DISCORD_PUBLIC_KEY",
                why,
                "copy it again from the developer portal → General Information → Public Key",
            ),
        },
        (None, None) => {}
    }
    if let Err(e) = townes::discord::ExecutorConfig::from_env() {
        report.problem(
            "TOWNES_DISCORD_*",
            format!("{e:#}"),
            "set it to a whole number, or unset it for the default (docs/OPERATIONS.md#outbound-calls)",
        );
    }
}

/// A bot token's shape: three dot-separated base64url parts, the first the
/// bot's id. An optional `Bot ` prefix is accepted, as serenity accepts it.
/// The value never appears in the answer.
fn token_shape(token: &str) -> Result<(), String> {
    use base64::Engine as _;
    let token = token.strip_prefix("Bot ").unwrap_or(token);
    if token.trim() != token {
        return Err("it starts or ends with whitespace".into());
    }
    let parts: Vec<&str> = token.split('.').collect();
    let base64url = |part: &&str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(base64url) {
        return Err(
            "it does not look like a bot token (three parts of letters, digits, - and _, separated by dots)"
                .into(),
        );
    }
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]);
    match id {
        Ok(id) if !id.is_empty() && id.iter().all(u8::is_ascii_digit) => Ok(()),
        _ => Err("its first part is not the bot's id in base64, as every bot token's is".into()),
    }
}

fn oauth(serve: &ServeArgs, report: &mut Report) {
    let api = &serve.api;
    let trio = [
        ("DISCORD_CLIENT_ID", api.oauth_client_id.is_some()),
        ("DISCORD_CLIENT_SECRET", api.oauth_client_secret.is_some()),
        (
            "TOWNES_OAUTH_REDIRECT_URI",
            api.oauth_redirect_uri.is_some(),
        ),
    ];
    let (set, unset): (Vec<&(&str, bool)>, Vec<_>) = trio.iter().partition(|(_, set)| *set);
    let names = |list: &[&(&str, bool)]| {
        list.iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    if set.is_empty() {
        report.fine(
            "DISCORD_CLIENT_ID",
            "Discord login is off (none of DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET, TOWNES_OAUTH_REDIRECT_URI is set)",
        );
    } else if !unset.is_empty() {
        report.problem(
            set[0].0,
            format!(
                "{} set but {} not: Discord login needs all three",
                names(&set),
                names(&unset)
            ),
            format!(
                "set {} (developer portal → OAuth2), or unset {} to keep login off",
                names(&unset),
                names(&set)
            ),
        );
    } else {
        report.fine("DISCORD_CLIENT_ID", "Discord login is on");
    }
    if let Some(id) = &api.oauth_client_id
        && id.trim().parse::<u64>().is_err()
    {
        report.problem(
            "DISCORD_CLIENT_ID",
            format!("`{id}` is not an application id (a number)"),
            "copy the application id from the developer portal → OAuth2 → Client ID",
        );
    }
    if let Some(uri) = &api.oauth_redirect_uri {
        url_setting(report, "TOWNES_OAUTH_REDIRECT_URI", uri, true);
    }
    url_setting(report, "DISCORD_WEB_BASE", &api.discord_web_base, true);
}

/// Browser origins: scheme, host and port only, exactly as browsers send them
/// (a trailing slash or a path never matches, and the API drops such entries).
fn cors(origins: &[String], report: &mut Report) {
    for origin in origins {
        let origin = origin.trim();
        let exact = url::Url::parse(origin)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(|url| url.origin().ascii_serialization());
        match exact {
            Some(exact) if exact == origin => {}
            Some(exact) => report.problem(
                "TOWNES_CORS_ORIGINS",
                format!("`{origin}` is not an origin: browsers send `{exact}`"),
                format!("write `{exact}` (scheme, host and port, no path or trailing slash)"),
            ),
            None => report.problem(
                "TOWNES_CORS_ORIGINS",
                format!("`{origin}` is not an origin"),
                "write origins such as https://dashboard.example.com, comma-separated",
            ),
        }
    }
}

fn billing(serve: &ServeArgs, plans: Option<&Plans>, report: &mut Report) {
    let billing = &serve.billing;
    let secret = billing.stripe_secret.as_deref();
    let webhook = billing.stripe_webhook_secret.as_deref();
    match secret {
        None => report.fine(
            "STRIPE_SECRET",
            "not set: billing runs without Stripe (plans and trials work, checkout is off)",
        ),
        // A restricted key (rk_) works as well, with the rights it was given.
        Some(key) if key.starts_with("sk_") || key.starts_with("rk_") => {
            report.fine("STRIPE_SECRET", "set, shaped like a Stripe secret key")
        }
        Some(_) => report.problem(
            "STRIPE_SECRET",
            "it does not look like a Stripe secret key (sk_live_…, sk_test_…, or a restricted rk_…)",
            "copy the secret key from Stripe's dashboard → Developers → API keys",
        ),
    }
    match (secret, webhook) {
        (_, Some(w)) if !w.starts_with("whsec_") => report.problem(
            "STRIPE_WEBHOOK_SECRET",
            "it does not look like a webhook signing secret (whsec_…)",
            "copy the endpoint's signing secret from Stripe's dashboard → Developers → Webhooks",
        ),
        (Some(_), None) => report.problem(
            "STRIPE_WEBHOOK_SECRET",
            "STRIPE_SECRET is set but STRIPE_WEBHOOK_SECRET is not: Stripe's events are refused, so payments never change plans",
            "copy the endpoint's signing secret (whsec_…) from Stripe's dashboard → Developers → Webhooks",
        ),
        (None, Some(_)) => report.problem(
            "STRIPE_WEBHOOK_SECRET",
            "it is set but STRIPE_SECRET is not: without Stripe the webhook answers 503",
            "set STRIPE_SECRET too, or unset STRIPE_WEBHOOK_SECRET",
        ),
        _ => {}
    }
    if secret.is_some()
        && let Some(plans) = plans
        && plans.get(BASE_PLAN).stripe_price.is_none()
    {
        report.problem(
            "TOWNES_PLANS",
            format!("Stripe is on but the `{BASE_PLAN}` plan has no `stripe_price`: Checkout cannot sell it"),
            format!("set `{BASE_PLAN}.stripe_price` in TOWNES_PLANS to the Stripe price (price_…) that bills it"),
        );
    }
    url_setting(report, "STRIPE_API_BASE", &billing.stripe_api_base, true);
    url_setting(
        report,
        "TOWNES_BILLING_RETURN_URL",
        &billing.return_url,
        true,
    );
}

fn license_client(serve: &ServeArgs, report: &mut Report) {
    let config = &serve.license;
    let public_key = config.public_key.as_deref().map(|key| {
        licensing::decode_public_key(key).inspect_err(|why| {
            report.problem(
                "TOWNESDEV_LICENSE_PUBLIC_KEY",
                why.clone(),
                "set it to the public key that came with the licence (`townes license keygen` prints it)",
            )
        })
    });
    if let Some(base) = &config.server_base {
        url_setting(report, "LICENSE_SERVER_BASE", base, false);
    }
    let Some(license) = config.license.as_deref() else {
        return report.fine(
            "TOWNESDEV_LICENSE",
            "not set: no licence applies (each guild runs on its own plan)",
        );
    };
    let mut missing = Vec::new();
    if config.server_base.is_none() {
        missing.push("LICENSE_SERVER_BASE (the address of the platform that issued it)");
    }
    if public_key.is_none() {
        missing.push("TOWNESDEV_LICENSE_PUBLIC_KEY (the public key that came with it)");
    }
    if !missing.is_empty() {
        return report.problem(
            "TOWNESDEV_LICENSE",
            "a licence needs LICENSE_SERVER_BASE and TOWNESDEV_LICENSE_PUBLIC_KEY beside it, or the installation runs on the free plan",
            format!("set {}", missing.join(" and ")),
        );
    }
    let Some(Ok(issuer)) = public_key else {
        return;
    };
    match licensing::verify(license, &issuer, chrono::Utc::now(), None) {
        Ok(claims) => report.fine(
            "TOWNESDEV_LICENSE",
            format!(
                "licence {} of tenant {}, plan {}, valid until {}",
                claims.id, claims.tenant, claims.plan, claims.expires_at
            ),
        ),
        Err(why) => report.problem(
            "TOWNESDEV_LICENSE",
            why.to_string(),
            "ask the platform that issued it for a valid key",
        ),
    }
}

fn license_server(serve: &ServeArgs, report: &mut Report) {
    let config = &serve.api.licensing;
    if config.signing_key.is_none() {
        return;
    }
    if let Err(why) = LicenseServer::from_config(config) {
        return report.problem(
            "TOWNES_LICENSE_SIGNING_KEY",
            why,
            "point it at the file `townes license keygen` wrote, readable by this user",
        );
    }
    if config.refresh >= config.lease_ttl {
        report.problem(
            "TOWNES_LICENSE_REFRESH",
            format!(
                "installations renew every {} s but a lease lasts {} s: leases would expire before they are renewed",
                config.refresh.as_secs(),
                config.lease_ttl.as_secs()
            ),
            "make TOWNES_LICENSE_REFRESH shorter than TOWNES_LICENSE_LEASE_TTL (defaults: 1h and 3d)",
        );
    } else {
        report.fine(
            "TOWNES_LICENSE_SIGNING_KEY",
            "readable: /licenses/activate and /licenses/refresh answer",
        );
    }
}

fn journal(serve: &ServeArgs, report: &mut Report) {
    let journal = &serve.journal;
    if journal.keep.is_zero() {
        return report.problem(
            "TOWNES_JOURNAL_RETENTION",
            "0: every journaled event is swept at once, so /admin replays find nothing",
            "keep events a few days (the default is 7d)",
        );
    }
    report.fine(
        "TOWNES_JOURNAL_RETENTION",
        format!(
            "events delivered to features are kept {} s, at most {} per guild (TOWNES_JOURNAL_CAP), for /admin replays",
            journal.keep.as_secs(),
            journal.per_guild
        ),
    );
}

fn logging(report: &mut Report) {
    // `init_tracing` falls back to the default filter when this does not
    // parse, so a typo would otherwise go unnoticed.
    if let Ok(filter) = std::env::var("TOWNES_LOG")
        && let Err(e) = tracing_subscriber::EnvFilter::try_new(&filter)
    {
        report.problem(
            "TOWNES_LOG",
            format!("`{filter}` is not a log filter ({e}); the default is used instead"),
            "write a level (info) or target=level pairs (warn,townes=debug)",
        );
    }
    match std::env::var(SENTRY_DSN) {
        Ok(dsn) if !dsn.trim().is_empty() => match dsn.trim().parse::<sentry::types::Dsn>() {
            Ok(parsed) => report.fine(
                SENTRY_DSN,
                format!(
                    "errors are reported to {} (secrets scrubbed)",
                    parsed.host()
                ),
            ),
            // The DSN holds the project's key: never quoted.
            Err(e) => report.problem(
                SENTRY_DSN,
                format!("not a Sentry DSN ({e})"),
                "copy it from the Sentry project's Client Keys page (https://KEY@HOST/PROJECT), or unset it",
            ),
        },
        _ => {}
    }
}

/// `text` without the parts of `url` that may be secret (its password).
fn scrub(url: &str, text: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(password) if !password.is_empty() => text.replace(&password, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_judged_by_its_shape_and_never_quoted() {
        // The shape of a real token: base64 of the id, a timestamp, an HMAC.
        assert_eq!(
            token_shape("MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB"),
            Ok(())
        );
        assert_eq!(
            token_shape("Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghij"),
            Ok(())
        );
        for bad in [
            "not-a-real-token",
            "MTIz.only-two",
            "aGVsbG8.GabcDE.abcdefghij",
            " MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghij",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gab cDE.abcdefghij",
        ] {
            let why = token_shape(bad).unwrap_err();
            assert!(!why.contains(bad.trim()), "{why}");
        }
    }

    #[test]
    fn a_password_in_the_database_url_is_scrubbed_from_errors() {
        let url = "postgres://townes:s3cret-pw@db:5432/townes";
        assert_eq!(
            scrub(url, "auth failed for s3cret-pw"),
            "auth failed for ***"
        );
        assert_eq!(scrub("sqlite://x.db", "plain"), "plain");
    }
}
