//! `townes feature …`: the marketplace from the command line.

use super::{Settings, platform};
use anyhow::Context as _;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;
use townes::discord::permissions;
use townes::grants::{Approval, CapabilitySet, capability_name, parse_capability};
use townes::marketplace::{LOCAL_PUBLISHER, Marketplace, Publisher};
use townes::store::GuildFeature;
use townes::wit::CapabilityRequest;

#[derive(Subcommand)]
pub enum FeatureCommand {
    /// Validate components and add them to the catalogue.
    Install {
        /// Components (.wasm).
        #[arg(required = true)]
        components: Vec<PathBuf>,
        /// Publish them as the platform's built-in features.
        #[arg(long, conflicts_with = "publisher")]
        builtin: bool,
        /// Publish them under this name. A feature id belongs to the publisher
        /// that installed it first; other publishers cannot add versions of it.
        #[arg(long, default_value = LOCAL_PUBLISHER)]
        publisher: String,
        #[arg(long)]
        json: bool,
    },
    /// The catalogue: every feature and its installed versions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Enable a feature in a guild, approving its capabilities.
    Enable {
        feature: String,
        #[arg(long)]
        guild: u64,
        /// Version to run [default: the newest published].
        #[arg(long)]
        version: Option<String>,
        /// Capabilities to approve, comma-separated [default: the required ones].
        #[arg(long, value_delimiter = ',', conflicts_with = "approve_all")]
        approve: Option<Vec<String>>,
        /// Approve everything the feature requests, optional capabilities included.
        #[arg(long)]
        approve_all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Disable a feature in a guild (approvals and configuration are kept).
    Disable {
        feature: String,
        #[arg(long)]
        guild: u64,
        #[arg(long)]
        json: bool,
    },
    /// Show what a feature requests and what a guild approved; change approvals.
    Grants {
        feature: String,
        #[arg(long)]
        guild: u64,
        /// Replace the approved capabilities (comma-separated).
        #[arg(long, value_delimiter = ',')]
        approve: Option<Vec<String>>,
        /// Channels the feature may post in (comma-separated ids; `all` to lift).
        #[arg(long)]
        channels: Option<String>,
        /// The feature may only manage roles below this role (`none` to lift).
        #[arg(long)]
        role_ceiling: Option<String>,
        /// Dangerous permissions the feature may hand out through roles and
        /// overwrites anyway, comma-separated as Discord names them
        /// (`manage-server,ban-members`); `none` to withdraw. Never Administrator.
        #[arg(long)]
        elevate: Option<String>,
        /// Roles whose mentions in the feature's messages notify their members
        /// (comma-separated ids; `none` to withdraw). Never @everyone.
        #[arg(long)]
        mention_roles: Option<String>,
        /// A host name the feature may reach with `http` (repeat for more, at
        /// most 16; replaces the approved ones; `none` to withdraw them all).
        #[arg(long = "http-host")]
        http_hosts: Vec<String>,
        /// Whether the feature may call `ai` (`true` or `false`).
        #[arg(long)]
        ai: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Show or set a feature's configuration in a guild.
    Config {
        feature: String,
        #[arg(long)]
        guild: u64,
        /// New configuration as JSON, validated against the feature's schema.
        #[arg(long, conflicts_with = "file")]
        set: Option<String>,
        /// New configuration from a JSON file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Move a guild to another installed version, running its `migrate`.
    Upgrade {
        feature: String,
        #[arg(long)]
        guild: u64,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Return a guild to the version it ran before its last upgrade.
    Rollback {
        feature: String,
        #[arg(long)]
        guild: u64,
        #[arg(long)]
        json: bool,
    },
    /// Run a component against a local guild and print its effects.
    Run(super::feature_run::RunArgs),
}

pub async fn run(settings: &Settings, command: FeatureCommand) -> anyhow::Result<()> {
    if let FeatureCommand::Run(args) = command {
        return super::feature_run::run(settings, args).await;
    }
    let runtime = platform(settings).await?;
    let market = Marketplace::new(&runtime, "cli");
    match command {
        FeatureCommand::Install {
            components,
            builtin,
            publisher,
            json,
        } => {
            let publisher = if builtin {
                Publisher::Platform
            } else {
                Publisher::Named(publisher)
            };
            for path in components {
                let wasm =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let spinner = spinner(json, format!("validating and compiling {}", path.display()));
                let installed = market.install(&wasm, &publisher).await;
                spinner.finish_and_clear();
                let (version, manifest) =
                    installed.with_context(|| format!("installing {}", path.display()))?;
                if json {
                    println!("{}", serde_json::to_string(&version)?);
                } else {
                    println!(
                        "installed {} {} ({} KiB, sha256 {})",
                        manifest.id,
                        manifest.version,
                        version.size_bytes / 1024,
                        version.sha256
                    );
                    print_requests(&manifest.capabilities);
                }
            }
        }
        FeatureCommand::List { json } => {
            let catalogue = market.catalogue().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&catalogue)?);
            } else if catalogue.is_empty() {
                println!(
                    "the catalogue is empty; add features with `townes feature install <component.wasm>`"
                );
            }
            for entry in catalogue.iter().filter(|_| !json) {
                let kind = if entry.feature.builtin {
                    "built-in"
                } else {
                    "third-party"
                };
                println!("{} — {} ({kind})", entry.feature.id, entry.feature.name);
                for v in &entry.versions {
                    let state = if v.published { "" } else { " [unpublished]" };
                    println!(
                        "    {}{state}  {} KiB  sha256 {}…",
                        v.version,
                        v.size_bytes / 1024,
                        &v.sha256[..12]
                    );
                }
            }
        }
        FeatureCommand::Enable {
            feature,
            guild,
            version,
            approve,
            approve_all,
            json,
        } => {
            let (version, requests) = market.requests(&feature, version.as_deref()).await?;
            let capabilities = match approve {
                Some(names) => parse_capabilities(&names)?,
                None => requests
                    .iter()
                    .filter(|r| r.required || approve_all)
                    .map(|r| r.capability)
                    .collect(),
            };
            let approval = Approval::of(capabilities.iter());
            let gf = market
                .enable(guild, &feature, Some(&version), approval)
                .await?;
            report(
                json,
                &gf,
                format!(
                    "{feature} {version} enabled in guild {guild} with {}",
                    describe_set(capabilities)
                ),
            )?;
        }
        FeatureCommand::Disable {
            feature,
            guild,
            json,
        } => {
            market.disable(guild, &feature).await?;
            let gf = runtime
                .store()
                .guild_feature(guild, &feature)
                .await?
                .context("the feature vanished while being disabled")?;
            report(json, &gf, format!("{feature} disabled in guild {guild}"))?;
        }
        FeatureCommand::Grants {
            feature,
            guild,
            approve,
            channels,
            role_ceiling,
            elevate,
            mention_roles,
            http_hosts,
            ai,
            json,
        } => {
            let current = runtime
                .store()
                .guild_feature(guild, &feature)
                .await?
                .with_context(|| format!("{feature} is not enabled in guild {guild}"))?;
            let mut approval = current.grants.clone();
            let changing = approve.is_some()
                || channels.is_some()
                || role_ceiling.is_some()
                || elevate.is_some()
                || mention_roles.is_some()
                || !http_hosts.is_empty()
                || ai.is_some();
            if let Some(names) = approve {
                approval.capabilities = parse_capabilities(&names)?;
            }
            if let Some(channels) = channels {
                approval.channels = match channels.as_str() {
                    "all" => None,
                    list => Some(
                        list.split(',')
                            .map(|c| {
                                c.trim()
                                    .parse()
                                    .with_context(|| format!("`{c}` is not a channel id"))
                            })
                            .collect::<anyhow::Result<_>>()?,
                    ),
                };
            }
            if let Some(ceiling) = role_ceiling {
                approval.role_ceiling = match ceiling.as_str() {
                    "none" => None,
                    id => Some(
                        id.parse()
                            .with_context(|| format!("`{id}` is not a role id"))?,
                    ),
                };
            }
            if let Some(names) = elevate {
                approval.elevated_permissions = parse_elevated(&names)?;
            }
            if let Some(roles) = mention_roles {
                approval.mention_roles = parse_mention_roles(&roles, guild)?;
            }
            if !http_hosts.is_empty() {
                approval.http_hosts = parse_http_hosts(&http_hosts)?;
            }
            if let Some(ai) = ai {
                approval.ai = ai;
            }
            if changing {
                market.approve(guild, &feature, approval.clone()).await?;
            }
            let (_, requests) = market.requests(&feature, Some(&current.version)).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "requested": requests, "approved": approval })
                );
            } else {
                println!("{feature} {} in guild {guild}", current.version);
                print_requests(&requests);
                println!("approved: {}", describe_set(approval.capabilities));
                println!(
                    "channels: {}",
                    approval.channels.map_or("all".into(), |c| format!("{c:?}"))
                );
                println!(
                    "role ceiling: {}",
                    approval
                        .role_ceiling
                        .map_or("the bot's top role".into(), |r| r.to_string())
                );
                println!(
                    "elevated permissions: {}",
                    match approval.elevated_permissions {
                        0 => "none".to_string(),
                        bits => permissions::names(bits).join(", "),
                    }
                );
                println!(
                    "http hosts: {}",
                    if approval.http_hosts.is_empty() {
                        "none".to_string()
                    } else {
                        approval.http_hosts.join(", ")
                    }
                );
                println!("ai: {}", if approval.ai { "approved" } else { "no" });
                println!(
                    "roles it may notify: {}",
                    if approval.mention_roles.is_empty() {
                        "none".to_string()
                    } else {
                        format!("{:?}", approval.mention_roles)
                    }
                );
            }
        }
        FeatureCommand::Config {
            feature,
            guild,
            set,
            file,
        } => {
            let new = match (set, file) {
                (Some(json), _) => Some(json),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                ),
                (None, None) => None,
            };
            match new {
                Some(text) => {
                    let config = serde_json::from_str(&text)
                        .context("the configuration is not valid JSON")?;
                    market.set_config(guild, &feature, config).await?;
                    println!("configuration of {feature} in guild {guild} updated");
                }
                None => {
                    let gf = runtime
                        .store()
                        .guild_feature(guild, &feature)
                        .await?
                        .with_context(|| format!("{feature} is not enabled in guild {guild}"))?;
                    let config = match gf.config {
                        Some(config) => config,
                        None => serde_json::from_str(
                            &runtime
                                .manifest(&feature, &gf.version)
                                .await?
                                .default_config,
                        )?,
                    };
                    println!("{}", serde_json::to_string_pretty(&config)?);
                }
            }
        }
        FeatureCommand::Upgrade {
            feature,
            guild,
            to,
            json,
        } => {
            let spinner = spinner(
                json,
                format!("upgrading {feature} in guild {guild} to {to}"),
            );
            let result = market.upgrade(guild, &feature, &to).await;
            spinner.finish_and_clear();
            let gf = result?;
            let from = gf.previous_version.clone().unwrap_or_default();
            report(
                json,
                &gf,
                format!("{feature} in guild {guild}: {from} → {}", gf.version),
            )?;
        }
        FeatureCommand::Rollback {
            feature,
            guild,
            json,
        } => {
            let from = runtime
                .store()
                .guild_feature(guild, &feature)
                .await?
                .map(|gf| gf.version)
                .unwrap_or_default();
            let gf = market.rollback(guild, &feature).await?;
            report(
                json,
                &gf,
                format!("{feature} in guild {guild}: {from} → {}", gf.version),
            )?;
        }
        FeatureCommand::Run(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Prints the guild's feature row as JSON, or `text`.
fn report(json: bool, gf: &GuildFeature, text: String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(gf)?);
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Comma-separated capability names from the command line.
pub(super) fn parse_capabilities(names: &[String]) -> anyhow::Result<CapabilitySet> {
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| parse_capability(n.trim()))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)
}

