//! Who may touch a guild: the tenant that owns it, its Discord owner, or a member
//! holding Manage Server (or Administrator) there. API keys reach their tenant's
//! guilds only.
//!
//! A caller who is not in the guild gets 404, the same as for a guild that does
//! not exist, so guild ids cannot be probed; a member without the right gets 403.
//! Rights are read from Discord with the bot's view and trusted for
//! [`RIGHTS_TTL`](super::config::RIGHTS_TTL), so a revoked role stops working
//! within that time.

use super::ApiState;
use super::auth::Caller;
use super::directory::Rights;
use super::error::ApiError;
use crate::store::Guild;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Rights looked up recently, by (guild, user).
#[derive(Default)]
pub struct RightsCache {
    entries: Mutex<HashMap<(u64, u64), (Instant, Rights)>>,
}

/// Entries kept at most; past it, stale ones are dropped.
const MAX_CACHED: usize = 50_000;

impl RightsCache {
    fn get(&self, key: (u64, u64)) -> Option<Rights> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&key)
            .filter(|(at, _)| at.elapsed() < super::config::RIGHTS_TTL)
            .map(|(_, rights)| *rights)
    }

    fn put(&self, key: (u64, u64), rights: Rights) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_CACHED {
            entries.retain(|_, (at, _)| at.elapsed() < super::config::RIGHTS_TTL);
        }
        entries.insert(key, (Instant::now(), rights));
    }
}

/// A guild the caller may manage, resolved from the route's `{guild_id}`.
pub struct GuildAccess {
    pub guild: Guild,
    pub caller: Caller,
}

impl FromRequestParts<ApiState> for GuildAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<GuildAccess, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let raw = params
            .iter()
            .find(|(name, _)| *name == "guild_id")
            .map(|(_, value)| value)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("route has no {{guild_id}}")))?;
        let guild_id = parse_guild_id(raw)?;
        let guild = authorize(state, &caller, guild_id).await?;
        Ok(GuildAccess { guild, caller })
    }
}

fn parse_guild_id(raw: &str) -> Result<u64, ApiError> {
    super::snowflake::parse(raw).map_err(|why| ApiError::BadRequest(format!("guild id: {why}")))
}

/// The guild, if `caller` may manage it.
pub async fn authorize(
    state: &ApiState,
    caller: &Caller,
    guild_id: u64,
) -> Result<Guild, ApiError> {
    let hidden = || ApiError::not_found(format!("guild {guild_id}"));
    let guild = state.store().guild(guild_id).await?.ok_or_else(hidden)?;
    if guild.tenant_id.as_deref() == Some(caller.tenant_id()) {
        return Ok(guild);
    }
    let Caller::User {
        user_id, tenant_id, ..
    } = caller
    else {
        return Err(hidden());
    };
    if guild.owner_id == *user_id {
        if guild.tenant_id.is_none() {
            // The guild's Discord owner claims it for their tenant on first use.
            state
                .store()
                .set_guild_tenant(guild_id, Some(tenant_id))
                .await?;
        }
        return Ok(guild);
    }
    let key = (guild_id, *user_id);
    let rights = match state.rights().get(key) {
        Some(rights) => rights,
        None => {
            let rights = state.directory().rights(guild_id, *user_id).await?;
            state.rights().put(key, rights);
            rights
        }
    };
    match rights {
        Rights::Manager => Ok(guild),
        Rights::Member => Err(ApiError::Forbidden(format!(
            "you need Manage Server in guild {guild_id} to manage it"
        ))),
        Rights::Stranger => Err(hidden()),
    }
}
