//! `xp`: the built-in XP and levels feature.
//!
//! - **Message created**: a member who chats earns a pseudo-random amount of XP
//!   (`min_xp`..=`max_xp`) at most once per `cooldown_seconds`, except in
//!   `ignored_channels`. Bots (and the bot itself) earn nothing.
//! - **Levels** follow MEE6's curve (see [`xp_to_next_level`]). Crossing into a new
//!   level posts an announcement and grants the configured role rewards.
//! - **`/rank [user]`** (also **`/level [user]`**, seed 002's name),
//!   **`/leaderboard [page]`**, and the admin-only
//!   **`/xp set user amount`** and **`/xp reset user`**.
//!
//! # State
//!
//! Every invocation is a fresh instance, so everything lives in `storage`:
//! - score board [`BOARD`] (`"xp"`): each member's total XP;
//! - `last:{user_id}`: unix seconds of the member's last award (the cooldown);
//! - `rewards:{user_id}`: JSON array of the reward role ids this feature gave
//!   the member (so a reward is granted once, and a role that could not be given
//!   — roles denied — is tried again at the next level-up).
//!
//! # Determinism
//!
//! The feature never reads a clock or a random source. Time is the message's
//! own `timestamp` (RFC 3339), so the cooldown is judged between message
//! timestamps. The XP amount is drawn from the message id:
//! `min_xp + splitmix64(message_id) % (max_xp - min_xp + 1)` — uniform enough,
//! unpredictable to members, and the same for the same message every time
//! (tests, replays and retries agree).
//!
//! Concurrency: the cooldown is claimed with `storage::set_if` against the value
//! it was judged by, so of two messages of one member processed at the very
//! same time only one earns XP.

use serde::Deserialize;
use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, CommandOption, Context, Error,
    Event, EventKind, Feature, Manifest, Message, Reply, Snowflake, Subcommand, User, config, json,
    limits, log, messages, roles, snowflake, storage, template,
};

/// The feature.
pub struct Xp;

/// The score board holding each member's total XP.
pub const BOARD: &str = "xp";
/// The default level-up announcement.
pub const DEFAULT_ANNOUNCE_MESSAGE: &str = "GG {user.mention}, you reached level {level}!";
/// Members per leaderboard page.
pub const PAGE_SIZE: u32 = 10;
/// `storage::board_top` returns at most this many entries.
pub const MAX_TOP: u32 = 100;

/// The storage key of a member's last award time (unix seconds).
pub fn last_key(user_id: Snowflake) -> String {
    format!("last:{user_id}")
}

/// The storage key of the reward roles given to a member (JSON array of ids).
pub fn rewards_key(user_id: Snowflake) -> String {
    format!("rewards:{user_id}")
}

// ------------------------------------------------------------------ config

/// The guild's configuration (see the schema in [`Xp::describe`]). Ids are read
/// from integers or decimal strings (what dashboards send).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Least XP per award.
    pub min_xp: u32,
    /// Most XP per award (swapped with `min_xp` if smaller).
    pub max_xp: u32,
    /// Seconds between two awards to the same member.
    pub cooldown_seconds: u32,
    /// Channels where chatting earns nothing.
    #[serde(deserialize_with = "snowflake::de_vec")]
    pub ignored_channels: Vec<Snowflake>,
    /// Whether to announce level-ups.
    pub announce: bool,
    /// Where; `None` = the channel of the message that levelled up.
    #[serde(deserialize_with = "snowflake::de_opt")]
    pub announce_channel: Option<Snowflake>,
    /// The announcement: `{user}`, `{user.mention}`, `{user.name}`, `{level}`.
    pub announce_message: String,
    /// Roles given on reaching levels.
    pub role_rewards: Vec<RoleReward>,
    /// Keep lower reward roles when a higher one is given (else remove them).
    pub stack_rewards: bool,
}

/// One entry of `role_rewards`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct RoleReward {
    /// The level that earns it.
    pub level: u32,
    /// The role.
    #[serde(deserialize_with = "snowflake::de")]
    pub role: Snowflake,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_xp: 15,
            max_xp: 25,
            cooldown_seconds: 60,
            ignored_channels: Vec::new(),
            announce: true,
            announce_channel: None,
            announce_message: DEFAULT_ANNOUNCE_MESSAGE.into(),
            role_rewards: Vec::new(),
            stack_rewards: true,
        }
    }
}

