//! The Discord gateway, through serenity: which intents to ask for, which shards
//! this process runs, and the event handler that keeps guild rows current and
//! hands every event to the features that subscribed to it.

mod consumer;
pub mod convert;
mod handler;
pub mod relay;

pub use consumer::consume;

use crate::grants::CapabilitySet;
use crate::platform::Platform;
use crate::runtime::Runtime;
use crate::wit::{Capability, EventKind};
use serenity::all::{GatewayIntents, Http, HttpBuilder};
use serenity::gateway::GatewayError;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

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

/// Intents every connection asks for: guilds, messages, reactions and
/// moderation (audit-log entries, for bans done in Discord's own interface) —
/// commands and events arrive through them.
const BASE_INTENTS: GatewayIntents = GatewayIntents::GUILDS
    .union(GatewayIntents::GUILD_MESSAGES)
    .union(GatewayIntents::GUILD_MESSAGE_REACTIONS)
    .union(GatewayIntents::GUILD_MODERATION);

/// What `townes gateway` asks for unless told otherwise: everything features
/// can use, the privileged member and message-content intents included.
pub const RELAY_INTENTS: GatewayIntents = BASE_INTENTS
    .union(GatewayIntents::GUILD_MEMBERS)
    .union(GatewayIntents::MESSAGE_CONTENT);

/// Intents Discord only grants to applications that switched them on in the
/// developer portal (Bot → Privileged Gateway Intents); asking without that
/// closes the connection with 4014.
const PRIVILEGED: GatewayIntents = GatewayIntents::GUILD_MEMBERS
    .union(GatewayIntents::GUILD_PRESENCES)
    .union(GatewayIntents::MESSAGE_CONTENT);

/// The intents every guild's enabled features need, for the first connection.
pub async fn intents(runtime: &Runtime) -> anyhow::Result<GatewayIntents> {
    let mut intents = BASE_INTENTS;
    for guild in runtime.store().guilds().await? {
        if guild.left_at.is_none() {
            intents |= guild_intents(runtime, guild.id).await?;
        }
    }
    Ok(intents)
}

/// The intents one guild needs: the base ones; members when an enabled
/// feature subscribes to member events; message content when the guild
/// accepts prefix commands or an enabled feature holds `message-content`.
/// The last two are privileged (docs/OPERATIONS.md).
pub async fn guild_intents(runtime: &Runtime, guild_id: u64) -> anyhow::Result<GatewayIntents> {
    let mut intents = BASE_INTENTS;
    let store = runtime.store();
    let settings = store.guild_settings(guild_id).await?;
    if !settings.use_slash_commands || settings.allow_prefix_fallback {
        intents |= GatewayIntents::MESSAGE_CONTENT;
    }
    for gf in store.guild_features(guild_id).await? {
        if !gf.enabled {
            continue;
        }
        // One unreadable manifest must not keep the platform from starting.
        let manifest = match runtime.manifest(&gf.feature_id, &gf.version).await {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::error!(guild = guild_id, feature = %gf.feature_id, %error, "skipping a feature when choosing intents");
                continue;
            }
        };
        intents |= feature_intents(&manifest.events, &gf.grants.capabilities);
    }
    Ok(intents)
}

/// The intents beyond the base ones that one feature needs to receive what it
/// subscribed to with what it was granted.
pub fn feature_intents(events: &[EventKind], capabilities: &CapabilitySet) -> GatewayIntents {
    let mut intents = GatewayIntents::empty();
    let member_events = [
        EventKind::MemberJoined,
        EventKind::MemberLeft,
        EventKind::MemberUpdated,
    ];
    if events.iter().any(|e| member_events.contains(e)) {
        intents |= GatewayIntents::GUILD_MEMBERS;
    }
    if capabilities.contains(Capability::MessageContent) {
        intents |= GatewayIntents::MESSAGE_CONTENT;
    }
    intents
}

/// What the shards ask Discord for. Features enabled on a running platform may
/// need more than the shards asked for when they connected ([`Intents::want`]);
/// the gateway then reconnects with the wider set. Discord may refuse a
/// privileged intent the application has not switched on: the gateway
/// connects without it (trying several untried ones one at a time, since the
/// refusal does not name one) and [`Intents::notice`] says why and what to do.
pub struct Intents {
    wanted: watch::Sender<GatewayIntents>,
    state: Mutex<IntentState>,
}

