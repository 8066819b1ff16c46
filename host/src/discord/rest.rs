//! Discord's REST API over reqwest: one method per route the platform uses, and the
//! classification of every answer into success, rate limit, transient failure or final
//! refusal. Retrying is not done here; the [`Executor`](super::Executor) decides.
//!
//! The base URL is configurable (`https://discord.com` by default; a REST proxy or our
//! simulator otherwise); every route is `{base}/api/v10/...`. The bot token is sent as
//! `Authorization: Bot <token>` and never logged: [`RestClient`]'s `Debug` redacts it,
//! the header is marked sensitive, and transport errors are stripped of their URL
//! (interaction routes carry a token in the path).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::DiscordError;
use super::ratelimit::{self, RateLimiter, Route, Scope};
use crate::wit::{ActionRow, ButtonStyle, Embed, MessageBody, UiComponent};

/// Where REST calls go unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://discord.com";

/// The User-Agent Discord asks bots to send.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/townesdev, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Discord caps audit-log reasons at 512 characters.
const MAX_REASON_CHARS: usize = 512;

/// Used when a 429 says nothing about how long to wait.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a REST call came to, when it did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// 429: try again after `retry_after` (the client's rate limiter holds the next
    /// request that long: the route's bucket, or every route for a global one).
    #[error("rate limited for {:.3} s{}", retry_after.as_secs_f64(), if *scope == Scope::Global { " (global)" } else { "" })]
    RateLimited { retry_after: Duration, scope: Scope },
    /// 401: the bot token was refused. Final, and it counts toward Discord's
    /// invalid-request limit.
    #[error("Discord rejected the credentials ({0})")]
    Unauthorized(String),
    /// 5xx, a timeout or a connection error: trying again later may work.
    #[error("{0}")]
    Transient(String),
    /// Discord's final answer (any other 4xx): trying again will not help.
    #[error(transparent)]
    Final(#[from] DiscordError),
}

impl RestError {
    /// The error a caller sees when no retry is left.
    pub fn into_discord(self) -> DiscordError {
        match self {
            RestError::Final(e) => e,
            other => DiscordError::Unavailable(other.to_string()),
        }
    }
}

/// A [`RestClient`] that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RestConfigError {
    #[error("invalid Discord base URL `{0}`: expected http://host[:port] or https://host[:port]")]
    BaseUrl(String),
    #[error("the bot token is empty or not a valid header value")]
    Token,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A Discord REST client. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: Arc<str>,
    authorization: HeaderValue,
    /// Discord's rate limits as its answers describe them; every request waits here
    /// for its turn (429s count against Discord's invalid-request limit).
    limiter: Arc<RateLimiter>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// One request: the route, what to tell the caller on a refusal, and the payload.
struct Request<'a> {
    method: Method,
    /// The path after `/api/v10`, ids filled in.
    path: String,
    /// The route with placeholders, for logs (the path may carry a token).
    route: &'static str,
    /// What the bot needs for this route, named when Discord answers 50013 Missing
    /// Permissions ("the bot needs …").
    needs: Option<&'static str>,
    /// The route's targets, so a 404 names the one Discord could not find.
    targets: Vec<(&'static str, String)>,
    reason: Option<&'a str>,
    body: Option<Value>,
}

impl<'a> Request<'a> {
    fn new(method: Method, route: &'static str, path: String) -> Self {
        Request {
            method,
            path,
            route,
            needs: None,
            targets: Vec::new(),
            reason: None,
            body: None,
        }
    }

    fn needs(mut self, needs: &'static str) -> Self {
        self.needs = Some(needs);
        self
    }

    fn target(mut self, noun: &'static str, id: impl ToString) -> Self {
        self.targets.push((noun, id.to_string()));
        self
    }

