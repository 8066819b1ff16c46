//! The `townes` command line: 12-factor configuration (environment and flags),
//! human-readable output by default and `--json` for scripts.

mod api;
mod backup;
mod check_config;
mod demo;
mod dev;
mod export;
mod feature;
mod feature_run;
mod gateway;
mod guild;
mod key;
mod license;
mod offboard;
mod operator;
mod playground;
mod seed;
mod serve;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use townes::discord::{LocalDiscord, LocalGuild};
use townes::live::Live;
use townes::runtime::{Outcome, Plans, Runtime, RuntimeConfig};
use townes::shared_limits::SharedLimits;
use townes::store::{Guild, Store};

#[derive(Parser)]
#[command(name = "townes", version, about = "The TownesDev Bot Platform host")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object per line, with the fields of the spans it was logged in:
    /// `request_id`, `tenant`, `guild`, `feature`) for log collectors.
    #[arg(
        long,
        env = "TOWNES_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the platform keeps its state.
#[derive(clap::Args, Clone)]
pub struct Settings {
    /// Database: a SQLite file path or URL, or a postgres:// URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://.townes/townes.db",
        global = true
    )]
    pub database_url: String,
    /// Components and their compiled artifacts are cached here.
    #[arg(
        long,
        env = "TOWNES_DATA_DIR",
        default_value = ".townes",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The plans, as JSON (e.g. '{"free": {"memory_mib": 16, "cpu_ms": 50}}') or
    /// `@path` to a JSON file: limits, Stripe price, features, AI and guild caps.
    #[arg(long, env = "TOWNES_PLANS", global = true)]
    pub plans: Option<String>,
    /// Redis (redis://…), to fan live events out to every process and share
    /// command cooldowns and the API's rate limits among them (hosted mode);
    /// without it each process keeps its own.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// Where the dashboard API is reached from outside (behind a proxy, its
    /// public https address): links to features' files start with it.
    #[arg(
        long,
        env = "TOWNES_PUBLIC_URL",
        default_value = townes::runtime::DEFAULT_PUBLIC_URL,
        global = true
    )]
    pub public_url: String,
    /// The largest export bundle written or imported, in bytes.
    #[arg(
        long,
        env = "TOWNES_EXPORT_MAX_BYTES",
        default_value_t = townes::export::DEFAULT_MAX_BYTES,
        global = true
    )]
    pub export_max_bytes: u64,
    /// How long an export's download link works, in hours (the bundle is
    /// deleted then).
    #[arg(
        long,
        env = "TOWNES_EXPORT_LINK_HOURS",
        default_value_t = 24,
        value_parser = clap::value_parser!(u64).range(1..=720),
        global = true
    )]
    pub export_link_hours: u64,
    /// The AI endpoint, key, default model and bounds (`TOWNES_AI_*`).
    #[command(flatten)]
    pub ai: townes::ai::AiConfig,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the platform until Ctrl-C (offline playground when no DISCORD_TOKEN is set).
    Serve(Box<serve::ServeArgs>),
    /// Run only shards, relaying Discord's events into Redis for `townes
    /// worker` processes (several processes on one Postgres and Redis).
    Gateway(Box<gateway::GatewayArgs>),
    /// Handle the events `townes gateway` relays, scheduled jobs and periodic
    /// work (several processes on one Postgres and Redis).
    Worker(Box<worker::WorkerArgs>),
    /// Apply database migrations (they also run on every start).
    Migrate,
    /// The marketplace: install, enable, approve, configure, upgrade features.
    Feature {
        #[command(subcommand)]
        command: feature::FeatureCommand,
    },
    /// The guilds the platform knows.
    Guild {
        #[command(subcommand)]
        command: guild::GuildCommand,
    },
    /// Dashboard API keys: create, list and revoke them without a browser.
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Self-hosting licences: the issuer's key pair, issuing, revoking and
    /// checking them, and an installation's lease.
    License {
        #[command(subcommand)]
        command: license::LicenseCommand,
    },
    /// The platform's operators, who use the /admin routes: add (prints a
    /// token once), list, revoke.
    Operator {
        #[command(subcommand)]
        command: operator::OperatorCommand,
    },
    /// Install the features in a folder into a local guild and show them
    /// reacting to scripted members, with every effect printed.
    Demo(demo::DemoArgs),
    /// Act as a user in the offline playground: chat, run commands, click buttons,
    /// and watch the features answer.
    Dev(dev::DevArgs),
    /// Run the dashboard API alone (`serve` also starts it).
    Api(Box<api::ApiArgs>),
    /// Check every setting `serve` and `api` read (environment, `.env`, flags):
    /// each problem with its fix; fails when there is one.
    CheckConfig(Box<check_config::CheckConfigArgs>),
    /// Copy the SQLite database into a new file, consistent even while the
    /// platform runs (for Postgres: the `pg_dump` command to use).
    Backup {
        /// The copy to write; an existing file is never overwritten.
        file: PathBuf,
    },
    /// Put a backup made with `townes backup` in place of the SQLite database,
    /// once checked; refused while a running townes has the database open
    /// (for Postgres: the `pg_restore` command to use).
    Restore {
        /// The backup to restore.
        file: PathBuf,
    },
    /// Leave the hosted platform: move a tenant to self-hosting, remove the
    /// bot, follow the non-payment flows; retention and purge.
    Offboard {
        #[command(flatten)]
        config: townes::offboarding::OffboardingConfig,
        #[command(subcommand)]
        command: offboard::OffboardCommand,
    },
    /// Erase what the features keep about one member, in one guild or in all.
    ForgetUser {
        /// The member's Discord user id.
        #[arg(long)]
        user: u64,
        /// Only this guild (default: every guild).
        #[arg(long)]
        guild: Option<u64>,
    },
    /// Write demo data (a tenant, two guilds, settings, usage, an incident, and
    /// the given features enabled); running it again changes nothing.
    Seed(seed::SeedArgs),
    /// Write an encrypted bundle of a tenant's data (or one guild's) to a
    /// file, to import into another installation (`townes import`).
    Export(export::ExportArgs),
    /// Restore a bundle made by `townes export` or the API into this
    /// installation's database: all of it, or nothing.
    Import(export::ImportArgs),
    /// Print the plans in effect (TOWNES_PLANS, or the defaults) as JSON: the
    /// file to start from when changing them.
    Plans,
    /// Print the API's OpenAPI document (YAML) with the routes the given
    /// components serve, as committed in docs/API/openapi.yaml (with the
    /// built-in features: `cargo xtask openapi`).
    Openapi {
        /// Feature components (`.wasm`) whose routes to list.
        components: Vec<std::path::PathBuf>,
    },
}

