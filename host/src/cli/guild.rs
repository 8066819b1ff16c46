//! `townes guild …`: the guilds the platform knows and what runs in them.

use super::{Settings, open_store};
use anyhow::Context as _;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GuildCommand {
    /// Every guild the platform knows.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One guild: its plan, settings and features with their grants.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: GuildCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        GuildCommand::List { json } => {
            let guilds = store.guilds().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&guilds)?);
            } else if guilds.is_empty() {
                println!(
                    "no guilds yet: they appear when the bot joins one (or run `townes demo`)"
                );
            }
            for g in guilds.iter().filter(|_| !json) {
                let left = g
                    .left_at
                    .map(|at| format!(", left {at}"))
                    .unwrap_or_default();
                println!(
                    "{}  {}  (plan {}, owner {}{left})",
                    g.id, g.name, g.plan, g.owner_id
                );
            }
        }
        GuildCommand::Show { id, json } => {
            let guild = store.guild(id).await?.with_context(|| {
                format!("guild {id} is not known; `townes guild list` shows the known ones")
            })?;
            let settings = store.guild_settings(id).await?;
            let features = store.guild_features(id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "guild": guild, "settings": settings, "features": features })
                );
                return Ok(());
            }
            println!(
                "{} {} (plan {}, owner {})",
                guild.id, guild.name, guild.plan, guild.owner_id
            );
            println!(
                "settings: prefix {:?}, slash commands {}, prefix fallback {}, global cooldown {}s",
                settings.prefix,
                settings.use_slash_commands,
                settings.allow_prefix_fallback,
                settings.global_cooldown_seconds
            );
            if features.is_empty() {
                println!("no features enabled");
            }
            for f in features {
                let approval = &f.grants;
                let state = if f.enabled { "enabled" } else { "disabled" };
                let paused = f
                    .breaker_open_until
                    .filter(|u| *u > chrono::Utc::now())
                    .map(|u| format!(", paused until {u}"))
                    .unwrap_or_default();
                println!(
                    "  {} {} — {state}{paused}; grants {:?}",
                    f.feature_id, f.version, approval.capabilities
                );
            }
        }
    }
    Ok(())
}
