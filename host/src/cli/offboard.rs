//! `townes offboard …` and `townes forget-user`: the offboarding flows and a
//! member's erasure from the command line, through the same [`Offboarder`]
//! as the API and the job.

use super::{Settings, open_store};
use anyhow::Context as _;
use chrono::Utc;
use clap::Subcommand;
use std::sync::Arc;
use townes::licensing::server::{LicenseServer, ServerConfig};
use townes::offboarding::{Offboarder, OffboardingConfig};
use townes::store::Offboarding;

#[derive(Subcommand)]
pub enum OffboardCommand {
    /// A tenant's flows, newest first.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Move a tenant to self-hosting: issues its licence and prints the
    /// self-hosted runner's environment (once), and schedules the hosted
    /// runner's retirement.
    SelfHost {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        licensing: ServerConfig,
    },
    /// Remove the bot from one guild of a tenant, or from all of them (which
    /// also revokes the tenant's licences): commands are unregistered now,
    /// the data purged after the retention window.
    RemoveBot {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        guild: Option<u64>,
    },
    /// Call a flow off before its purge.
    Cancel {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Run the offboarding job once now (`townes serve` runs it hourly).
    Tick,
}

/// Who the audit log says acted.
const ACTOR: &str = "cli";

pub async fn run(
    settings: &Settings,
    config: OffboardingConfig,
    command: OffboardCommand,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let licensing = match &command {
        OffboardCommand::SelfHost { licensing, .. } => LicenseServer::from_config(licensing)
            .map_err(anyhow::Error::msg)?
            .map(Arc::new),
        _ => None,
    };
    let offboarder = Offboarder::new(store, config, licensing, settings.public_url.clone());
    let now = Utc::now();
    match command {
        OffboardCommand::List { tenant, json } => {
            let flows = offboarder.flows(&tenant).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&flows)?);
            } else if flows.is_empty() {
                println!("tenant {tenant} has no offboarding flows");
            }
            for flow in flows.iter().filter(|_| !json) {
                println!("{}", describe(flow));
            }
        }
        OffboardCommand::SelfHost { tenant, .. } => {
            let kit = offboarder.start_self_host(&tenant, ACTOR, now).await?;
            println!("{}", describe(&kit.offboarding));
            println!("give the self-hosted runner these settings (the licence is shown only now):");
            for (name, value) in kit.env {
                println!("{name}={value}");
            }
        }
        OffboardCommand::RemoveBot { tenant, guild } => {
            let flow = offboarder
                .start_remove_bot(&tenant, guild, ACTOR, now)
                .await?;
            println!("{}", describe(&flow));
        }
        OffboardCommand::Cancel { tenant, id } => {
            let flow = offboarder.cancel(&tenant, &id, ACTOR, now).await?;
            println!("{}", describe(&flow));
        }
        OffboardCommand::Tick => {
            let report = offboarder.tick(now).await?;
            println!(
                "offboarding: {} started, {} moved, {} purged",
                report.started, report.moved, report.purged
            );
        }
    }
    Ok(())
}

/// `townes forget-user`: erases one member's data in a guild, or in every
/// guild.
pub async fn forget_user(settings: &Settings, user: u64, guild: Option<u64>) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let guilds = match guild {
        Some(guild) => {
            store.guild(guild).await?.with_context(|| {
                format!("guild {guild} is not known; `townes guild list` shows the known ones")
            })?;
            vec![guild]
        }
        None => store.guilds().await?.iter().map(|g| g.id).collect(),
    };
    let forgotten = store.forget_user(&guilds, user).await?;
    println!(
        "forgot user {user} in {} guild(s): {} storage keys, {} scores, {} files, {} audit entries, {} jobs",
        guilds.len(),
        forgotten.storage_keys,
        forgotten.scores,
        forgotten.files,
        forgotten.audit_entries,
        forgotten.jobs
    );
    Ok(())
}

fn describe(flow: &Offboarding) -> String {
    let scope = flow
        .guild_id
        .map_or("every guild".to_string(), |g| format!("guild {g}"));
    let mut line = format!(
        "{}  {} of {} ({scope}): {}",
        flow.id,
        flow.kind.as_str(),
        flow.tenant_id,
        flow.state.as_str()
    );
    for (what, at) in [
        (
            "retires",
            flow.retire_at.filter(|_| flow.retired_at.is_none()),
        ),
        ("purged", flow.purge_at.filter(|_| flow.purged_at.is_none())),
    ] {
        if let Some(at) = at {
            line.push_str(&format!(", {what} at {at}"));
        }
    }
    line
}