/// The command line, or exits with clap's message. Clap names the flag of a
/// value it refuses even when the value came from the environment (or
/// `.env`): the variable to fix is added.
pub fn parse() -> Cli {
    use clap::error::{ContextKind, ContextValue};
    let error = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(error) => error,
    };
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let variable = text(ContextKind::InvalidArg)
        .zip(text(ContextKind::InvalidValue))
        .and_then(|(flag, value)| {
            let variable = env_of(&<Cli as clap::CommandFactory>::command(), flag)?;
            let set = std::env::var(&variable).ok()?;
            set.contains(value).then_some(variable)
        });
    let _ = error.print();
    if let Some(variable) = variable {
        eprintln!(
            "note: that value comes from the environment variable {variable} (or {DOTENV}); fix it, or unset it for the default"
        );
    }
    std::process::exit(error.exit_code())
}

/// The environment variable behind the argument clap shows as `shown`
/// (`--api-addr <ADDR>`), in `command` or its subcommands.
fn env_of(command: &clap::Command, shown: &str) -> Option<String> {
    let long = shown.strip_prefix("--")?.split([' ', '=']).next()?;
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|c| env_of(c, shown)))
}

/// How log lines are written (`TOWNES_LOG_FORMAT`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Reads `.env` from the working directory into the environment, when there
/// is one, before anything reads the environment. A variable already set
/// keeps its value: the real environment (and flags) win over the file. Only
/// this directory: a `.env` in a parent folder belongs to something else.
pub fn load_dotenv() -> anyhow::Result<()> {
    match dotenvy::from_path(DOTENV) {
        Ok(()) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        // The line itself is never shown: it may hold a secret.
        Err(dotenvy::Error::LineParse(text, _)) => {
            let line = std::fs::read_to_string(DOTENV).ok().and_then(|file| {
                let (n, line) = file.lines().enumerate().find(|(_, l)| l.contains(&text))?;
                let name = line.split_once('=').map_or("", |(name, _)| name.trim());
                Some(format!("line {} ({name})", n + 1))
            });
            anyhow::bail!(
                "{DOTENV} cannot be read: {} is not NAME=value as dotenv reads it; put a value holding spaces, quotes, # or $ in single quotes (TOWNES_PLANS='{{\"free\": {{}}}}'), or remove the file",
                line.as_deref().unwrap_or("a line")
            )
        }
        Err(e) => anyhow::bail!("{DOTENV} cannot be read ({e}); fix its permissions, or remove it"),
    }
}

