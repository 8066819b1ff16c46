//! `townes demo`: the offline playground. Installs the given features into the
//! local guild, then plays a short script — a member joins, members chat, and
//! every slash command without required options is run — printing each effect
//! as the host executes it.

use super::{LOCAL_GUILD, Settings, local_platform, print_outcome};
use anyhow::Context as _;
use std::path::PathBuf;
use townes::discord::LocalDiscord;
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher};
use townes::runtime::Runtime;
use townes::wit::{CommandInvocation, CommandSource, Event, Member, Message};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Feature components (.wasm) to install and play with.
    #[arg(required = true)]
    components: Vec<PathBuf>,
    /// One JSON object per invocation instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: DemoArgs) -> anyhow::Result<()> {
    let (runtime, discord) = local_platform(settings).await?;
    play(&runtime, &discord, &args.components, args.json).await?;
    runtime.flush_usage().await?;
    Ok(())
}

/// Installs `components` into the local guild and plays the script.
pub async fn play(
    runtime: &Runtime,
    discord: &LocalDiscord,
    components: &[PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let market = Marketplace::new(runtime, "demo");
    let general = LOCAL_GUILD + 1;
    let owner = discord
        .with_guild(LOCAL_GUILD, |g| g.owner_id)
        .context("local guild missing")?;
    let tenant = runtime
        .store()
        .create_tenant(owner, Some("Playground owner"))
        .await?;
    runtime
        .store()
        .set_guild_tenant(LOCAL_GUILD, Some(&tenant.id))
        .await?;
    let mut features = Vec::new();
    for path in components {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (version, manifest) = market
            .install(&wasm, &Publisher::Platform)
            .await
            .with_context(|| format!("installing {}", path.display()))?;
        market
            .enable(
                LOCAL_GUILD,
                &manifest.id,
                Some(&manifest.version),
                Approval::everything_requested(&manifest.capabilities),
            )
            .await?;
        if let Some(config) = playground_config(&manifest.default_config, general, LOCAL_GUILD + 2)
        {
            market.set_config(LOCAL_GUILD, &manifest.id, config).await?;
        }
        if !json {
            println!(
                "installed {} {} ({} KiB, sha256 {}…) and enabled it in guild {LOCAL_GUILD} \"Playground\"",
                manifest.id,
                manifest.version,
                version.size_bytes / 1024,
                &version.sha256[..12]
            );
        }
        features.push(manifest);
    }

    let carol = discord
        .with_guild(LOCAL_GUILD, |g| g.add_member(44, "carol", vec![]))
        .context("local guild missing")?;
    let join = Event::MemberJoined(carol);
    for outcome in runtime.dispatch_event(LOCAL_GUILD, &join).await? {
        print_outcome("carol joined", &outcome, json);
    }
    // A conversation in simulated time, a minute apart, so per-member cooldowns pass.
    // Fixed message ids keep the XP each message earns the same on every run.
    let start = chrono::Utc::now();
    let script = [
        (42, "hi carol, welcome!"),
        (44, "thanks ada, nice place"),
        (42, "the xp feature counts what we say"),
        (44, "let's see"),
        (42, "level up soon?"),
        (44, "almost there"),
        (42, "one more"),
        (44, "and another"),
        (42, "done"),
        (44, "GG"),
        (42, "brb"),
        (44, "see you"),
    ];
    for (i, (user, text)) in script.into_iter().enumerate() {
        let author = member(discord, user)?.user;
        let at = start + chrono::Duration::seconds(61 * i as i64);
        let message = Event::MessageCreated(Message {
            id: 7_000_000 + i as u64,
            channel_id: general,
            author: author.clone(),
            content: text.into(),
            mentions: vec![],
            timestamp: at.to_rfc3339(),
        });
        for outcome in runtime.dispatch_event(LOCAL_GUILD, &message).await? {
            print_outcome(
                &format!("{} says {text:?}", author.username),
                &outcome,
                json,
            );
        }
    }
    for manifest in &features {
        for command in manifest.commands.iter().filter(|c| {
            c.slash && c.subcommands.is_empty() && c.options.iter().all(|o| !o.required)
        }) {
            // Admin commands only for ada, who holds the Admin role here.
            let users: &[u64] = if command.default_permissions.is_some() {
                &[42]
            } else {
                &[42, 44]
            };
            for &user in users {
                let invoker = member(discord, user)?;
                let invoker_permissions = discord.permissions_of(LOCAL_GUILD, user);
                let label = format!("{} runs /{}", invoker.user.username, command.name);
                let invocation = CommandInvocation {
                    source: CommandSource::Slash,
                    name: command.name.clone(),
                    subcommand: None,
                    arguments: vec![],
                    invoker,
                    channel_id: general,
                };
                print_outcome(
                    &label,
                    &runtime
                        .command(LOCAL_GUILD, &manifest.id, invocation, invoker_permissions)
                        .await,
                    json,
                );
            }
        }
    }
    Ok(())
}

fn member(discord: &LocalDiscord, user_id: u64) -> anyhow::Result<Member> {
    discord
        .member_of(LOCAL_GUILD, user_id)
        .with_context(|| format!("user {user_id} is not in the local guild"))
}

/// The feature's default config made lively for a playground: every unset
/// `channel` or `*_channel` pointed at #general, so features that post somewhere
/// have somewhere to post; empty `role_rewards` given a level-1 reward of
/// `member_role`, so level-ups show one; and a `cooldown_seconds` of 0, so a quick
/// scripted chat earns on every message.
pub fn playground_config(
    default_config: &str,
    general: u64,
    member_role: u64,
) -> Option<serde_json::Value> {
    let mut config: serde_json::Value = serde_json::from_str(default_config).ok()?;
    let object = config.as_object_mut()?;
    let mut changed = false;
    for (key, value) in object.iter_mut() {
        if (key == "channel" || key.ends_with("_channel")) && value.is_null() {
            *value = general.into();
            changed = true;
        }
        if key == "role_rewards" && value.as_array().is_some_and(Vec::is_empty) {
            *value = serde_json::json!([{ "level": 1, "role": member_role }]);
            changed = true;
        }
        if key == "cooldown_seconds" && value.as_u64().is_some_and(|s| s > 0) {
            *value = 0.into();
            changed = true;
        }
    }
    changed.then_some(config)
}
