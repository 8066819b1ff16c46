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

/// Rights looked up recently, by (guild, user), each for
/// [`RIGHTS_TTL`](super::config::RIGHTS_TTL). Concurrent misses for one key share
/// one Discord lookup, so a burst of requests (or WebSocket subscriptions) costs
/// the bot token two reads, not two per request.
pub struct RightsCache {
    entries: moka::future::Cache<(u64, u64), Rights>,
}

/// Entries kept at most; past it, the least useful are evicted.
const MAX_CACHED: u64 = 50_000;

impl Default for RightsCache {
    fn default() -> RightsCache {
        RightsCache {
            entries: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED)
                .time_to_live(super::config::RIGHTS_TTL)
                .support_invalidation_closures()
                .build(),
        }
    }
}

impl RightsCache {
    async fn get_or_look_up(
        &self,
        key: (u64, u64),
        look_up: impl Future<Output = Result<Rights, ApiError>>,
    ) -> Result<Rights, ApiError> {
        let entry = self
            .entries
            .entry(key)
            .or_try_insert_with(look_up)
            .await
            .map_err(ApiError::from_shared)?;
        crate::metrics::metrics().record_cache_lookup("rights", !entry.is_fresh());
        Ok(entry.into_value())
    }

    /// Forgets everyone's rights in a guild (its ownership moved).
    pub fn forget_guild(&self, guild_id: u64) {
        // Fails only without `support_invalidation_closures`, which the builder sets.
        let _ = self
            .entries
            .invalidate_entries_if(move |(guild, _), _| *guild == guild_id);
    }
}

/// A guild the caller may manage, resolved from the route's `{guild_id}`.
pub struct GuildAccess {
    pub guild: Guild,
    pub caller: Caller,
    /// How the caller came to manage it, with their permission bits there.
    pub rights: Manages,
}

/// Why a caller may manage a guild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manages {
    /// Its tenant's key or member, or its Discord owner: every permission.
    AsOwner,
    /// A member holding Manage Server (or Administrator) there.
    AsManager { permissions: u64 },
}

impl Manages {
    /// The caller's Discord permission bits in the guild.
    pub fn permissions(self) -> u64 {
        match self {
            Manages::AsOwner => crate::discord::permissions::ALL,
            Manages::AsManager { permissions } => permissions,
        }
    }
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
        let (guild, rights) = authorize(state, &caller, guild_id).await?;
        Ok(GuildAccess {
            guild,
            caller,
            rights,
        })
    }
}

fn parse_guild_id(raw: &str) -> Result<u64, ApiError> {
    super::snowflake::parse(raw).map_err(|why| ApiError::BadRequest(format!("guild id: {why}")))
}

/// The guild, if `caller` may manage it, and why they may.
pub async fn authorize(
    state: &ApiState,
    caller: &Caller,
    guild_id: u64,
) -> Result<(Guild, Manages), ApiError> {
    let hidden = || ApiError::not_found(format!("guild {guild_id}"));
    let guild = state.store().guild(guild_id).await?.ok_or_else(hidden)?;
    if guild.tenant_id.as_deref() == Some(caller.tenant_id()) {
        return Ok((guild, Manages::AsOwner));
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
        return Ok((guild, Manages::AsOwner));
    }
    let rights = state
        .rights()
        .get_or_look_up(
            (guild_id, *user_id),
            state.directory().rights(guild_id, *user_id),
        )
        .await?;
    match rights {
        Rights::Manager { permissions } => Ok((guild, Manages::AsManager { permissions })),
        Rights::Member => Err(ApiError::Forbidden(format!(
            "you need Manage Server in guild {guild_id} to manage it"
        ))),
        Rights::Stranger => Err(hidden()),
    }
}
