//! A guild's roles, channels, emojis and members as the bot sees them, read over
//! Discord's REST API with the bot token and trimmed to what a dashboard shows.

use super::error::ApiError;
use super::examples;
use super::snowflake::Snowflake;
use crate::discord::{
    RestClient, RestError, member_from_json, permissions, role_from_json, snowflake,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = examples::role)]
pub struct RoleView {
    pub id: Snowflake,
    pub name: String,
    /// Higher is more powerful; @everyone is 0.
    pub position: u32,
    /// Discord's permission bit set, as a decimal string.
    #[schema(example = "2147483648")]
    pub permissions: String,
    /// 0xRRGGBB; 0 means no colour.
    pub color: u32,
    pub managed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = examples::channel)]
pub struct ChannelView {
    pub id: Snowflake,
    pub name: String,
    /// Discord's channel type: 0 text, 2 voice, 4 category, 5 announcement, 15 forum, …
    #[schema(rename = "type")]
    #[serde(rename = "type")]
    pub kind: u32,
    pub position: i64,
    pub parent_id: Option<Snowflake>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = examples::emoji)]
pub struct EmojiView {
    pub id: Snowflake,
    pub name: String,
    pub animated: bool,
    /// The image on Discord's CDN (`.gif` when animated, else `.png`).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = examples::member)]
pub struct MemberView {
    pub user_id: Snowflake,
    pub username: String,
    pub global_name: Option<String>,
    pub nick: Option<String>,
    pub bot: bool,
    pub roles: Vec<Snowflake>,
    /// RFC 3339.
    pub joined_at: Option<String>,
}

/// What a user may do in a guild, as far as the API cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rights {
    /// Not in the guild (or the guild is unknown to Discord).
    Stranger,
    /// In the guild, without Manage Server or Administrator.
    Member,
    /// Holds Manage Server or Administrator: with their permission bits in
    /// the guild (every bit for an Administrator).
    Manager { permissions: u64 },
}

pub struct Directory {
    rest: Option<RestClient>,
}

const NO_DISCORD: &str = "Discord is not configured for the API";
const NO_DISCORD_HINT: &str =
    "set DISCORD_TOKEN (and DISCORD_API_BASE for a proxy) where the API runs";

impl Directory {
    pub fn new(rest: Option<RestClient>) -> Directory {
        Directory { rest }
    }

    fn rest(&self) -> Result<&RestClient, ApiError> {
        self.rest.as_ref().ok_or_else(|| ApiError::Unavailable {
            message: NO_DISCORD.into(),
            hint: Some(NO_DISCORD_HINT.into()),
        })
    }

