//! Discord's OAuth2 authorization-code flow, client side. The base URLs come from
//! the configuration, so tests and the playground log in against the simulator.

use crate::api::ApiConfig;
use crate::api::error::ApiError;
use serde::Deserialize;

/// The scopes we ask for: who the user is, and (for the dashboard's guild
/// picker) which guilds they are in. Nothing that can act for them.
pub const SCOPES: &str = "identify guilds";

#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    web_base: String,
    api_base: String,
}

/// The Discord user who logged in.
#[derive(Debug, Deserialize)]
pub struct DiscordUser {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl OAuthClient {
    /// `None` when login is not configured (no client id, secret or redirect URI);
    /// an error when it is half-configured.
    pub fn from_config(
        config: &ApiConfig,
        api_base: Option<&str>,
    ) -> anyhow::Result<Option<OAuthClient>> {
        let (id, secret, redirect) = (
            config.oauth_client_id.as_deref(),
            config.oauth_client_secret.as_deref(),
            config.oauth_redirect_uri.as_deref(),
        );
        let (Some(client_id), Some(client_secret), Some(redirect_uri)) = (id, secret, redirect)
        else {
            if id.is_some() || secret.is_some() || redirect.is_some() {
                anyhow::bail!(
                    "Discord login needs all of DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET and TOWNES_OAUTH_REDIRECT_URI"
                );
            }
            return Ok(None);
        };
        url::Url::parse(redirect_uri).map_err(|e| {
            anyhow::anyhow!("TOWNES_OAUTH_REDIRECT_URI `{redirect_uri}` is not a URL: {e}")
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(OAuthClient {
            http,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uri: redirect_uri.to_string(),
            web_base: config.discord_web_base.trim_end_matches('/').to_string(),
            api_base: api_base
                .unwrap_or(crate::discord::DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_string(),
        }))
    }

    /// Discord's consent page for this login attempt.
    pub fn authorize_url(&self, state: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth2/authorize", self.web_base))
            .expect("the web base was checked to be a URL prefix");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("prompt", "none");
        url.into()
    }

    /// Trades the code for a token, reads who logged in, and revokes the token
    /// at once: authorization later uses the bot's view of each guild, so the
    /// user's Discord token is never stored.
    pub async fn login(&self, code: &str) -> Result<DiscordUser, ApiError> {
        let answer = self
            .http
            .post(format!("{}/api/v10/oauth2/token", self.api_base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await
            .map_err(unreachable_discord)?;
        let status = answer.status();
        if status.as_u16() == 400 {
            return Err(ApiError::invalid(
                "/code",
                "Discord refused the code: it is unknown, used or expired; start the login again",
            ));
        }
        if !status.is_success() {
            return Err(ApiError::Unavailable {
                message: format!("Discord's token endpoint answered {status}"),
                hint: Some(
                    "check DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET, then try again".into(),
                ),
            });
        }
        let token: TokenAnswer = answer.json().await.map_err(unreachable_discord)?;
        let user = self
            .http
            .get(format!("{}/api/v10/users/@me", self.api_base))
            .bearer_auth(&token.access_token)
            .send()
            .await
            .map_err(unreachable_discord)?;
        if !user.status().is_success() {
            return Err(ApiError::Unavailable {
                message: format!("Discord's /users/@me answered {}", user.status()),
                hint: None,
            });
        }
        let user: DiscordUser = user.json().await.map_err(unreachable_discord)?;
        let revoke = self
            .http
            .post(format!("{}/api/v10/oauth2/token/revoke", self.api_base))
            .form(&[
                ("token", token.access_token.as_str()),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await;
        if let Err(e) = revoke {
            tracing::warn!(error = %e.without_url(), "could not revoke the login's Discord token; it expires on its own");
        }
        Ok(user)
    }
}

fn unreachable_discord(e: reqwest::Error) -> ApiError {
    ApiError::Unavailable {
        message: format!("cannot reach Discord: {}", e.without_url()),
        hint: Some("try again in a moment".into()),
    }
}
