//! `townes demo`: the offline playground. Installs the given features into the
//! local guild, then plays a short script — a member joins, members chat, and
//! every slash command without required options is run — printing each effect
//! as the host executes it.

use super::{LOCAL_GUILD, Settings, local_platform, print_outcome};
use anyhow::Context as _;
use std::path::PathBuf;
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::wit::{CommandInvocation, CommandSource, Event, Member, Message};

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
    let market = Marketplace::new(&runtime, "demo");
    let general = LOCAL_GUILD + 1;
    let mut features = Vec::new();
    for path in &args.components {
        let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (version, manifest) = market
            .install(&wasm, true)
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
        if let Some(config) = playground_config(&manifest.default_config, general) {
            market.set_config(LOCAL_GUILD, &manifest.id, config).await?;
        }
        if !args.json {
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
        print_outcome("carol joined", &outcome, args.json);
    }
    for (user, text) in [(42, "hi carol, welcome!"), (44, "thanks ada")] {
        let author = member(&discord, user)?.user;
        let message = Event::MessageCreated(Message {
            id: 5000 + user,
            channel_id: general,
            author: author.clone(),
            content: text.into(),
            mentions: vec![],
            timestamp: chrono::Utc::now().to_rfc3339(),
        });
        for outcome in runtime.dispatch_event(LOCAL_GUILD, &message).await? {
            print_outcome(
                &format!("{} says {text:?}", author.username),
                &outcome,
                args.json,
            );
        }
    }
    for manifest in &features {
        for command in manifest.commands.iter().filter(|c| {
            c.slash && c.subcommands.is_empty() && c.options.iter().all(|o| !o.required)
        }) {
            for user in [42, 44] {
                let invoker = member(&discord, user)?;
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
                    &runtime.command(LOCAL_GUILD, &manifest.id, invocation).await,
                    args.json,
                );
            }
        }
    }
    Ok(())
}

fn member(discord: &townes::discord::LocalDiscord, user_id: u64) -> anyhow::Result<Member> {
    discord
        .member_of(LOCAL_GUILD, user_id)
        .with_context(|| format!("user {user_id} is not in the local guild"))
}

/// The feature's default config with every unset `channel` or `*_channel` pointed at
/// #general, so features that post somewhere have somewhere to post.
fn playground_config(default_config: &str, general: u64) -> Option<serde_json::Value> {
    let mut config: serde_json::Value = serde_json::from_str(default_config).ok()?;
    let object = config.as_object_mut()?;
    let mut changed = false;
    for (key, value) in object.iter_mut() {
        if (key == "channel" || key.ends_with("_channel")) && value.is_null() {
            *value = general.into();
            changed = true;
        }
    }
    changed.then_some(config)
}