fn describe_set(set: CapabilitySet) -> String {
    let names: Vec<_> = set.iter().map(capability_name).collect();
    if names.is_empty() {
        "no capabilities".into()
    } else {
        names.join(", ")
    }
}

fn print_requests(requests: &[CapabilityRequest]) {
    for r in requests {
        let kind = if r.required { "required" } else { "optional" };
        println!(
            "    {:<16} {kind:<9} {}",
            capability_name(r.capability),
            r.reason
        );
    }
}

/// A spinner on stderr while something slow runs; hidden for `--json` and when
/// stderr is not a terminal.
fn spinner(hidden: bool, message: String) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `--mention-roles`: role ids, or `none`; never the guild's @everyone.
fn parse_mention_roles(roles: &str, guild: u64) -> anyhow::Result<Vec<u64>> {
    if roles == "none" {
        return Ok(Vec::new());
    }
    roles
        .split(',')
        .map(|r| {
            let id: u64 = r
                .trim()
                .parse()
                .with_context(|| format!("`{r}` is not a role id"))?;
            anyhow::ensure!(
                id != guild,
                "{id} is the guild's @everyone, which a feature may never notify"
            );
            Ok(id)
        })
        .collect()
}

/// `--elevate`: dangerous permission names, or `none`.
fn parse_elevated(names: &str) -> anyhow::Result<u64> {
    if names.trim() == "none" {
        return Ok(0);
    }
    names.split(',').try_fold(0, |bits, name| {
        let bit = permissions::parse(name).with_context(|| {
            format!("`{name}` is not a permission name; use Discord's, e.g. manage-server")
        })?;
        if bit == permissions::ADMINISTRATOR {
            anyhow::bail!("Administrator is never handed to a feature");
        }
        if bit & permissions::DANGEROUS == 0 {
            anyhow::bail!(
                "`{name}` is not a dangerous permission: features may hand it out already"
            );
        }
        Ok(bits | bit)
    })
}

/// The most hosts one approval may list for `http` (as the API).
const MAX_HTTP_HOSTS: usize = 16;

/// `--http-host` values: lower-cased DNS names (no IP addresses, schemes or
/// ports), or `none` alone for no host at all.
fn parse_http_hosts(hosts: &[String]) -> anyhow::Result<Vec<String>> {
    if let [only] = hosts
        && only == "none"
    {
        return Ok(Vec::new());
    }
    if hosts.len() > MAX_HTTP_HOSTS {
        anyhow::bail!("at most {MAX_HTTP_HOSTS} http hosts may be approved");
    }
    let mut approved: Vec<String> = Vec::new();
    for host in hosts {
        let host = host.trim().to_ascii_lowercase();
        townes_limits::http::check_host_name(&host).map_err(|e| anyhow::anyhow!(e.0))?;
        if !approved.contains(&host) {
            approved.push(host);
        }
    }
    Ok(approved)
}