    fn reason(mut self, reason: Option<&'a str>) -> Self {
        self.reason = reason;
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

// What the bot needs, as a refusal names it.
const NEEDS_SEND: &str = "View Channel and Send Messages in this channel";
const NEEDS_MANAGE_MESSAGES: &str = "Manage Messages in this channel";
const NEEDS_REACT: &str = "Add Reactions and Read Message History in this channel";
const NEEDS_MANAGE_ROLES: &str = "Manage Roles, and the role must be below the bot's highest role";
const NEEDS_MANAGE_CHANNELS: &str =
    "Manage Channels (and Manage Roles to set permission overwrites)";
const NEEDS_OVERWRITE: &str = "Manage Roles in this channel, and may only allow or deny \
                               permissions the bot has itself";
const NEEDS_KICK: &str = "Kick Members, and the member must be below the bot's highest role";
const NEEDS_BAN: &str = "Ban Members, and the member must be below the bot's highest role";
const NEEDS_TIMEOUT: &str = "Moderate Members, and the member must be below the bot's highest role";

impl RestClient {
    /// A client for `base_url` (e.g. [`DEFAULT_BASE_URL`] or `http://127.0.0.1:PORT`)
    /// authenticating with the bot `token`.
    pub fn new(base_url: &str, token: &str) -> Result<RestClient, RestConfigError> {
        let base = base_url.trim().trim_end_matches('/');
        let parsed =
            reqwest::Url::parse(base).map_err(|_| RestConfigError::BaseUrl(base.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(RestConfigError::BaseUrl(base.to_string()));
        }
        let token = token.trim();
        let token = token.strip_prefix("Bot ").unwrap_or(token);
        if token.is_empty() {
            return Err(RestConfigError::Token);
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bot {token}")).map_err(|_| RestConfigError::Token)?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            // A redirect would replay a POST elsewhere; Discord never redirects the API.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(RestClient {
            http,
            base: base.into(),
            authorization,
            limiter: Arc::default(),
        })
    }

    /// The rate limiter every request of this client (and its clones) waits on.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and classifies the answer. `Ok(None)` is a success without a
    /// body (204).
    async fn send(&self, request: Request<'_>) -> Result<Option<Value>, RestError> {
        let route = route_of(&request);
        let permit = self.limiter.acquire(&route).await;
        let url = format!("{}/api/v10{}", self.base, request.path);
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone());
        if let Some(reason) = request.reason {
            builder = builder.header("X-Audit-Log-Reason", encode_reason(reason));
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        // On an error the permit is dropped, which frees its place in the bucket.
        let response = builder.send().await.map_err(|e| {
            RestError::Transient(format!(
                "{} {}: {}",
                request.method,
                request.route,
                e.without_url()
            ))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| {
            RestError::Transient(format!(
                "{} {}: reading the answer: {}",
                request.method,
                request.route,
                e.without_url()
            ))
        })?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let limited =
            (status == StatusCode::TOO_MANY_REQUESTS).then(|| rate_limit(&headers, body.as_ref()));
        permit.complete(&route, &headers, limited);
        if status.is_success() {
            if !bytes.is_empty() && body.is_none() {
                tracing::warn!(route = request.route, %status, "Discord answered with a body that is not JSON");
            }
            return Ok(body);
        }
        Err(classify(&request, status, &headers, body.as_ref()))
    }

    // ---- messages ----

    /// `POST /channels/{channel}/messages`. With a `nonce`, also sends
    /// `enforce_nonce: true`, so Discord answers a replay with the message it already
    /// created instead of posting it twice. Returns the message id.
    pub async fn create_message(
        &self,
        channel_id: u64,
        body: &Value,
        nonce: Option<&str>,
    ) -> Result<u64, RestError> {
        let mut body = body.clone();
        if let (Some(nonce), Some(object)) = (nonce, body.as_object_mut()) {
            object.insert("nonce".into(), json!(nonce));
            object.insert("enforce_nonce".into(), json!(true));
        }
        let request = Request::new(
            Method::POST,
            "/channels/{channel}/messages",
            format!("/channels/{channel_id}/messages"),
        )
        .needs(NEEDS_SEND)
        .target("channel", channel_id)
        .body(body);
        id_of(self.send(request).await?, "message")
    }

    /// `PATCH /channels/{channel}/messages/{message}`.
    pub async fn edit_message(
        &self,
        channel_id: u64,
        message_id: u64,
        body: &Value,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PATCH,
            "/channels/{channel}/messages/{message}",
            format!("/channels/{channel_id}/messages/{message_id}"),
        )
        .needs("View Channel in this channel; only the bot's own messages can be edited")
        .target("message", message_id)
        .target("channel", channel_id)
        .body(body.clone());
        self.send(request).await.map(drop)
    }

    /// `DELETE /channels/{channel}/messages/{message}`.
    pub async fn delete_message(
        &self,
        channel_id: u64,
        message_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::DELETE,
            "/channels/{channel}/messages/{message}",
            format!("/channels/{channel_id}/messages/{message_id}"),
        )
        .needs(NEEDS_MANAGE_MESSAGES)
        .target("message", message_id)
        .target("channel", channel_id)
        .reason(reason);
        self.send(request).await.map(drop)
    }

    /// `POST /channels/{channel}/messages/bulk-delete`: 2 to 100 messages younger than
    /// 14 days.
    pub async fn bulk_delete(
        &self,
        channel_id: u64,
        message_ids: &[u64],
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let ids: Vec<String> = message_ids.iter().map(u64::to_string).collect();
        let request = Request::new(
            Method::POST,
            "/channels/{channel}/messages/bulk-delete",
            format!("/channels/{channel_id}/messages/bulk-delete"),
        )
        .needs(NEEDS_MANAGE_MESSAGES)
        .target("channel", channel_id)
        .reason(reason)
        .body(json!({ "messages": ids }));
        self.send(request).await.map(drop)
    }

    /// `PUT /channels/{channel}/messages/{message}/reactions/{emoji}/@me`. `emoji` is a
    /// unicode emoji or `name:id` (also accepted: `<:name:id>`, `<a:name:id>`).
    pub async fn add_reaction(
        &self,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PUT,
            "/channels/{channel}/messages/{message}/reactions/{emoji}/@me",
            format!(
                "/channels/{channel_id}/messages/{message_id}/reactions/{}/@me",
                encode_emoji(emoji)
            ),
        )
        .needs(NEEDS_REACT)
        .target("message", message_id)
        .target("channel", channel_id)
        .target("emoji", emoji);
        self.send(request).await.map(drop)
    }