#[derive(Default, Clone, Copy)]
struct IntentState {
    /// What the current connection asked for.
    running: GatewayIntents,
    /// What the connections that got READY asked for.
    accepted: GatewayIntents,
    /// Privileged intents Discord refused; not asked for again until restart.
    refused: GatewayIntents,
    /// Discord refused a connection asking for several untried privileged
    /// intents (its close code does not say which): they are tried one by one.
    probing: bool,
}

impl Default for Intents {
    fn default() -> Intents {
        Intents {
            wanted: watch::Sender::new(BASE_INTENTS),
            state: Mutex::new(IntentState {
                running: GatewayIntents::empty(),
                accepted: BASE_INTENTS,
                refused: GatewayIntents::empty(),
                probing: false,
            }),
        }
    }
}

impl Intents {
    /// Asks for `needed` too; wakes the gateway only when that is more than
    /// was wanted before (intents never shrink while running).
    pub fn want(&self, needed: GatewayIntents) {
        self.wanted.send_if_modified(|wanted| {
            let grows = !wanted.contains(needed);
            *wanted |= needed;
            grows
        });
    }

    /// What the shards currently run with.
    pub fn running(&self) -> GatewayIntents {
        self.state().running
    }

    /// What Discord refused.
    pub fn refused(&self) -> GatewayIntents {
        self.state().refused
    }

    /// Why a feature that needs `needed` will not receive everything it asked
    /// for, and how to fix it; `None` when nothing stands in the way (intents
    /// not yet running are asked for within seconds).
    pub fn notice(&self, needed: GatewayIntents) -> Option<String> {
        let refused = needed & self.refused();
        if refused.is_empty() {
            return None;
        }
        Some(format!(
            "Discord refused the {} intent for this bot, so the feature will not receive what it needs: \
             switch it on in the Discord developer portal (your application → Bot → Privileged Gateway Intents), \
             then restart the platform",
            intent_names(refused)
        ))
    }

    fn state(&self) -> IntentState {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut IntentState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// What to connect with next: everything wanted but what Discord
    /// refused — while probing, with one untried privileged intent at most.
    fn next(&self) -> GatewayIntents {
        let state = self.state();
        let wanted = *self.wanted.borrow() - state.refused;
        let untried = wanted & PRIVILEGED & !state.accepted;
        if !state.probing || untried.bits().count_ones() <= 1 {
            return wanted;
        }
        let first = GatewayIntents::from_bits_truncate(1 << untried.bits().trailing_zeros());
        wanted - (untried - first)
    }

    /// A session got READY: Discord accepts what the shards run with (and a
    /// probe may try the next untried intent).
    pub fn connected(&self) {
        self.update(|state| state.accepted |= state.running);
        self.wanted.send_modify(|_| {});
    }

    /// Discord closed the connection that asked for `intents` with 4014:
    /// notes the privileged intent it refused or, when several were untried,
    /// starts trying them one at a time. False when nothing privileged was
    /// asked for (nothing to drop).
    fn disallowed(&self, intents: GatewayIntents) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let untried = intents & PRIVILEGED & !state.accepted;
        match untried.bits().count_ones() {
            1 => state.refused |= untried,
            0 if (intents & PRIVILEGED).is_empty() => return false,
            // What was accepted before no longer is: start over.
            0 => {
                state.accepted = BASE_INTENTS;
                state.probing = true;
            }
            _ => state.probing = true,
        }
        true
    }

