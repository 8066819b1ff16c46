//! The Discord gateway, through serenity: which intents to ask for, which shards
//! this process runs, and the event handler that keeps guild rows current and
//! hands every event to the features that subscribed to it.

pub mod convert;
mod handler;

use crate::platform::Platform;
use crate::runtime::Runtime;
use crate::wit::{Capability, EventKind};
use serenity::all::{GatewayIntents, Http, HttpBuilder};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Which shards this process runs: all of them with Discord's recommended count,
/// or a range of a fixed total so several processes can split the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Shards {
    #[default]
    Auto,
    /// Shards `first..=last` of `total`.
    Range { first: u32, last: u32, total: u32 },
}

impl FromStr for Shards {
    type Err = String;

    /// `auto`, `3/16` (shard 3 of 16) or `0-3/16` (shards 0 to 3 of 16).
    fn from_str(s: &str) -> Result<Shards, String> {
        let hint = || {
            format!(
                "`{s}` is not a shard range: use `auto`, `0-3/16` (shards 0 to 3 of 16) or `2/16`"
            )
        };
        if s == "auto" {
            return Ok(Shards::Auto);
        }
        let (range, total) = s.split_once('/').ok_or_else(hint)?;
        let total: u32 = total.parse().map_err(|_| hint())?;
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (
                a.parse().map_err(|_| hint())?,
                b.parse().map_err(|_| hint())?,
            ),
            None => {
                let only = range.parse().map_err(|_| hint())?;
                (only, only)
            }
        };
        if total == 0 || first > last || last >= total {
            return Err(format!("`{s}`: shards must satisfy first ≤ last < total"));
        }
        Ok(Shards::Range { first, last, total })
    }
}

impl fmt::Display for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shards::Auto => f.write_str("auto"),
            Shards::Range { first, last, total } => write!(f, "{first}-{last}/{total}"),
        }
    }
}

/// serenity's HTTP client: straight to Discord, or to `api_base` (a REST proxy or
/// the simulator). serenity only honours a proxy with its own rate limiter off;
/// our executor handles rate limits either way.
pub fn http(token: &str, api_base: Option<&str>) -> Http {
    let builder = HttpBuilder::new(token);
    match api_base {
        Some(base) => builder.proxy(base).ratelimiter_disabled(true).build(),
        None => builder.build(),
    }
}

/// The intents the enabled features need, decided at start (Discord fixes them
/// per connection). Guilds, messages, reactions and moderation (audit-log
/// entries, for bans done in Discord's own interface) always — commands and
/// events arrive through them; members only when some enabled feature subscribes to
/// member events; message content only when some guild accepts prefix commands
/// or some enabled feature holds `message-content`. The last two are privileged
/// and must be switched on in the developer portal (docs/OPERATIONS.md).
pub async fn intents(runtime: &Runtime) -> anyhow::Result<GatewayIntents> {
    let mut intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
        | GatewayIntents::GUILD_MODERATION;
    let store = runtime.store();
    for guild in store.guilds().await? {
        if guild.left_at.is_some() {
            continue;
        }
        let settings = store.guild_settings(guild.id).await?;
        if !settings.use_slash_commands || settings.allow_prefix_fallback {
            intents |= GatewayIntents::MESSAGE_CONTENT;
        }
        for gf in store.guild_features(guild.id).await? {
            if !gf.enabled {
                continue;
            }
            // One unreadable manifest must not keep the platform from starting.
            let manifest = match runtime.manifest(&gf.feature_id, &gf.version).await {
                Ok(manifest) => manifest,
                Err(error) => {
                    tracing::error!(guild = guild.id, feature = %gf.feature_id, %error, "skipping a feature when choosing intents");
                    continue;
                }
            };
            let member_events = [
                EventKind::MemberJoined,
                EventKind::MemberLeft,
                EventKind::MemberUpdated,
            ];
            if manifest.events.iter().any(|e| member_events.contains(e)) {
                intents |= GatewayIntents::GUILD_MEMBERS;
            }
            if gf.grants.capabilities.contains(Capability::MessageContent) {
                intents |= GatewayIntents::MESSAGE_CONTENT;
            }
        }
    }
    Ok(intents)
}

/// Connects and runs the shards until `shutdown` resolves, then closes them.
pub async fn run(
    platform: Arc<Platform>,
    http: Http,
    intents: GatewayIntents,
    shards: Shards,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut client = serenity::all::ClientBuilder::new_with_http(http, intents)
        .event_handler(handler::Handler::new(platform.clone()))
        .raw_event_handler(handler::UnknownDispatches::new(platform.clone()))
        .await?;
    // A reconnect builds no new client, so the slots are only ever filled once.
    let _ = platform.cache.set(client.cache.clone());
    let _ = platform.shard_manager.set(client.shard_manager.clone());
    let manager = client.shard_manager.clone();
    tracing::info!(?intents, %shards, "connecting to the gateway");
    let started = async {
        match shards {
            Shards::Auto => client.start_autosharded().await,
            // serenity 0.12 reads the range's end as inclusive (it boots
            // `end - start + 1` shards), so `first..last` means first..=last.
            Shards::Range { first, last, total } => {
                client.start_shard_range(first..last, total).await
            }
        }
    };
    tokio::select! {
        result = started => result?,
        () = shutdown => {
            manager.shutdown_all().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_parse_and_explain_mistakes() {
        assert_eq!("auto".parse(), Ok(Shards::Auto));
        assert_eq!(
            "0-3/16".parse(),
            Ok(Shards::Range {
                first: 0,
                last: 3,
                total: 16
            })
        );
        assert_eq!(
            "2/16".parse(),
            Ok(Shards::Range {
                first: 2,
                last: 2,
                total: 16
            })
        );
        assert!(
            "4-3/16"
                .parse::<Shards>()
                .unwrap_err()
                .contains("first ≤ last < total")
        );
        assert!("0-16/16".parse::<Shards>().is_err());
        assert!(
            "three"
                .parse::<Shards>()
                .unwrap_err()
                .contains("use `auto`")
        );
    }
}