    /// `GET /channels/{channel}/messages/{message}/reactions/{emoji}?limit=N[&after=U]`:
    /// up to `limit` (1-100) users who reacted with `emoji`, ids above `after`.
    pub async fn reactions(
        &self,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Value, RestError> {
        let after = after.map(|id| format!("&after={id}")).unwrap_or_default();
        let request = Request::new(
            Method::GET,
            "/channels/{channel}/messages/{message}/reactions/{emoji}",
            format!(
                "/channels/{channel_id}/messages/{message_id}/reactions/{}?limit={}{after}",
                encode_emoji(emoji),
                limit.clamp(1, 100)
            ),
        )
        .needs("View Channel and Read Message History in this channel")
        .target("message", message_id)
        .target("channel", channel_id);
        self.get(request).await
    }

    /// `POST /users/@me/channels`: the DM channel with a user (Discord returns the
    /// existing one if there is one).
    pub async fn create_dm(&self, user_id: u64) -> Result<u64, RestError> {
        let request = Request::new(
            Method::POST,
            "/users/@me/channels",
            "/users/@me/channels".into(),
        )
        .target("user", user_id)
        .body(json!({ "recipient_id": user_id.to_string() }));
        id_of(self.send(request).await?, "channel")
    }

    // ---- members and roles ----

    /// `PUT /guilds/{guild}/members/{user}/roles/{role}`.
    pub async fn add_member_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        self.member_role(Method::PUT, guild_id, user_id, role_id, reason)
            .await
    }

