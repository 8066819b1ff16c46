//! Reaction roles: emoji → role pairs on a message, and the reactions that
//! give and take them.
//!
//! What a member holds of a message's roles is read from the member when
//! `members` is granted (the truth: an admin may have changed their roles by
//! hand), else from the feature's own record of what it gave them
//! (`rrm:{message_id}:{user_id}`), which is kept either way.
//!
//! Reactions made or taken back while the platform was away are reconciled
//! when it is back in the guild ([`reconcile`], from `guild-ready`): who
//! reacts now is read from Discord, and what the feature gave is read from
//! its record.
//!
//! Limits of the contract, best effort around them: a reaction cannot be
//! removed by the feature, so in `unique` mode the member's previous reaction
//! stays visible after the swap, and a reaction past the `limit` stays
//! without giving its role.

use crate::store::{self, Mode, Pair, ReactionRoles};
use crate::{Config, audit_entry};
use serde::Deserialize;
use std::collections::BTreeMap;
use townes_sdk::{
    Capability, Context, Error, Reaction, Snowflake, log, members, messages, roles, snowflake,
    storage,
};

/// Emoji → role pairs on one message.
pub const MAX_PAIRS: usize = 20;

/// What `POST /reaction-roles` takes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    #[serde(deserialize_with = "snowflake::de")]
    pub channel_id: Snowflake,
    #[serde(deserialize_with = "snowflake::de")]
    pub message_id: Snowflake,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub limit: u8,
    pub pairs: Vec<Pair>,
}

/// An emoji as stored and compared: a unicode emoji as given (trimmed), a
/// custom one as `name:id` (`<:name:id>` and `<a:name:id>` are accepted).
pub fn normalize_emoji(emoji: &str) -> String {
    let e = emoji.trim();
    let inner = e
        .strip_prefix('<')
        .and_then(|e| e.strip_suffix('>'))
        .unwrap_or(e);
    let inner = inner.strip_prefix("a:").unwrap_or(inner);
    inner.trim_start_matches(':').to_string()
}

