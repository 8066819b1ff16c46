//! `townes feature run`: install a component into the local store, enable it in
//! the local guild, deliver one event or command, and print every effect.

use super::feature::parse_capabilities;
use super::{LOCAL_GUILD, Settings, local_platform, print_outcome};
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use townes::grants::Approval;
use townes::marketplace::{LOCAL_PUBLISHER, Marketplace, Publisher};
use townes::wit::{
    CommandArgument, CommandInvocation, CommandOption, CommandSource, Event, Manifest, OptionKind,
    OptionValue,
};

#[derive(clap::Args)]
#[command(after_help = r#"Examples:
  townes feature run hello.wasm --command hello
  townes feature run hello.wasm --config '{"greeting":"Hi","welcome_channel":1001}' \
      --event '{"MemberJoined":{"user":{"id":43,"username":"bob","bot":false},"roles":[]}}'
  townes feature run xp.wasm --command xp --subcommand set --arg user=43 --arg amount=100

The local guild is 1000 (#general = 1001; roles: Member 1002, Bot 1010, Admin 1020)
with members ada (42) and bob (43). Events are JSON in the WIT's shape with
snake_case fields; optional fields may be left out."#)]
pub struct RunArgs {
    /// The component to run (.wasm).
    component: PathBuf,
    /// An event as JSON, or @path to a JSON file.
    #[arg(long, required_unless_present = "command", conflicts_with = "command")]
    event: Option<String>,
    /// A command to invoke, by name.
    #[arg(long)]
    command: Option<String>,
    #[arg(long, requires = "command")]
    subcommand: Option<String>,
    /// A command argument as NAME=VALUE; repeat for more.
    #[arg(long = "arg", value_name = "NAME=VALUE", requires = "command")]
    args: Vec<String>,
    /// The invoking member's user id.
    #[arg(long, default_value_t = 42)]
    user: u64,
    /// Capabilities to approve, comma-separated [default: all the feature requests].
    #[arg(long, value_delimiter = ',')]
    approve: Option<Vec<String>>,
    /// The feature's configuration as JSON [default: its default config].
    #[arg(long)]
    config: Option<String>,
    /// One JSON object per invocation instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: RunArgs) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let (runtime, discord) = local_platform(settings).await?;
    let market = Marketplace::new(&runtime, "cli");
    let (_, manifest) = market
        .install(&wasm, &Publisher::Named(LOCAL_PUBLISHER.into()))
        .await?;
    let approval = match &args.approve {
        None => Approval::everything_requested(&manifest.capabilities),
        Some(names) => Approval::of(parse_capabilities(names)?.iter()),
    };
    market
        .enable(LOCAL_GUILD, &manifest.id, Some(&manifest.version), approval)
        .await?;
    if let Some(config) = &args.config {
        market
            .set_config(
                LOCAL_GUILD,
                &manifest.id,
                serde_json::from_str(config).context("--config is not valid JSON")?,
            )
            .await?;
    }
    if !args.json {
        println!(
            "{} {} enabled in local guild {LOCAL_GUILD}",
            manifest.id, manifest.version
        );
    }

    if let Some(name) = &args.command {
        let invoker = discord.member_of(LOCAL_GUILD, args.user).with_context(|| {
            format!(
                "user {} is not a member of the local guild (42 and 43 are)",
                args.user
            )
        })?;
        let arguments = parse_arguments(&manifest, name, args.subcommand.as_deref(), &args.args)?;
        let invocation = CommandInvocation {
            source: CommandSource::Slash,
            name: name.clone(),
            subcommand: args.subcommand.clone(),
            arguments,
            invoker,
            channel_id: LOCAL_GUILD + 1,
        };
        let permissions = discord.permissions_of(LOCAL_GUILD, args.user);
        let outcome = runtime
            .command(LOCAL_GUILD, &manifest.id, invocation, permissions)
            .await;
        print_outcome(&format!("/{name}"), &outcome, args.json);
    } else if let Some(event) = &args.event {
        let text = match event.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
            }
            None => event.clone(),
        };
        let event: Event = serde_json::from_str(&text).context("--event is not an event: expected e.g. {\"MemberJoined\": {\"user\": {\"id\": 43, \"username\": \"bob\", \"bot\": false}, \"roles\": []}}")?;
        let label = format!("{:?}", townes::runtime::event_kind(&event));
        let outcomes = runtime.dispatch_event(LOCAL_GUILD, &event).await?;
        if outcomes.is_empty() {
            println!(
                "{} does not subscribe to {label}; it subscribes to {:?}",
                manifest.id, manifest.events
            );
        }
        for outcome in &outcomes {
            print_outcome(&label, outcome, args.json);
        }
    }
    runtime.flush_usage().await?;
    Ok(())
}

/// Turns NAME=VALUE pairs into typed arguments using the command's declared options.
fn parse_arguments(
    manifest: &Manifest,
    name: &str,
    subcommand: Option<&str>,
    pairs: &[String],
) -> anyhow::Result<Vec<CommandArgument>> {
    let command = manifest
        .commands
        .iter()
        .find(|c| c.name == name)
        .with_context(|| {
            let names: Vec<_> = manifest.commands.iter().map(|c| c.name.as_str()).collect();
            format!(
                "`{}` has no command `{name}`; its commands: {}",
                manifest.id,
                names.join(", ")
            )
        })?;
    let options: &[CommandOption] = match subcommand {
        None => &command.options,
        Some(sub) => {
            &command
                .subcommands
                .iter()
                .find(|s| s.name == sub)
                .with_context(|| format!("`{name}` has no subcommand `{sub}`"))?
                .options
        }
    };
    pairs
        .iter()
        .map(|pair| {
            let (key, raw) = pair
                .split_once('=')
                .with_context(|| format!("--arg `{pair}` is not NAME=VALUE"))?;
            let option = options.iter().find(|o| o.name == key).with_context(|| {
                let names: Vec<_> = options.iter().map(|o| o.name.as_str()).collect();
                format!(
                    "`{name}` has no option `{key}`; its options: {}",
                    names.join(", ")
                )
            })?;
            let bad = |what: &str| anyhow::anyhow!("option `{key}` takes {what}, not `{raw}`");
            let value = match option.kind {
                OptionKind::Text => OptionValue::Text(raw.to_string()),
                OptionKind::Integer => {
                    OptionValue::Integer(raw.parse().map_err(|_| bad("an integer"))?)
                }
                OptionKind::Number => {
                    OptionValue::Number(raw.parse().map_err(|_| bad("a number"))?)
                }
                OptionKind::Boolean => {
                    OptionValue::Boolean(raw.parse().map_err(|_| bad("true or false"))?)
                }
                OptionKind::User => OptionValue::User(raw.parse().map_err(|_| bad("a user id"))?),
                OptionKind::Channel => {
                    OptionValue::Channel(raw.parse().map_err(|_| bad("a channel id"))?)
                }
                OptionKind::Role => OptionValue::Role(raw.parse().map_err(|_| bad("a role id"))?),
            };
            Ok(CommandArgument {
                name: key.to_string(),
                value,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|args| {
            if let Some(missing) = options
                .iter()
                .find(|o| o.required && !args.iter().any(|a| a.name == o.name))
            {
                bail!(
                    "option `{}` is required: add --arg {}=…",
                    missing.name,
                    missing.name
                );
            }
            Ok(args)
        })
}