    /// `DELETE /guilds/{guild}/members/{user}/roles/{role}`.
    pub async fn remove_member_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        self.member_role(Method::DELETE, guild_id, user_id, role_id, reason)
            .await
    }

    async fn member_role(
        &self,
        method: Method,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            method,
            "/guilds/{guild}/members/{user}/roles/{role}",
            format!("/guilds/{guild_id}/members/{user_id}/roles/{role_id}"),
        )
        .needs(NEEDS_MANAGE_ROLES)
        .target("member", user_id)
        .target("role", role_id)
        .target("guild", guild_id)
        .reason(reason);
        self.send(request).await.map(drop)
    }

    /// `DELETE /guilds/{guild}/members/{user}`.
    pub async fn kick(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::DELETE,
            "/guilds/{guild}/members/{user}",
            format!("/guilds/{guild_id}/members/{user_id}"),
        )
        .needs(NEEDS_KICK)
        .target("member", user_id)
        .target("guild", guild_id)
        .reason(reason);
        self.send(request).await.map(drop)
    }

    /// `PUT /guilds/{guild}/bans/{user}`.
    pub async fn ban(
        &self,
        guild_id: u64,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PUT,
            "/guilds/{guild}/bans/{user}",
            format!("/guilds/{guild_id}/bans/{user_id}"),
        )
        .needs(NEEDS_BAN)
        .target("user", user_id)
        .target("guild", guild_id)
        .reason(reason)
        .body(json!({ "delete_message_seconds": delete_message_seconds }));
        self.send(request).await.map(drop)
    }

    /// `DELETE /guilds/{guild}/bans/{user}`.
    pub async fn unban(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::DELETE,
            "/guilds/{guild}/bans/{user}",
            format!("/guilds/{guild_id}/bans/{user_id}"),
        )
        .needs("Ban Members")
        .target("ban of user", user_id)
        .target("guild", guild_id)
        .reason(reason);
        self.send(request).await.map(drop)
    }

    /// `PATCH /guilds/{guild}/members/{user}` with `communication_disabled_until`
    /// (`None` lifts a timeout).
    pub async fn timeout(
        &self,
        guild_id: u64,
        user_id: u64,
        until: Option<chrono::DateTime<chrono::Utc>>,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let until = until.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let request = Request::new(
            Method::PATCH,
            "/guilds/{guild}/members/{user}",
            format!("/guilds/{guild_id}/members/{user_id}"),
        )
        .needs(NEEDS_TIMEOUT)
        .target("member", user_id)
        .target("guild", guild_id)
        .reason(reason)
        .body(json!({ "communication_disabled_until": until }));
        self.send(request).await.map(drop)
    }

    // ---- channels ----

    /// `POST /guilds/{guild}/channels` with a channel object (name, type, parent,
    /// topic, permission overwrites). Returns the channel id.
    pub async fn create_channel(
        &self,
        guild_id: u64,
        body: &Value,
        reason: Option<&str>,
    ) -> Result<u64, RestError> {
        let request = Request::new(
            Method::POST,
            "/guilds/{guild}/channels",
            format!("/guilds/{guild_id}/channels"),
        )
        .needs(NEEDS_MANAGE_CHANNELS)
        .target("guild", guild_id)
        .reason(reason)
        .body(body.clone());
        id_of(self.send(request).await?, "channel")
    }

    /// `DELETE /channels/{channel}`.
    pub async fn delete_channel(
        &self,
        channel_id: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::DELETE,
            "/channels/{channel}",
            format!("/channels/{channel_id}"),
        )
        .needs(NEEDS_MANAGE_CHANNELS)
        .target("channel", channel_id)
        .reason(reason);
        self.send(request).await.map(drop)
    }

    /// `PUT /channels/{channel}/permissions/{target}`: `kind` 0 is a role, 1 a member.
    pub async fn set_overwrite(
        &self,
        channel_id: u64,
        target_id: u64,
        kind: u8,
        allow: u64,
        deny: u64,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PUT,
            "/channels/{channel}/permissions/{target}",
            format!("/channels/{channel_id}/permissions/{target_id}"),
        )
        .needs(NEEDS_OVERWRITE)
        .target("channel", channel_id)
        .target(if kind == 0 { "role" } else { "member" }, target_id)
        .reason(reason)
        .body(json!({ "type": kind, "allow": allow.to_string(), "deny": deny.to_string() }));
        self.send(request).await.map(drop)
    }

    // ---- application commands ----

    /// `PUT /applications/{application}/guilds/{guild}/commands`: replaces the guild's
    /// commands with `commands` (an array of command objects).
    pub async fn overwrite_guild_commands(
        &self,
        application_id: u64,
        guild_id: u64,
        commands: &Value,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PUT,
            "/applications/{application}/guilds/{guild}/commands",
            format!("/applications/{application_id}/guilds/{guild_id}/commands"),
        )
        .needs("the applications.commands scope in this guild")
        .target("guild", guild_id)
        .body(commands.clone());
        self.send(request).await.map(drop)
    }

    // ---- interactions ----

    /// `POST /interactions/{id}/{token}/callback` (Discord answers 204).
    pub async fn interaction_callback(
        &self,
        interaction_id: u64,
        token: &str,
        response: &Value,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::POST,
            "/interactions/{id}/{token}/callback",
            format!(
                "/interactions/{interaction_id}/{}/callback",
                encode_path(token)
            ),
        )
        .target("interaction", interaction_id)
        .body(response.clone());
        self.send(request).await.map(drop)
    }

    /// `PATCH /webhooks/{application}/{token}/messages/@original`: edits the answer to
    /// an interaction (after a deferred response, within the token's 15 minutes).
    pub async fn edit_original(
        &self,
        application_id: u64,
        token: &str,
        body: &Value,
    ) -> Result<(), RestError> {
        let request = Request::new(
            Method::PATCH,
            "/webhooks/{application}/{token}/messages/@original",
            format!(
                "/webhooks/{application_id}/{}/messages/@original",
                encode_path(token)
            ),
        )
        .target("interaction", "response")
        .body(body.clone());
        self.send(request).await.map(drop)
    }

    /// `POST /webhooks/{application}/{token}`: a follow-up message to an interaction.
    /// Returns the message id.
    pub async fn followup(
        &self,
        application_id: u64,
        token: &str,
        body: &Value,
    ) -> Result<u64, RestError> {
        let request = Request::new(
            Method::POST,
            "/webhooks/{application}/{token}",
            format!("/webhooks/{application_id}/{}", encode_path(token)),
        )
        .target("interaction", "token")
        .body(body.clone());
        id_of(self.send(request).await?, "message")
    }

    // ---- reads ----

    /// `GET /users/@me`: the bot's own user.
    pub async fn current_user(&self) -> Result<Value, RestError> {
        let request = Request::new(Method::GET, "/users/@me", "/users/@me".into());
        self.get(request).await
    }

    /// `GET /guilds/{guild}?with_counts=true`.
    pub async fn guild(&self, guild_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}",
            format!("/guilds/{guild_id}?with_counts=true"),
        )
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /guilds/{guild}/roles`.
    pub async fn roles(&self, guild_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}/roles",
            format!("/guilds/{guild_id}/roles"),
        )
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /guilds/{guild}/members/{user}`.
    pub async fn member(&self, guild_id: u64, user_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}/members/{user}",
            format!("/guilds/{guild_id}/members/{user_id}"),
        )
        .target("member", user_id)
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /guilds/{guild}/channels`.
    pub async fn guild_channels(&self, guild_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}/channels",
            format!("/guilds/{guild_id}/channels"),
        )
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /guilds/{guild}/emojis`.
    pub async fn emojis(&self, guild_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}/emojis",
            format!("/guilds/{guild_id}/emojis"),
        )
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /guilds/{guild}/members?limit=N&after=ID` (1 to 1,000), by user id.
    /// Needs the privileged Server Members intent on Discord.
    pub async fn members(&self, guild_id: u64, limit: u32, after: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/guilds/{guild}/members",
            format!(
                "/guilds/{guild_id}/members?limit={}&after={after}",
                limit.clamp(1, 1000)
            ),
        )
        .needs("the Server Members intent (developer portal → Bot)")
        .target("guild", guild_id);
        self.get(request).await
    }

    /// `GET /channels/{channel}`.
    pub async fn channel(&self, channel_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/channels/{channel}",
            format!("/channels/{channel_id}"),
        )
        .needs("View Channel in this channel")
        .target("channel", channel_id);
        self.get(request).await
    }

    /// `GET /channels/{channel}/messages?limit=N[&before=M]` (1 to 100 older
    /// than `before`, or the newest), newest first.
    pub async fn messages(
        &self,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Value, RestError> {
        let before = before.map(|id| format!("&before={id}")).unwrap_or_default();
        let request = Request::new(
            Method::GET,
            "/channels/{channel}/messages",
            format!(
                "/channels/{channel_id}/messages?limit={}{before}",
                limit.clamp(1, 100)
            ),
        )
        .needs("View Channel and Read Message History in this channel")
        .target("channel", channel_id);
        self.get(request).await
    }

    /// `GET /channels/{channel}/messages/{message}`.
    pub async fn message(&self, channel_id: u64, message_id: u64) -> Result<Value, RestError> {
        let request = Request::new(
            Method::GET,
            "/channels/{channel}/messages/{message}",
            format!("/channels/{channel_id}/messages/{message_id}"),
        )
        .needs("View Channel and Read Message History in this channel")
        .target("message", message_id);
        self.get(request).await
    }

    /// The bytes of an attachment at `url`, a link Discord gave (its CDN, or
    /// the API's own host when that is a simulator): never the bot's token,
    /// never another host, at most `max_bytes` (larger is `QuotaExceeded`).
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, DiscordError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| DiscordError::Invalid(format!("attachment link `{url}` is not a URL")))?;
        let ours = reqwest::Url::parse(&self.base).ok();
        let allowed = match parsed.host_str() {
            Some("cdn.discordapp.com" | "media.discordapp.net") => parsed.scheme() == "https",
            Some(host) => ours.as_ref().is_some_and(|base| {
                base.host_str() == Some(host)
                    && base.port_or_known_default() == parsed.port_or_known_default()
                    && base.scheme() == parsed.scheme()
            }),
            None => false,
        };
        if !allowed {
            return Err(DiscordError::Invalid(format!(
                "attachment link `{}` is not on Discord's CDN",
                parsed.host_str().unwrap_or_default()
            )));
        }
        let unavailable = |e: reqwest::Error| {
            DiscordError::Unavailable(format!("attachment: {}", e.without_url()))
        };
        let mut response = self.http.get(parsed).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(match response.status() {
                StatusCode::NOT_FOUND => DiscordError::NotFound("attachment".into()),
                status => DiscordError::Unavailable(format!("attachment: HTTP {status}")),
            });
        }
        let too_large = || super::attachment_too_large(max_bytes);
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_large());
        }
        // Counted as it arrives: a missing or lying Content-Length cannot make
        // the host hold more than `max_bytes`.
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if (data.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data)
    }

    async fn get(&self, request: Request<'_>) -> Result<Value, RestError> {
        let route = request.route;
        self.send(request).await?.ok_or_else(|| {
            RestError::Final(DiscordError::Unavailable(format!(
                "GET {route}: Discord answered without a body"
            )))
        })
    }
}

/// What the rate limiter needs of a request: its route, its major parameter (the
/// channel, guild or webhook: the first id of the path; a webhook's token too, since
/// each interaction has its own limits) and whether the global limit applies
/// (Discord exempts interaction answers).
fn route_of(request: &Request<'_>) -> Route {
    let mut segments = request.path.split('?').next().unwrap_or("").split('/');
    let top = segments.nth(1).unwrap_or("");
    let major = match top {
        "webhooks" | "interactions" => segments.take(2).collect::<Vec<_>>().join("/"),
        _ => segments.next().unwrap_or("").to_string(),
    };
    Route {
        route: format!("{} {}", request.method, request.route),
        major,
        global: !matches!(top, "webhooks" | "interactions"),
    }
}

/// The `id` of a created object, which Discord returns as a string.
fn id_of(body: Option<Value>, what: &str) -> Result<u64, RestError> {
    body.as_ref()
        .and_then(|b| snowflake(&b["id"]))
        .ok_or_else(|| {
            // It was created; only its id is unknown, so this must not be retried.
            RestError::Final(DiscordError::Unavailable(format!(
                "Discord created the {what} but its answer carried no id"
            )))
        })
}

/// A snowflake from Discord's JSON (a string, or a number from lenient servers).
pub(crate) fn snowflake(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Classifies an unsuccessful answer.
fn classify(
    request: &Request<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> RestError {
    let code = body.and_then(|b| b["code"].as_u64());
    let message = body
        .and_then(|b| b["message"].as_str())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error"))
        .to_string();
    match status.as_u16() {
        429 => {
            let (retry_after, scope) = rate_limit(headers, body);
            RestError::RateLimited { retry_after, scope }
        }
        500..=599 => RestError::Transient(format!(
            "{} {}: Discord answered {status}",
            request.method, request.route
        )),
        401 => RestError::Unauthorized(format!("{status}: {message}")),
        403 => RestError::Final(DiscordError::Forbidden(forbidden(request, code, &message))),
        404 => RestError::Final(DiscordError::NotFound(not_found(request, code, &message))),
        400..=499 => {
            let details = body.map(form_errors).unwrap_or_default();
            RestError::Final(DiscordError::Invalid(if details.is_empty() {
                message
            } else {
                format!("{message}: {details}")
            }))
        }
        _ => RestError::Final(DiscordError::Unavailable(format!(
            "{} {}: unexpected answer {status}",
            request.method, request.route
        ))),
    }
}

/// How long a 429 asks to wait, and its scope. The body's `retry_after` is fractional
/// seconds; the `Retry-After` header is whole seconds (rounded up), so the body wins
/// when both are there.
fn rate_limit(headers: &HeaderMap, body: Option<&Value>) -> (Duration, Scope) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let from_body = body
        .and_then(|b| b["retry_after"].as_f64())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    let from_header = header("retry-after")
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    let global_in_body = body.is_some_and(|b| b["global"].as_bool() == Some(true));
    let retry_after = from_body.or(from_header).unwrap_or(DEFAULT_RETRY_AFTER);
    (retry_after, ratelimit::scope(headers, global_in_body))
}

/// A 403's text: names the permission when Discord says 50013 Missing Permissions and
/// the route says what it needs.
fn forbidden(request: &Request<'_>, code: Option<u64>, message: &str) -> String {
    match (code, request.needs) {
        (Some(50013), Some(needs)) => format!("Missing Permissions: the bot needs {needs}"),
        (Some(50001), _) => {
            "Missing Access: the bot cannot see this channel or guild (View Channel)".into()
        }
        _ => message.to_string(),
    }
}

/// A 404's text: the target Discord could not find, e.g. `member 42`.
fn not_found(request: &Request<'_>, code: Option<u64>, message: &str) -> String {
    let noun = match code {
        Some(10003) => Some("channel"),
        Some(10004) => Some("guild"),
        Some(10007) => Some("member"),
        Some(10008) => Some("message"),
        Some(10011) => Some("role"),
        Some(10013) => Some("user"),
        Some(10014) => Some("emoji"),
        Some(10015 | 10062) => Some("interaction"),
        Some(10026) => Some("ban"),
        _ => None,
    };
    let target = match noun {
        Some(noun) => request.targets.iter().find(|(n, _)| *n == noun),
        None if code.is_none() => request.targets.first(),
        None => None,
    };
    match (target, noun) {
        (Some((noun, id)), _) => format!("{noun} {id}"),
        (None, Some(noun)) => noun.to_string(),
        (None, None) => message.to_string(),
    }
}

/// Discord's `errors` tree of a 400 as `path: message` pairs, e.g.
/// `content: Must be 2000 or fewer in length.`
fn form_errors(body: &Value) -> String {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            return;
        };
        for (key, child) in object {
            if key == "_errors" {
                for error in child.as_array().into_iter().flatten() {
                    let text = error["message"].as_str().unwrap_or("invalid");
                    out.push(format!("{}: {text}", path.join(".")));
                }
            } else {
                path.push(key.clone());
                walk(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(&body["errors"], &mut Vec::new(), &mut out);
    out.truncate(5);
    out.join("; ")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An audit-log reason as the header carries it: at most 512 characters, UTF-8
/// percent-encoded (Discord decodes it; raw non-ASCII is not a valid header value).
fn encode_reason(reason: &str) -> String {
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    percent_encode(&reason, b"")
}

/// A path segment (an interaction token).
fn encode_path(segment: &str) -> String {
    percent_encode(segment, b"")
}

/// A reaction emoji as the route wants it: a unicode emoji percent-encoded, a custom
/// one as `name:id`.
fn encode_emoji(emoji: &str) -> String {
    let trimmed = emoji.trim().trim_start_matches('<').trim_end_matches('>');
    let trimmed = trimmed
        .strip_prefix("a:")
        .or_else(|| trimmed.strip_prefix(':'))
        .unwrap_or(trimmed);
    percent_encode(trimmed, b":")
}

/// A message body as Discord's JSON, for creating or editing a message and for the
/// `data` of an interaction response (type 4 or 7) or a follow-up.
///
/// - `content` is sent only when the body has one (an edit without content keeps the
///   message's text).
/// - `embeds` and `components` are always arrays, never `null` (Discord refuses
///   `components: null`); an edit therefore replaces both.
/// - `allowed_mentions` is `{"parse": ["users"]}`: a feature can mention users,
///   never ping @everyone or @here, and roles only those its grant lists
///   ([`Discord::send_message_pinging`](super::Discord::send_message_pinging) adds
///   them as `roles`).
pub(crate) fn message_json(body: &MessageBody) -> Value {
    let mut message = serde_json::Map::new();
    if let Some(content) = &body.content {
        message.insert("content".into(), json!(content));
    }
    message.insert(
        "embeds".into(),
        Value::Array(body.embeds.iter().map(embed_json).collect()),
    );
    message.insert(
        "components".into(),
        Value::Array(body.components.iter().map(action_row_json).collect()),
    );
    message.insert("allowed_mentions".into(), json!({ "parse": ["users"] }));
    Value::Object(message)
}

fn embed_json(embed: &Embed) -> Value {
    let mut out = serde_json::Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.into(), value);
        }
    };
    put("title", embed.title.as_ref().map(|t| json!(t)));
    put("description", embed.description.as_ref().map(|d| json!(d)));
    put("url", embed.url.as_ref().map(|u| json!(u)));
    put("color", embed.color.map(|c| json!(c & 0xFF_FF_FF)));
    put(
        "footer",
        embed.footer.as_ref().map(|f| json!({ "text": f })),
    );
    put(
        "thumbnail",
        embed.thumbnail_url.as_ref().map(|u| json!({ "url": u })),
    );
    put(
        "image",
        embed.image_url.as_ref().map(|u| json!({ "url": u })),
    );
    if !embed.fields.is_empty() {
        put(
            "fields",
            Some(Value::Array(
                embed
                    .fields
                    .iter()
                    .map(|f| json!({ "name": f.name, "value": f.value, "inline": f.inline }))
                    .collect(),
            )),
        );
    }
    Value::Object(out)
}

fn action_row_json(row: &ActionRow) -> Value {
    json!({
        "type": 1,
        "components": row.components.iter().map(component_json).collect::<Vec<_>>(),
    })
}

fn component_json(component: &UiComponent) -> Value {
    match component {
        UiComponent::Button(button) => {
            let style = match button.style {
                ButtonStyle::Primary => 1,
                ButtonStyle::Secondary => 2,
                ButtonStyle::Success => 3,
                ButtonStyle::Danger => 4,
                ButtonStyle::Link => 5,
            };
            let mut out = json!({
                "type": 2,
                "style": style,
                "label": button.label,
                "disabled": button.disabled,
            });
            if let Some(custom_id) = &button.custom_id {
                out["custom_id"] = json!(custom_id);
            }
            if let Some(url) = &button.url {
                out["url"] = json!(url);
            }
            if let Some(emoji) = &button.emoji {
                out["emoji"] = emoji_json(emoji);
            }
            out
        }
        UiComponent::SelectMenu(menu) => {
            let options: Vec<Value> = menu
                .options
                .iter()
                .map(|o| {
                    let mut option = json!({
                        "label": o.label,
                        "value": o.value,
                        "default": o.default,
                    });
                    if let Some(description) = &o.description {
                        option["description"] = json!(description);
                    }
                    option
                })
                .collect();
            let mut out = json!({
                "type": 3,
                "custom_id": menu.custom_id,
                "options": options,
                "min_values": menu.min_values,
                "max_values": menu.max_values,
            });
            if let Some(placeholder) = &menu.placeholder {
                out["placeholder"] = json!(placeholder);
            }
            out
        }
    }
}

/// A component emoji: `{"name": "👍"}`, or `{"name", "id"}` for `name:id` / `<:name:id>`.
fn emoji_json(emoji: &str) -> Value {
    let trimmed = emoji.trim().trim_start_matches('<').trim_end_matches('>');
    let (animated, rest) = match trimmed.strip_prefix("a:") {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix(':').unwrap_or(trimmed)),
    };
    match rest.rsplit_once(':') {
        Some((name, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            json!({ "name": name, "id": id, "animated": animated })
        }
        _ => json!({ "name": emoji }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::{Button, EmbedField, SelectMenu, SelectOption};

    /// An attachment server on 127.0.0.1: `/big` answers 4 KiB, `/moved`
    /// redirects to `/big`, anything else echoes whether it was sent an
    /// Authorization header.
    async fn attachment_server() -> String {
        use axum::http::HeaderMap;
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/big", get(|| async { vec![7u8; 4096] }))
            .route(
                "/moved",
                get(|| async { (StatusCode::FOUND, [(reqwest::header::LOCATION, "/big")]) }),
            )
            .route(
                "/echo",
                get(|headers: HeaderMap| async move {
                    format!("authorization: {}", headers.contains_key("authorization"))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn attachments_come_only_from_discords_cdn_or_the_api_host_without_the_token() {
        let base = attachment_server().await;
        let rest = RestClient::new(&format!("{base}/api/v10"), "secret-token").unwrap();
        let port = base.rsplit(':').next().unwrap();
        for url in [
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://cdn.discordapp.com/attachments/1/2/a.png".into(),
            "https://cdn.discordapp.com.evil.example/a.png".into(),
            "https://evil.example/a.png".into(),
            format!("https://127.0.0.1:{port}/echo"),
            format!("http://localhost:{port}/echo"),
            format!("http://127.0.0.1:{}/echo", port.parse::<u16>().unwrap() + 1),
            "file:///etc/passwd".into(),
            "not a url".into(),
        ] {
            assert!(
                matches!(
                    rest.download(&url, 1 << 20).await,
                    Err(DiscordError::Invalid(_))
                ),
                "{url}"
            );
        }
        let echoed = rest
            .download(&format!("{base}/echo"), 1 << 20)
            .await
            .unwrap();
        assert_eq!(echoed, b"authorization: false", "the token stays home");
        assert_eq!(
            rest.download(&format!("{base}/big"), 4096)
                .await
                .unwrap()
                .len(),
            4096
        );
        assert!(matches!(
            rest.download(&format!("{base}/big"), 4095).await,
            Err(DiscordError::QuotaExceeded(_))
        ));
        // A redirect is not followed (it could lead anywhere).
        assert!(
            rest.download(&format!("{base}/moved"), 1 << 20)
                .await
                .is_err()
        );
    }

    #[test]
    fn message_json_never_sends_null_components_and_limits_mentions() {
        let body = MessageBody {
            content: Some("hi @everyone".into()),
            embeds: vec![],
            components: vec![],
        };
        let json = message_json(&body);
        assert_eq!(json["components"], json!([]));
        assert_eq!(json["embeds"], json!([]));
        assert_eq!(json["allowed_mentions"], json!({ "parse": ["users"] }));
        assert_eq!(json["content"], "hi @everyone");

        let no_content = MessageBody {
            content: None,
            embeds: vec![],
            components: vec![],
        };
        assert!(message_json(&no_content).get("content").is_none());
    }

    #[test]
    fn message_json_maps_embeds_buttons_and_menus() {
        let body = MessageBody {
            content: None,
            embeds: vec![Embed {
                title: Some("T".into()),
                description: None,
                url: None,
                color: Some(0x12_34_56),
                fields: vec![EmbedField {
                    name: "n".into(),
                    value: "v".into(),
                    inline: true,
                }],
                footer: Some("f".into()),
                thumbnail_url: None,
                image_url: Some("https://x/y.png".into()),
            }],
            components: vec![
                ActionRow {
                    components: vec![UiComponent::Button(Button {
                        custom_id: Some("ok".into()),
                        label: "OK".into(),
                        style: ButtonStyle::Success,
                        url: None,
                        emoji: Some("party:123".into()),
                        disabled: false,
                    })],
                },
                ActionRow {
                    components: vec![UiComponent::SelectMenu(SelectMenu {
                        custom_id: "pick".into(),
                        placeholder: Some("Pick".into()),
                        options: vec![SelectOption {
                            label: "A".into(),
                            value: "a".into(),
                            description: None,
                            default: true,
                        }],
                        min_values: 1,
                        max_values: 1,
                    })],
                },
            ],
        };
        let json = message_json(&body);
        assert_eq!(
            json["embeds"][0],
            json!({
                "title": "T",
                "color": 0x12_34_56,
                "footer": { "text": "f" },
                "image": { "url": "https://x/y.png" },
                "fields": [{ "name": "n", "value": "v", "inline": true }],
            })
        );
        assert_eq!(
            json["components"][0],
            json!({ "type": 1, "components": [{
                "type": 2, "style": 3, "label": "OK", "disabled": false, "custom_id": "ok",
                "emoji": { "name": "party", "id": "123", "animated": false },
            }]})
        );
        assert_eq!(json["components"][1]["components"][0]["type"], 3);
        assert_eq!(
            json["components"][1]["components"][0]["options"][0],
            json!({ "label": "A", "value": "a", "default": true })
        );
    }

    #[test]
    fn reasons_emoji_and_tokens_are_encoded() {
        assert_eq!(
            encode_reason("spam & ads: bye"),
            "spam%20%26%20ads%3A%20bye"
        );
        assert_eq!(encode_reason("über"), "%C3%BCber");
        assert_eq!(encode_reason(&"x".repeat(600)).len(), 512);
        assert_eq!(encode_emoji("👍"), "%F0%9F%91%8D");
        assert_eq!(encode_emoji("<:party:123>"), "party:123");
        assert_eq!(encode_emoji("<a:party:123>"), "party:123");
        assert_eq!(encode_path("a/b"), "a%2Fb");
    }

    #[test]
    fn rate_limits_prefer_the_body_and_read_global() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        let body = json!({ "retry_after": 1.25, "global": false });
        assert_eq!(
            rate_limit(&headers, Some(&body)),
            (Duration::from_millis(1250), Scope::User)
        );
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
        assert_eq!(
            rate_limit(&headers, None),
            (Duration::from_secs(2), Scope::Global)
        );
        assert_eq!(
            rate_limit(&HeaderMap::new(), None),
            (DEFAULT_RETRY_AFTER, Scope::User)
        );
    }

    #[test]
    fn refusals_name_the_permission_or_the_target() {
        let request = Request::new(Method::PUT, "/r", "/r".into())
            .needs(NEEDS_MANAGE_ROLES)
            .target("member", 7)
            .target("role", 9);
        let forbidden = classify(
            &request,
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            Some(&json!({ "code": 50013, "message": "Missing Permissions" })),
        );
        assert_eq!(
            forbidden,
            RestError::Final(DiscordError::Forbidden(
                "Missing Permissions: the bot needs Manage Roles, and the role must be below \
                 the bot's highest role"
                    .into()
            ))
        );
        let missing_role = classify(
            &request,
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            Some(&json!({ "code": 10011, "message": "Unknown Role" })),
        );
        assert_eq!(
            missing_role,
            RestError::Final(DiscordError::NotFound("role 9".into()))
        );
        let invalid = classify(
            &request,
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            Some(&json!({ "code": 50035, "message": "Invalid Form Body",
                "errors": { "content": { "_errors": [{ "code": "BASE_TYPE_MAX_LENGTH",
                    "message": "Must be 2000 or fewer in length." }] } } })),
        );
        assert_eq!(
            invalid,
            RestError::Final(DiscordError::Invalid(
                "Invalid Form Body: content: Must be 2000 or fewer in length.".into()
            ))
        );
        assert!(matches!(
            classify(&request, StatusCode::BAD_GATEWAY, &HeaderMap::new(), None),
            RestError::Transient(_)
        ));
    }

    #[test]
    fn routes_name_their_major_parameter_and_interactions_skip_the_global_limit() {
        let send = Request::new(
            Method::POST,
            "/channels/{channel}/messages",
            "/channels/5/messages".into(),
        );
        let route = route_of(&send);
        assert_eq!(route.route, "POST /channels/{channel}/messages");
        assert_eq!((route.major.as_str(), route.global), ("5", true));
        let members = Request::new(
            Method::GET,
            "/guilds/{guild}/members",
            "/guilds/9/members?limit=5".into(),
        );
        assert_eq!(route_of(&members).major, "9");
        let followup = Request::new(
            Method::POST,
            "/webhooks/{application}/{token}",
            "/webhooks/1/tok".into(),
        );
        let route = route_of(&followup);
        assert_eq!((route.major.as_str(), route.global), ("1/tok", false));
    }

    #[test]
    fn debug_redacts_the_token() {
        let client = RestClient::new("http://127.0.0.1:9", "secret-token").unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(RestClient::new("ftp://x", "t").is_err());
        assert!(RestClient::new("http://x", " ").is_err());
    }
}