/// Two spellings of one emoji compare equal: a custom one by its id, a
/// unicode one without variation selectors (U+FE0F).
fn emoji_key(emoji: &str) -> String {
    let e = normalize_emoji(emoji);
    match e.rsplit_once(':') {
        Some((_, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => id.into(),
        _ => e.replace('\u{fe0f}', ""),
    }
}

/// Checks `draft` and makes the record it describes.
pub fn check(ctx: &Context, config: &Config, draft: Draft) -> Result<ReactionRoles, Error> {
    if draft.channel_id == 0 || draft.message_id == 0 {
        return Err(Error::invalid("channel_id and message_id are Discord ids"));
    }
    let n = draft.pairs.len();
    if !(1..=MAX_PAIRS).contains(&n) {
        return Err(Error::invalid(format!(
            "{n} emoji → role pairs: give 1 to {MAX_PAIRS}"
        )));
    }
    if usize::from(draft.limit) > n {
        return Err(Error::invalid(format!(
            "limit {} is more than the {n} roles offered; use 0 (no limit) to {n}",
            draft.limit
        )));
    }
    let mut pairs: Vec<Pair> = Vec::with_capacity(n);
    for (i, pair) in draft.pairs.into_iter().enumerate() {
        let emoji = normalize_emoji(&pair.emoji);
        townes_sdk::limits::check_emoji(&emoji)
            .map_err(|e| Error::invalid(format!("pair {}: {e}", i + 1)))?;
        config.check_role(ctx.guild_id, pair.role_id)?;
        if pairs
            .iter()
            .any(|p| emoji_key(&p.emoji) == emoji_key(&emoji))
        {
            return Err(Error::invalid(format!(
                "pair {}: {emoji} is used twice; one emoji per role",
                i + 1
            )));
        }
        if pairs.iter().any(|p| p.role_id == pair.role_id) {
            return Err(Error::invalid(format!(
                "pair {}: role {} is used twice; one emoji per role",
                i + 1,
                pair.role_id
            )));
        }
        pairs.push(Pair {
            emoji,
            role_id: pair.role_id,
        });
    }
    Ok(ReactionRoles {
        message_id: draft.message_id,
        channel_id: draft.channel_id,
        mode: draft.mode,
        limit: draft.limit,
        pairs,
    })
}

/// Sets the reaction roles of a message (replacing any), after the bot
/// reacted with each emoji. Returns the record and whether it is new.
pub fn set(ctx: &Context, config: &Config, draft: Draft) -> Result<(ReactionRoles, bool), Error> {
    let record = check(ctx, config, draft)?;
    let key = store::rr_key(record.message_id);
    let is_new = store::get::<ReactionRoles>(&key)?.is_none();
    if is_new {
        let count = store::count(
            store::RR_PREFIX,
            config.max_reaction_role_messages.saturating_add(1),
        )?;
        if count >= config.max_reaction_role_messages as usize {
            return Err(Error::invalid(format!(
                "this server has {count} reaction-role messages, the most `max_reaction_role_messages` allows; delete one or raise it"
            )));
        }
    }
    // Reacting first also proves the message exists and the bot may react
    // there: a wrong id is refused before anything is stored.
    for pair in &record.pairs {
        messages::react(record.channel_id, record.message_id, &pair.emoji).map_err(
            |e| match e {
                Error::InvalidArgument(why) => {
                    Error::invalid(format!("reacting with {}: {why}", pair.emoji))
                }
                Error::NotFound(what) => Error::not_found(format!(
                    "message {} in channel {} ({what})",
                    record.message_id, record.channel_id
                )),
                e => e,
            },
        )?;
    }
    let mut created = false;
    store::update::<ReactionRoles>(&key, |old| {
        created = old.is_none();
        Ok(Some(record.clone()))
    })?;
    audit_entry(
        "reaction_roles.set",
        &format!(
            "{} reaction roles ({}, limit {}) on message {}",
            record.pairs.len(),
            record.mode.as_str(),
            record.limit,
            record.message_id
        ),
    );
    Ok((record, created))
}

/// Forgets the reaction roles of `message_id` (members keep their roles).
pub fn delete(message_id: Snowflake) -> Result<ReactionRoles, Error> {
    let record = store::load_reaction_roles(message_id)?;
    storage::delete(&store::rr_key(message_id))?;
    // What the feature noted of members' roles there goes too (in pages of
    // the most `list_prefix` reads; anything left over is harmless).
    let prefix = format!("{}{message_id}:", store::HELD_PREFIX);
    for entry in storage::list_prefix(&prefix, store::LIST_LIMIT)? {
        storage::delete(&entry.key)?;
    }
    audit_entry(
        "reaction_roles.deleted",
        &format!("reaction roles on message {message_id}"),
    );
    Ok(record)
}

/// The roles of `record` the member holds: their roles when `members` can
/// read them, else the feature's record. `None`: a bot, or no longer a
/// member — nothing to do.
fn held_roles(record: &ReactionRoles, user_id: Snowflake) -> Result<Option<Vec<Snowflake>>, Error> {
    let offered = record.roles();
    match members::get(user_id) {
        Ok(member) if member.user.bot => Ok(None),
        Ok(member) => Ok(Some(
            offered
                .into_iter()
                .filter(|r| member.has_role(*r))
                .collect(),
        )),
        Err(Error::NotFound(_)) => Ok(None),
        Err(Error::Denied(Capability::Members)) | Err(Error::Unavailable(_)) => Ok(Some(
            store::held(record.message_id, user_id)?
                .into_iter()
                .filter(|r| offered.contains(r))
                .collect(),
        )),
        Err(e) => Err(e),
    }
}

/// Gives or takes a role for a reaction; a role the bot may not manage (or
/// that is gone) is logged, not fatal: nobody is there to be told.
fn apply(user_id: Snowflake, role_id: Snowflake, add: bool) -> Result<bool, Error> {
    let reason = Some("reaction role");
    let result = if add {
        roles::add(user_id, role_id, reason)
    } else {
        roles::remove(user_id, role_id, reason)
    };
    match result {
        Ok(()) => Ok(true),
        Err(e @ (Error::Denied(Capability::Roles) | Error::NotFound(_))) => {
            log::warn(format!(
                "reaction role {role_id} for member {user_id} not {}: {e:?}",
                if add { "given" } else { "taken" }
            ));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A reaction was added (`added`) or removed on some message.
pub fn on_reaction(ctx: &Context, reaction: &Reaction, added: bool) -> Result<(), Error> {
    let user = reaction.user_id;
    if user == ctx.bot_user_id {
        return Ok(());
    }
    let Some(record) = store::get::<ReactionRoles>(&store::rr_key(reaction.message_id))? else {
        return Ok(());
    };
    let key = emoji_key(&reaction.emoji);
    let Some(role) = record
        .pairs
        .iter()
        .find(|p| emoji_key(&p.emoji) == key)
        .map(|p| p.role_id)
    else {
        return Ok(());
    };
    if !added && record.mode == Mode::Verify {
        return Ok(());
    }
    let Some(held) = held_roles(&record, user)? else {
        return Ok(());
    };
    let message = record.message_id;
    if !added {
        if held.contains(&role) && apply(user, role, false)? {
            store::note_held(message, user, &[], &[role])?;
        }
        return Ok(());
    }
    if held.contains(&role) {
        return store::note_held(message, user, &[role], &[]);
    }
    let mut removed = Vec::new();
    match record.mode {
        Mode::Unique => {
            for &other in held.iter().filter(|&&r| r != role) {
                if apply(user, other, false)? {
                    removed.push(other);
                }
            }
        }
        Mode::Normal | Mode::Verify => {
            if record.limit > 0 && held.len() >= usize::from(record.limit) {
                log::info(format!(
                    "member {user} holds {} of message {message}'s roles, its limit; reaction ignored",
                    held.len()
                ));
                return Ok(());
            }
        }
    }
    let added_roles = if apply(user, role, true)? {
        vec![role]
    } else {
        Vec::new()
    };
    store::note_held(message, user, &added_roles, &removed)
}

/// Reactions read per emoji when reconciling (the rest wait for the next
/// start or their member's next reaction).
pub const MAX_RECONCILED_REACTIONS: usize = 1_000;

/// Brings every reaction-role message in line with its reactions after the
/// platform was away: members who reacted meanwhile get their roles, members
/// who took their reaction back lose the role the feature gave them (not in
/// `verify` mode). A message that is gone is skipped; when the invocation's
/// budget of host calls runs out, the rest waits for the next start.
pub fn reconcile(ctx: &Context) -> Result<(), Error> {
    let records = store::list::<ReactionRoles>(store::RR_PREFIX)?;
    for (done, record) in records.iter().enumerate() {
        match reconcile_message(ctx, record) {
            Ok(()) => {}
            Err(Error::NotFound(what)) => log::info(format!(
                "reaction roles on message {}: {what} is gone; skipped",
                record.message_id
            )),
            Err(Error::QuotaExceeded(what)) => {
                log::warn(format!(
                    "reconciled {done} of {} reaction-role messages before {what} ran out; the rest on the next start",
                    records.len()
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn reconcile_message(ctx: &Context, record: &ReactionRoles) -> Result<(), Error> {
    let (channel, message) = (record.channel_id, record.message_id);
    // Who reacts with which of the message's emoji now, in pair order.
    let mut reacting: BTreeMap<Snowflake, Vec<&Pair>> = BTreeMap::new();
    for pair in &record.pairs {
        for user in
            messages::all_reactions(channel, message, &pair.emoji, MAX_RECONCILED_REACTIONS)?
        {
            if user != ctx.bot_user_id {
                reacting.entry(user).or_default().push(pair);
            }
        }
    }
    let reaction = |user: Snowflake, pair: &Pair| Reaction {
        user_id: user,
        channel_id: channel,
        message_id: message,
        emoji: pair.emoji.clone(),
    };
    for (&user, pairs) in &reacting {
        if record.mode == Mode::Unique {
            // Several reactions (the earlier one stays after a swap): keep
            // the role they hold if it is one of them, else the first.
            let Some(held) = held_roles(record, user)? else {
                continue;
            };
            if !pairs.iter().any(|p| held.contains(&p.role_id)) {
                on_reaction(ctx, &reaction(user, pairs[0]), true)?;
            }
            continue;
        }
        for pair in pairs {
            on_reaction(ctx, &reaction(user, pair), true)?;
        }
    }
    if record.mode == Mode::Verify {
        return Ok(());
    }
    // Members the feature gave a role whose reaction is gone.
    let prefix = format!("{}{message}:", store::HELD_PREFIX);
    for entry in storage::list_prefix(&prefix, store::LIST_LIMIT)? {
        let Some(user) = entry.key[prefix.len()..].parse::<Snowflake>().ok() else {
            continue;
        };
        for role in store::held(message, user)? {
            let still = reacting
                .get(&user)
                .is_some_and(|pairs| pairs.iter().any(|p| p.role_id == role));
            let pair = record.pairs.iter().find(|p| p.role_id == role);
            if let (false, Some(pair)) = (still, pair) {
                on_reaction(ctx, &reaction(user, pair), false)?;
            }
        }
    }
    Ok(())
}
