//! `townes seed`: demo data for trying the dashboard and the API, written
//! through the same store and marketplace calls the platform uses. Every id
//! is fixed and every step checks what is already there, so running it again
//! changes nothing (and says so).

use super::{Settings, platform};
use anyhow::Context as _;
use chrono::{Days, Utc};
use std::path::PathBuf;
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher};
use townes::store::{Guild, GuildSettings, NewIncident, Store};

#[derive(clap::Args)]
pub struct SeedArgs {
    /// Feature components (.wasm) to install and enable in the demo guild.
    components: Vec<PathBuf>,
}

/// The demo tenant's owner (a Discord user id, never a real one: 2015's
/// snowflakes start far above it).
pub const DEMO_OWNER: u64 = 4_000_000_001;
/// The demo guild, where the components are enabled.
pub const DEMO_GUILD: u64 = 4_000_000_100;
/// A second, quiet guild of the same tenant.
pub const DEMO_SANDBOX: u64 = 4_000_000_200;
const DEMO_MODERATORS: u64 = 4_000_000_110;
const DEMO_MEMBERS: u64 = 4_000_000_111;
/// Days of usage history the demo guild gets.
const USAGE_DAYS: u64 = 14;

pub async fn run(settings: &Settings, args: SeedArgs) -> anyhow::Result<()> {
    let runtime = platform(settings).await?;
    let store = runtime.store();
    let tenant = store
        .create_tenant(DEMO_OWNER, Some("Demo Community"))
        .await?;
    println!("tenant {} \"Demo Community\"", tenant.id);
    for (id, name) in [(DEMO_GUILD, "Demo Guild"), (DEMO_SANDBOX, "Demo Sandbox")] {
        let fresh = store.guild(id).await?.is_none();
        store
            .upsert_guild(&Guild::new(id, name, DEMO_OWNER))
            .await?;
        store.set_guild_tenant(id, Some(&tenant.id)).await?;
        say(fresh, &format!("guild {id} \"{name}\""));
    }

    let settings_fresh = store.guild_settings(DEMO_GUILD).await?.updated_at.is_none();
    if settings_fresh {
        store
            .set_guild_settings(&GuildSettings {
                prefix: "?".into(),
                global_cooldown_seconds: 2,
                ..GuildSettings::new(DEMO_GUILD)
            })
            .await?;
        store
            .grant_role_permission(DEMO_GUILD, DEMO_MODERATORS, "moderation")
            .await?;
        store
            .grant_role_permission(DEMO_GUILD, DEMO_MEMBERS, "xp")
            .await?;
        store.set_command_cooldown(DEMO_GUILD, "rank", 10).await?;
    }
    say(
        settings_fresh,
        "settings: prefix ?, 2 s global cooldown, /rank every 10 s, two role permissions",
    );

    let market = Marketplace::new(&runtime, "seed");
    for path in &args.components {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, manifest) = market
            .install(&wasm, &Publisher::Platform)
            .await
            .with_context(|| format!("installing {}", path.display()))?;
        let enabled = store
            .guild_feature(DEMO_GUILD, &manifest.id)
            .await?
            .is_some_and(|f| f.enabled && f.version == manifest.version);
        if !enabled {
            market
                .enable(
                    DEMO_GUILD,
                    &manifest.id,
                    Some(&manifest.version),
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await?;
        }
        say(
            !enabled,
            &format!("{} {} enabled in Demo Guild", manifest.id, manifest.version),
        );
    }

    let usage_fresh = seed_usage(store).await?;
    say(
        usage_fresh,
        &format!("{USAGE_DAYS} days of usage in Demo Guild"),
    );
    let incident_fresh = store.incidents(&tenant.id, 1).await?.is_empty();
    if incident_fresh {
        store
            .create_incident(&NewIncident {
                tenant_id: tenant.id.clone(),
                guild_id: Some(DEMO_GUILD),
                severity: "low".into(),
                title: "Welcome messages were late".into(),
                description: "A demo incident: welcome messages arrived a minute late.".into(),
                created_by: format!("user:{DEMO_OWNER}"),
            })
            .await?;
    }
    say(incident_fresh, "an incident");
    runtime.flush_usage().await?;
    println!(
        "demo data in place; for an API key to read it: townes key create --owner {DEMO_OWNER}"
    );
    Ok(())
}

/// Usage counters for the last [`USAGE_DAYS`] days, unless the guild has
/// some in that range already (counters only add up, so writing them twice
/// would double them).
async fn seed_usage(store: &Store) -> anyhow::Result<bool> {
    let today = Utc::now().date_naive();
    let first = today - Days::new(USAGE_DAYS - 1);
    if !store.usage(DEMO_GUILD, first, today).await?.is_empty() {
        return Ok(false);
    }
    for n in 0..USAGE_DAYS {
        let day = first + Days::new(n);
        store
            .add_usage(DEMO_GUILD, day, 800 + 53 * n, 30 + 4 * n, 0)
            .await?;
    }
    Ok(true)
}

fn say(fresh: bool, what: &str) {
    if fresh {
        println!("seeded   {what}");
    } else {
        println!("present  {what}");
    }
}