/// Whether the command is `check-config`, which reports bad settings
/// instead of stopping at the first.
pub fn checks_config(cli: &Cli) -> bool {
    matches!(cli.command, Command::CheckConfig(_))
}

/// The file [`load_dotenv`] reads, in the working directory.
pub const DOTENV: &str = ".env";

/// Installs the log subscriber: lines on stderr, and, when `sentry` is on,
/// error lines as Sentry events and warnings as their breadcrumbs.
pub fn init_tracing(verbose: u8, format: LogFormat, sentry: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = match verbose {
        // serenity warns about routine gateway events (a close frame racing a
        // dispatch on shutdown); its errors still show.
        // A licence's standing changes rarely and matters: always said.
        0 => "warn,serenity=error,townes::licensing=info",
        1 => "info,townes=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOWNES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: in a file or a container's
    // log they are escape codes.
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        // `span` is the innermost span, `spans` every one from the outermost:
        // a feature's line inside an API request carries both the request's
        // fields and the invocation's.
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(sentry.then(sentry::integrations::tracing::layer))
        .init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let store = open_store(&cli.settings).await?;
            store.migrate().await?;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Feature { command } => feature::run(&cli.settings, command).await,
        Command::Guild { command } => guild::run(&cli.settings, command).await,
        Command::Key { command } => key::run(&cli.settings, command).await,
        Command::License { command } => license::run(&cli.settings, command).await,
        Command::Operator { command } => operator::run(&cli.settings, command).await,
        Command::Demo(args) => demo::run(&cli.settings, args).await,
        Command::Serve(args) => serve::run(&cli.settings, *args).await,
        Command::Dev(args) => dev::run(&cli.settings, args).await,
        Command::Api(args) => api::run(&cli.settings, *args).await,
        Command::Gateway(args) => gateway::run(&cli.settings, *args).await,
        Command::Worker(args) => worker::run(&cli.settings, *args).await,
        Command::CheckConfig(args) => check_config::run(&cli.settings, *args).await,
        Command::Backup { file } => backup::backup(&cli.settings, &file).await,
        Command::Restore { file } => backup::restore(&cli.settings, &file).await,
        Command::Seed(args) => seed::run(&cli.settings, args).await,
        Command::Offboard { config, command } => {
            offboard::run(&cli.settings, config, command).await
        }
        Command::ForgetUser { user, guild } => {
            offboard::forget_user(&cli.settings, user, guild).await
        }
        Command::Export(args) => export::export(&cli.settings, args).await,
        Command::Import(args) => export::import(&cli.settings, args).await,
        Command::Plans => {
            let plans = runtime_config(&cli.settings)?.plans;
            println!("{}", serde_json::to_string_pretty(&plans)?);
            Ok(())
        }
        Command::Openapi { components } => {
            let mut wasms = Vec::new();
            for path in &components {
                let wasm = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                wasms.push(wasm);
            }
            print!("{}", townes::api::openapi::yaml_with(&wasms).await?);
            Ok(())
        }
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite") {
        std::fs::create_dir_all(&settings.data_dir)?;
    }
    Ok(Store::connect(&settings.database_url).await?)
}

/// Where export bundles go and how long they are kept, from the settings.
fn export_config(settings: &Settings) -> townes::export::ExportConfig {
    let mut config = townes::export::ExportConfig::new(&settings.data_dir);
    config.max_bytes = settings.export_max_bytes;
    config.link_ttl = std::time::Duration::from_secs(settings.export_link_hours * 3600);
    config
}

/// The local guild `feature run` and `demo` use: id 1000, `#general` is 1001,
/// the `Member` role 1002, the bot's role 1010 and `Admin` (above the bot) 1020.
pub const LOCAL_GUILD: u64 = 1000;