fn config_schema() -> townes_sdk::serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "min_xp": {"type": "integer", "minimum": 0, "maximum": 1000},
            "max_xp": {"type": "integer", "minimum": 0, "maximum": 1000},
            "cooldown_seconds": {"type": "integer", "minimum": 0, "maximum": 86400},
            "ignored_channels": {"type": "array", "items": snowflake::schema(), "maxItems": 100, "uniqueItems": true},
            "announce": {"type": "boolean"},
            "announce_channel": snowflake::nullable_schema(),
            "announce_message": {"type": "string", "minLength": 1, "maxLength": limits::CONTENT},
            "role_rewards": {
                "type": "array",
                "maxItems": 25,
                "items": {
                    "type": "object",
                    "properties": {
                        "level": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "role": snowflake::schema()
                    },
                    "required": ["level", "role"],
                    "additionalProperties": false
                }
            },
            "stack_rewards": {"type": "boolean"}
        },
        "additionalProperties": false
    })
}

fn default_config() -> townes_sdk::serde_json::Value {
    json!({
        "min_xp": 15,
        "max_xp": 25,
        "cooldown_seconds": 60,
        "ignored_channels": [],
        "announce": true,
        "announce_channel": null,
        "announce_message": DEFAULT_ANNOUNCE_MESSAGE,
        "role_rewards": [],
        "stack_rewards": true
    })
}

// ------------------------------------------------------------------ levels

/// XP needed to go from `level` to `level + 1`: **5·L² + 50·L + 100** (MEE6's
/// curve). Level 0 starts at 0 XP, so level 1 takes 100 XP, level 2 255, level
/// 3 475, level 4 770, level 5 1,150 in total.
pub fn xp_to_next_level(level: u32) -> u64 {
    let l = u64::from(level);
    5 * l * l + 50 * l + 100
}

/// Total XP at which `level` starts: Σ_{k<L} (5k² + 50k + 100)
/// = 5·(L−1)·L·(2L−1)/6 + 25·L·(L−1) + 100·L.
pub fn total_xp_for_level(level: u32) -> u128 {
    let l = u128::from(level);
    if l == 0 {
        return 0;
    }
    5 * (l - 1) * l * (2 * l - 1) / 6 + 25 * l * (l - 1) + 100 * l
}