    pub async fn roles(&self, guild_id: u64) -> Result<Vec<RoleView>, ApiError> {
        let json = self.rest()?.roles(guild_id).await.map_err(discord_error)?;
        let mut roles: Vec<RoleView> = list(&json)
            .filter_map(|r| {
                let role = role_from_json(r)?;
                Some(RoleView {
                    id: Snowflake(role.id),
                    name: role.name,
                    position: role.position,
                    permissions: role.permissions.to_string(),
                    color: r["color"]
                        .as_u64()
                        .and_then(|c| c.try_into().ok())
                        .unwrap_or(0),
                    managed: r["managed"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        roles.sort_by(|a, b| b.position.cmp(&a.position).then(a.id.cmp(&b.id)));
        Ok(roles)
    }

    pub async fn channels(&self, guild_id: u64) -> Result<Vec<ChannelView>, ApiError> {
        let json = self
            .rest()?
            .guild_channels(guild_id)
            .await
            .map_err(discord_error)?;
        let mut channels: Vec<ChannelView> = list(&json)
            .filter_map(|c| {
                Some(ChannelView {
                    id: Snowflake(snowflake(&c["id"])?),
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    kind: c["type"]
                        .as_u64()
                        .and_then(|t| t.try_into().ok())
                        .unwrap_or(0),
                    position: c["position"].as_i64().unwrap_or(0),
                    parent_id: snowflake(&c["parent_id"]).map(Snowflake),
                })
            })
            .collect();
        channels.sort_by_key(|c| (c.position, c.id));
        Ok(channels)
    }

    pub async fn emojis(&self, guild_id: u64) -> Result<Vec<EmojiView>, ApiError> {
        let json = self.rest()?.emojis(guild_id).await.map_err(discord_error)?;
        Ok(list(&json)
            .filter_map(|e| {
                let id = snowflake(&e["id"])?;
                let animated = e["animated"].as_bool().unwrap_or(false);
                Some(EmojiView {
                    id: Snowflake(id),
                    name: e["name"].as_str().unwrap_or_default().to_string(),
                    animated,
                    url: format!(
                        "https://cdn.discordapp.com/emojis/{id}.{}",
                        if animated { "gif" } else { "png" }
                    ),
                })
            })
            .collect())
    }

    /// Up to `limit` members with user ids above `after`, by user id.
    pub async fn members(
        &self,
        guild_id: u64,
        limit: u32,
        after: u64,
    ) -> Result<Vec<MemberView>, ApiError> {
        let json = self
            .rest()?
            .members(guild_id, limit, after)
            .await
            .map_err(discord_error)?;
        Ok(list(&json)
            .filter_map(|m| {
                let member = member_from_json(m)?;
                Some(MemberView {
                    user_id: Snowflake(member.user.id),
                    username: member.user.username,
                    global_name: member.user.global_name,
                    nick: member.nick,
                    bot: member.user.bot,
                    roles: member.roles.into_iter().map(Snowflake).collect(),
                    joined_at: member.joined_at,
                })
            })
            .collect())
    }

    /// The user's rights in the guild, from their roles' permissions (the
    /// @everyone role's id is the guild's).
    pub async fn rights(&self, guild_id: u64, user_id: u64) -> Result<Rights, ApiError> {
        let rest = self.rest()?;
        let member = match rest.member(guild_id, user_id).await {
            Ok(json) => json,
            Err(RestError::Final(crate::discord::DiscordError::NotFound(_))) => {
                return Ok(Rights::Stranger);
            }
            Err(e) => return Err(discord_error(e)),
        };
        let Some(member) = member_from_json(&member) else {
            return Ok(Rights::Stranger);
        };
        let roles = rest.roles(guild_id).await.map_err(discord_error)?;
        let bits = list(&roles)
            .filter_map(role_from_json)
            .filter(|r| r.id == guild_id || member.roles.contains(&r.id))
            .fold(0, |bits, r| bits | r.permissions);
        Ok(if bits & permissions::ADMINISTRATOR != 0 {
            Rights::Manager {
                permissions: permissions::ALL,
            }
        } else if bits & permissions::MANAGE_GUILD != 0 {
            Rights::Manager { permissions: bits }
        } else {
            Rights::Member
        })
    }
}

fn list(json: &Value) -> impl Iterator<Item = &Value> {
    json.as_array().into_iter().flatten()
}

fn discord_error(e: RestError) -> ApiError {
    match e {
        RestError::RateLimited { retry_after, .. } => ApiError::Unavailable {
            message: format!(
                "Discord is rate limiting the bot; retry in {:.0} s",
                retry_after.as_secs_f64().ceil()
            ),
            hint: None,
        },
        RestError::Final(crate::discord::DiscordError::NotFound(what)) => {
            ApiError::NotFound(format!("Discord does not know {what}"))
        }
        RestError::Final(crate::discord::DiscordError::Forbidden(why)) => ApiError::Unavailable {
            message: format!("Discord refused the bot: {why}"),
            hint: Some("give the bot the permission named, or re-invite it".into()),
        },
        other => ApiError::Unavailable {
            message: format!("Discord: {other}"),
            hint: Some("try again in a moment".into()),
        },
    }
}