    /// Waits, at most `patience`, until a READY session runs with `needed`
    /// (but what Discord refused); returns whether it does.
    pub async fn serving(&self, needed: GatewayIntents, patience: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let state = self.state();
            let target = needed - state.refused;
            if state.running.contains(target) && state.accepted.contains(target) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Resolves when [`Intents::next`] asks for more than `running`: features
    /// want more, or a probe may try the next intent.
    async fn wanted_beyond(&self, running: GatewayIntents) {
        let mut wanted = self.wanted.subscribe();
        loop {
            wanted.borrow_and_update();
            if !running.contains(self.next()) {
                return;
            }
            if wanted.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// The intents' names as Discord's documentation spells them.
fn intent_names(intents: GatewayIntents) -> String {
    let names: Vec<&str> = [
        (GatewayIntents::GUILD_MEMBERS, "Server Members"),
        (GatewayIntents::GUILD_PRESENCES, "Presence"),
        (GatewayIntents::MESSAGE_CONTENT, "Message Content"),
    ]
    .into_iter()
    .filter(|(intent, _)| intents.contains(*intent))
    .map(|(_, name)| name)
    .collect();
    names.join(" and ")
}

/// Connects and runs the shards until `shutdown` resolves, then closes them.
/// When enabled features want intents the shards lack, closes the shards and
/// connects again with them (a fresh IDENTIFY: Discord does not replay what
/// was sent in the seconds between). When Discord refuses a privileged
/// intent, connects again without it and keeps the refusal for
/// [`Intents::notice`].
pub async fn run(
    platform: Arc<Platform>,
    http: impl Fn() -> Http,
    shards: Shards,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let intents = platform.intents.next();
        let mut client = serenity::all::ClientBuilder::new_with_http(http(), intents)
            .event_handler(handler::Handler::new(platform.clone()))
            .raw_event_handler(handler::UnknownDispatches::new(platform.clone()))
            .await?;
        platform.cache.set(
            client.cache.clone(),
            intents.contains(GatewayIntents::GUILD_MEMBERS),
        );
        platform.set_shard_manager(client.shard_manager.clone());
        platform.intents.update(|state| state.running = intents);
        let manager = client.shard_manager.clone();
        tracing::info!(?intents, %shards, "connecting to the gateway");
        let mut started = std::pin::pin!(async {
            match shards {
                Shards::Auto => client.start_autosharded().await,
                // serenity 0.12 reads the range's end as inclusive (it boots
                // `end - start + 1` shards), so `first..last` means first..=last.
                Shards::Range { first, last, total } => {
                    client.start_shard_range(first..last, total).await
                }
            }
        });
        tokio::select! {
            result = &mut started => match result {
                Err(serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents)) => {
                    if !platform.intents.disallowed(intents) {
                        anyhow::bail!("Discord refused the gateway's non-privileged intents {intents:?}");
                    }
                    tracing::error!(asked = %intent_names(intents), refused = %intent_names(platform.intents.refused()), "Discord refused privileged intents: switch them on in the developer portal (Bot → Privileged Gateway Intents) and restart; connecting without them");
                }
                Err(error) => return Err(error.into()),
                Ok(()) => return Ok(()),
            },
            () = &mut shutdown => {
                manager.shutdown_all().await;
                return Ok(());
            }
            () = platform.intents.wanted_beyond(intents) => {
                tracing::info!("features need more gateway intents; reconnecting");
                manager.shutdown_all().await;
                let _ = started.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_intents_only_grow_and_a_refused_one_is_named_with_the_fix() {
        let intents = Intents::default();
        let mut seen = intents.wanted.subscribe();
        seen.borrow_and_update();
        intents.want(GatewayIntents::GUILDS);
        assert!(!seen.has_changed().unwrap(), "nothing new wanted");
        intents.want(GatewayIntents::MESSAGE_CONTENT);
        assert!(seen.has_changed().unwrap());
        assert_eq!(
            intents.next(),
            BASE_INTENTS | GatewayIntents::MESSAGE_CONTENT
        );
        assert_eq!(intents.notice(GatewayIntents::MESSAGE_CONTENT), None);

        intents.update(|state| state.refused |= GatewayIntents::MESSAGE_CONTENT);
        assert_eq!(intents.next(), BASE_INTENTS, "not asked for again");
        let notice = intents
            .notice(GatewayIntents::MESSAGE_CONTENT | GatewayIntents::GUILD_MEMBERS)
            .unwrap();
        assert!(
            notice.contains("refused the Message Content intent"),
            "{notice}"
        );
        assert!(notice.contains("Privileged Gateway Intents"), "{notice}");
        assert_eq!(intents.notice(GatewayIntents::GUILD_MEMBERS), None);
    }

    #[test]
    fn several_refused_candidates_are_tried_one_at_a_time() {
        use GatewayIntents as I;
        let intents = Intents::default();
        let all = BASE_INTENTS | I::MESSAGE_CONTENT | I::GUILD_MEMBERS;
        intents.want(all);
        assert_eq!(intents.next(), all);
        assert!(intents.disallowed(all));
        assert!(intents.refused().is_empty(), "4014 does not say which");
        let members_only = BASE_INTENTS | I::GUILD_MEMBERS;
        assert_eq!(intents.next(), members_only, "one untried intent at a time");
        intents.update(|state| state.running = members_only);
        intents.connected();
        assert_eq!(intents.next(), all, "then the next one");
        assert!(intents.disallowed(all));
        assert_eq!(intents.refused(), I::MESSAGE_CONTENT);
        assert_eq!(intents.next(), members_only);
        assert!(
            !intents.disallowed(BASE_INTENTS),
            "nothing privileged to drop"
        );
    }

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