/// A runtime over the configured store. Discord calls go to an empty local
/// Discord: the marketplace commands never reach Discord.
async fn platform(settings: &Settings) -> anyhow::Result<Runtime> {
    runtime_with(settings, Arc::new(LocalDiscord::new())).await
}

async fn runtime_with(settings: &Settings, discord: Arc<LocalDiscord>) -> anyhow::Result<Runtime> {
    let store = open_store(settings).await?;
    let mut config = runtime_config(settings)?;
    config.bot_user_id = 1;
    Runtime::new(config, store, discord)
}

/// The live-events bus: through Redis when `REDIS_URL` is set, else in-process.
async fn live(settings: &Settings) -> anyhow::Result<Live> {
    match &settings.redis_url {
        Some(url) if !url.trim().is_empty() => Live::with_redis(url).await,
        _ => Ok(Live::local()),
    }
}

/// Redis, which `command` cannot run without.
fn redis_url<'a>(settings: &'a Settings, command: &str) -> anyhow::Result<&'a str> {
    settings
        .redis_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{command}` passes events through Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379), or run everything in one process with `townes serve`"
            )
        })
}

/// The limits processes share: through Redis when `REDIS_URL` is set, else none.
async fn shared_limits(settings: &Settings) -> anyhow::Result<SharedLimits> {
    match &settings.redis_url {
        Some(url) if !url.trim().is_empty() => SharedLimits::with_redis(url).await,
        _ => Ok(SharedLimits::local()),
    }
}

/// The runtime's configuration from the settings (the bot's id comes from Discord).
fn runtime_config(settings: &Settings) -> anyhow::Result<RuntimeConfig> {
    let mut config = RuntimeConfig::new(&settings.data_dir);
    config.public_url = settings.public_url.clone();
    config.ai = settings.ai.clone();
    if let Some(json) = &settings.plans {
        config.plans = Plans::from_setting(json).map_err(anyhow::Error::msg)?;
    }
    Ok(config)
}

/// A runtime with one local guild, whose members are `ada` (42, Member and Admin)
/// and `bob` (43).
async fn local_platform(settings: &Settings) -> anyhow::Result<(Runtime, Arc<LocalDiscord>)> {
    let mut guild = LocalGuild::new(LOCAL_GUILD, "Playground");
    guild.add_member(42, "ada", vec![LOCAL_GUILD + 2, LOCAL_GUILD + 20]);
    guild.add_member(43, "bob", vec![]);
    let discord = Arc::new(LocalDiscord::new());
    let runtime = runtime_with(settings, discord.clone()).await?;
    runtime
        .store()
        .upsert_guild(&Guild::new(LOCAL_GUILD, &guild.name, guild.owner_id))
        .await?;
    discord.add_guild(guild);
    Ok((runtime, discord))
}

/// Prints what an invocation did, one line per effect.
fn print_outcome(label: &str, outcome: &Outcome, json: bool) {
    if json {
        let value = serde_json::json!({
            "trigger": label,
            "feature": outcome.feature_id,
            "ok": outcome.result.is_ok(),
            "error": outcome.result.as_ref().err().map(|e| e.to_string()),
            "reply": outcome.result.as_ref().ok().and_then(|r| r.as_ref()),
            "effects": outcome.effects,
            "logs": outcome.logs,
            "stdio": outcome.stdio,
            "elapsed_us": outcome.elapsed.as_micros() as u64,
        });
        println!("{value}");
        return;
    }
    println!(
        "▶ {label} → {} ({:.2} ms)",
        outcome.feature_id,
        outcome.elapsed.as_secs_f64() * 1000.0
    );
    for effect in &outcome.effects {
        println!("    {effect}");
    }
    for line in &outcome.logs {
        println!("    log: {line}");
    }
    match &outcome.result {
        Ok(Some(reply)) => {
            let flag = if reply.ephemeral { " (ephemeral)" } else { "" };
            println!(
                "    reply{flag}: {}",
                reply.body.content.as_deref().unwrap_or("")
            );
            for embed in &reply.body.embeds {
                println!(
                    "    reply embed: {} — {}",
                    embed.title.as_deref().unwrap_or(""),
                    embed.description.as_deref().unwrap_or("")
                );
            }
        }
        Ok(None) => {}
        Err(error) => println!("    FAILED: {error}"),
    }
    if !outcome.stdio.trim().is_empty() {
        println!("    stdio: {}", outcome.stdio.trim());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_and_flag_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