/// The level a total of `xp` reaches, with the XP earned into that level and
/// the XP that level takes to complete: `(level, xp_into_level, xp_for_next)`.
/// Negative totals count as 0.
///
/// `level_for(100) == (1, 0, 155)`, `level_for(255) == (2, 0, 220)`,
/// `level_for(475) == (3, 0, 295)`.
pub fn level_for(xp: i64) -> (u32, u64, u64) {
    let xp = xp.max(0) as u128;
    // The largest L with total(L) <= xp; total(2,000,000) > i64::MAX.
    let (mut lo, mut hi) = (0u32, 2_000_000u32);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if total_xp_for_level(mid) <= xp {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let into = (xp - total_xp_for_level(lo)) as u64;
    (lo, into, xp_to_next_level(lo))
}

// ------------------------------------------------------ time and randomness

/// splitmix64: a fast, well-mixed 64-bit hash, used to draw the XP amount from
/// the message id.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The XP a message earns: `min + splitmix64(id) % (max - min + 1)`.
pub fn award_amount(message_id: Snowflake, config: &Config) -> u32 {
    let lo = config.min_xp.min(config.max_xp);
    let hi = config.min_xp.max(config.max_xp);
    let span = u64::from(hi - lo) + 1;
    lo + (splitmix64(message_id) % span) as u32
}

// ---------------------------------------------------------------- templates

/// Renders the announcement: `{user}` (global name, else username),
/// `{user.mention}`, `{user.name}`, `{level}`; unknown placeholders are kept, and
/// the result is cut to Discord's 2000 characters.
pub fn render_announcement(template: &str, user: &User, level: u32) -> String {
    template::render(template, |key| {
        Some(match key {
            "user" => user.display_name().to_string(),
            "user.mention" => user.mention(),
            "user.name" => user.username.clone(),
            "level" => level.to_string(),
            _ => return None,
        })
    })
}

// ---------------------------------------------------------------- awarding

fn load_config() -> Result<Config, Error> {
    config::get_json()
}

/// What awarding needs from storage. In the sandbox it is the feature's own
/// storage ([`FeatureStorage`]); the platform's benchmark runs this same logic
/// natively against the host's store, to measure what the sandbox costs.
pub trait Ledger {
    fn get(&mut self, key: &str) -> Result<Option<String>, Error>;
    fn set_if(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, Error>;
    fn board_increment(
        &mut self,
        board: &str,
        subject: Snowflake,
        delta: i64,
    ) -> Result<i64, Error>;
}

/// The feature's storage capability as a [`Ledger`].
pub struct FeatureStorage;

impl Ledger for FeatureStorage {
    fn get(&mut self, key: &str) -> Result<Option<String>, Error> {
        storage::get(key)
    }
    fn set_if(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, Error> {
        storage::set_if(key, expected, value)
    }
    fn board_increment(
        &mut self,
        board: &str,
        subject: Snowflake,
        delta: i64,
    ) -> Result<i64, Error> {
        storage::board_increment(board, subject, delta)
    }
}

/// What [`award`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awarded {
    /// `amount` XP given; the member now has `total`.
    Xp { amount: i64, total: i64 },
    /// Nothing: a bot, an ignored channel, the cooldown, an award of 0, or a
    /// concurrent invocation claimed the cooldown first.
    Nothing,
    /// Nothing: the message's timestamp could not be read.
    UnreadableTimestamp,
}

/// Only human members earn XP: no bots (webhooks arrive as bots), not the bot
/// itself, no author-less system messages.
fn earns_xp(author: &User, bot_user_id: Snowflake) -> bool {
    !author.bot && author.id != bot_user_id && author.id != 0
}

/// Awards XP for a message in the guild whose bot is `bot_user_id`.
pub fn award(
    ledger: &mut impl Ledger,
    config: &Config,
    bot_user_id: Snowflake,
    message: &Message,
) -> Result<Awarded, Error> {
    let author = &message.author;
    if !earns_xp(author, bot_user_id) {
        return Ok(Awarded::Nothing);
    }
    if config.ignored_channels.contains(&message.channel_id) {
        return Ok(Awarded::Nothing);
    }
    let Some(now) = townes_sdk::time::parse_datetime(&message.timestamp).map(|t| t as i64) else {
        return Ok(Awarded::UnreadableTimestamp);
    };
    let key = last_key(author.id);
    let stored = ledger.get(&key)?;
    if let Some(last) = stored.as_deref().and_then(|v| v.trim().parse::<i64>().ok()) {
        // Also refuses a message older than the last award (out of order).
        if now - last < i64::from(config.cooldown_seconds) {
            return Ok(Awarded::Nothing);
        }
    }
    let amount = i64::from(award_amount(message.id, config));
    if amount == 0 {
        return Ok(Awarded::Nothing);
    }
    // Cooldown first: if the award below fails the member loses one award
    // rather than being able to farm XP while the cooldown is not stored. A
    // concurrent invocation that claimed it first wins; this one awards nothing.
    if !ledger.set_if(&key, stored.as_deref(), &now.to_string())? {
        return Ok(Awarded::Nothing);
    }
    let total = ledger.board_increment(BOARD, author.id, amount)?;
    Ok(Awarded::Xp { amount, total })
}

fn message_created(ctx: &Context, message: Message) -> Result<(), Error> {
    // Checked before the configuration is read, too: most messages a bot sees
    // are its own and other bots'.
    if !earns_xp(&message.author, ctx.bot_user_id) {
        return Ok(());
    }
    let config = load_config()?;
    match award(&mut FeatureStorage, &config, ctx.bot_user_id, &message)? {
        Awarded::Xp { amount, total } => {
            let (before, _, _) = level_for(total - amount);
            let (after, _, _) = level_for(total);
            if after > before {
                level_up(&config, &message, after)?;
            }
        }
        Awarded::UnreadableTimestamp => log::warn(format!(
            "xp: message {} has an unreadable timestamp {:?}; no XP",
            message.id, message.timestamp
        )),
        Awarded::Nothing => {}
    }
    Ok(())
}

fn level_up(config: &Config, message: &Message, level: u32) -> Result<(), Error> {
    let user = &message.author;
    if config.announce {
        let channel = config.announce_channel.unwrap_or(message.channel_id);
        let text = render_announcement(&config.announce_message, user, level);
        if let Err(e) = messages::send(channel, text) {
            log::warn(format!(
                "xp: level-up announcement for {} in {channel} failed: {e:?}",
                user.id
            ));
        }
    }
    sync_rewards(config, user.id, level)
}

/// Gives `user_id` every reward with level ≤ `level` not yet given; with
/// `stack_rewards` off, only the highest such reward is kept and lower reward
/// roles this feature gave are removed. Role failures (roles denied, a role
/// above the ceiling) are logged and retried at the next level-up.
fn sync_rewards(config: &Config, user_id: Snowflake, level: u32) -> Result<(), Error> {
    let eligible: Vec<&RoleReward> = config
        .role_rewards
        .iter()
        .filter(|r| r.level <= level)
        .collect();
    let Some(top) = eligible.iter().map(|r| r.level).max() else {
        return Ok(());
    };
    let mut keep: Vec<Snowflake> = Vec::new();
    for r in &eligible {
        if (config.stack_rewards || r.level == top) && !keep.contains(&r.role) {
            keep.push(r.role);
        }
    }
    let key = rewards_key(user_id);
    let mut granted: Vec<Snowflake> = storage::get_json(&key)?.unwrap_or_default();
    let before = granted.clone();
    let reason = format!("xp: level {level} reward");

    for &role in keep.iter().filter(|r| !before.contains(r)) {
        match roles::add(user_id, role, Some(&reason)) {
            Ok(()) => granted.push(role),
            Err(e) => log::warn(format!(
                "xp: giving reward role {role} to {user_id} failed: {e:?}"
            )),
        }
    }
    if !config.stack_rewards {
        let lower = |role: &Snowflake| {
            !keep.contains(role) && config.role_rewards.iter().any(|r| r.role == *role)
        };
        for role in before.iter().copied().filter(lower) {
            match roles::remove(user_id, role, Some(&reason)) {
                Ok(()) => granted.retain(|r| *r != role),
                Err(e) => log::warn(format!(
                    "xp: removing lower reward role {role} from {user_id} failed: {e:?}"
                )),
            }
        }
    }
    if granted != before {
        storage::set_json(&key, &granted)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- commands

fn rank(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let invoker = invocation.invoker.user.id;
    let target = invocation.user_arg("user").unwrap_or(invoker);
    let Some(entry) = storage::board_rank(BOARD, target)? else {
        return Ok(Reply::text(if target == invoker {
            "You have no XP yet — chat a little and you'll show up on the board!".to_string()
        } else {
            format!("<@{target}> has no XP yet.")
        }));
    };
    let (level, into, needed) = level_for(entry.score);
    Ok(Reply::text(format!(
        "<@{target}> is **#{}** — level {level}, {into}/{needed} XP to level {}, {} XP in total.",
        entry.rank,
        level + 1,
        entry.score
    )))
}

fn leaderboard(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let pages = MAX_TOP / PAGE_SIZE;
    let page = invocation.integer_arg("page").unwrap_or(1);
    if !(1..=i64::from(pages)).contains(&page) {
        return Ok(Reply::text(format!(
            "Pages go from 1 to {pages}: the leaderboard shows the top {MAX_TOP}."
        ))
        .ephemeral());
    }
    let page = page as u32;
    let top = storage::board_top(BOARD, page * PAGE_SIZE)?;
    let lines: Vec<String> = top
        .iter()
        .skip(((page - 1) * PAGE_SIZE) as usize)
        .map(|e| {
            let (level, _, _) = level_for(e.score);
            format!(
                "#{} <@{}> — level {level} ({} XP)",
                e.rank, e.subject, e.score
            )
        })
        .collect();
    if lines.is_empty() {
        return Ok(Reply::text(if top.is_empty() {
            "Nobody has earned XP yet.".to_string()
        } else {
            format!(
                "Page {page} is empty: {} members are on the leaderboard.",
                top.len()
            )
        }));
    }
    Ok(Reply::text(format!(
        "**Leaderboard** (page {page})\n{}",
        lines.join("\n")
    )))
}

fn admin(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let subcommand = invocation.subcommand.as_deref();
    if !matches!(subcommand, Some("set" | "reset")) {
        return Err(Error::invalid("unknown subcommand: use `set` or `reset`"));
    }
    let Some(user) = invocation.user_arg("user") else {
        return Ok(Reply::text("Choose a member with the `user` option.").ephemeral());
    };
    if subcommand == Some("set") {
        let Some(amount) = invocation.integer_arg("amount") else {
            return Ok(Reply::text("Give the new XP total with `amount`.").ephemeral());
        };
        if amount < 0 {
            return Ok(Reply::text("The amount must be 0 or more.").ephemeral());
        }
        storage::board_set(BOARD, user, amount)?;
        let (level, _, _) = level_for(amount);
        return Ok(
            Reply::text(format!("Set <@{user}>'s XP to {amount} (level {level}).")).ephemeral(),
        );
    }
    // reset: the score and the cooldown (reward roles already given stay).
    let old = storage::board_rank(BOARD, user)?;
    storage::board_remove(BOARD, user)?;
    storage::delete(&last_key(user))?;
    Ok(Reply::text(match old {
        Some(e) => format!(
            "Reset <@{user}>: removed {} XP (level {}).",
            e.score,
            level_for(e.score).0
        ),
        None => format!("<@{user}> had no XP; nothing to reset."),
    })
    .ephemeral())
}

impl Feature for Xp {
    fn describe() -> Manifest {
        Manifest::new("xp", "0.1.0")
            .name("XP & levels")
            .description(
                "Members earn 15-25 XP (configurable) for chatting, at most once a minute \
                 (configurable). Levels follow MEE6's curve: going from level L to L+1 takes \
                 5·L² + 50·L + 100 XP, so level 1 is at 100 XP, level 2 at 255, level 3 at 475. \
                 Level-ups are announced and can grant roles. /rank, /leaderboard, and /xp for \
                 admins.",
            )
            .command(
                Command::slash("rank", "Show your level and XP, or another member's").option(
                    CommandOption::user("user", "Whose rank to show (default: you)"),
                ),
            )
            .command(
                Command::slash("level", "Show your level, or another member's").option(
                    CommandOption::user("user", "Whose level to show (default: you)"),
                ),
            )
            .command(
                Command::slash("leaderboard", "Show the members with the most XP").option(
                    CommandOption::integer("page", "Page of the top 100, 10 per page (default 1)"),
                ),
            )
            .command(
                Command::slash("xp", "Manage members' XP")
                    .admin_only()
                    .subcommand(
                        Subcommand::new("set", "Set a member's total XP")
                            .option(CommandOption::user("user", "The member").required())
                            .option(
                                CommandOption::integer("amount", "The new total (0 or more)")
                                    .required(),
                            ),
                    )
                    .subcommand(
                        Subcommand::new("reset", "Remove a member's XP and cooldown")
                            .option(CommandOption::user("user", "The member").required()),
                    ),
            )
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keep members' XP, their last award time and the reward roles given",
            ))
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "announce level-ups",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Roles,
                "give the configured role rewards on level-up",
            ))
            .config(config_schema(), default_config())
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::MessageCreated(message) => message_created(ctx, message),
            _ => Ok(()),
        }
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            // Seed 002's levelling group names it `/level`; both answer alike.
            "rank" | "level" => rank(&invocation),
            "leaderboard" => leaderboard(&invocation),
            "xp" => admin(&invocation),
            _ => Err(Error::invalid("unknown command")),
        }
    }
}

townes_sdk::export_feature!(Xp);

#[cfg(test)]
mod tests;
