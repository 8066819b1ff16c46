//! The API's settings, from flags or the environment (`townes api --help` lists them).

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where and how the dashboard API listens, and how it logs people in. `Debug`
/// leaves the client secret out.
#[derive(clap::Args, Clone)]
pub struct ApiConfig {
    /// Address of the dashboard API.
    #[arg(
        long = "api-addr",
        env = "TOWNES_API_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub addr: SocketAddr,
    /// Browser origins allowed to call the API with credentials (comma-separated,
    /// e.g. `https://app.example.com`). Empty: no cross-origin access.
    #[arg(
        long = "cors-origins",
        env = "TOWNES_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// The OAuth2 client id (the application id in Discord's developer portal).
    #[arg(long = "oauth-client-id", env = "DISCORD_CLIENT_ID")]
    pub oauth_client_id: Option<String>,
    /// The OAuth2 client secret (developer portal → OAuth2).
    #[arg(
        long = "oauth-client-secret",
        env = "DISCORD_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub oauth_client_secret: Option<String>,
    /// Where Discord sends the browser back after login: the dashboard page that
    /// posts `code` and `state` to `/auth/discord/callback`. Must be registered in
    /// the developer portal.
    #[arg(long = "oauth-redirect-uri", env = "TOWNES_OAUTH_REDIRECT_URI")]
    pub oauth_redirect_uri: Option<String>,
    /// Discord's web origin, where the login page is (`/oauth2/authorize`).
    #[arg(
        long = "discord-web-base",
        env = "DISCORD_WEB_BASE",
        default_value = "https://discord.com"
    )]
    pub discord_web_base: String,
    /// Mark cookies `Secure` (HTTPS only). Turn off only for plain-HTTP local
    /// development.
    #[arg(long = "cookie-secure", env = "TOWNES_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Requests per minute allowed from one IP address.
    #[arg(
        long = "rate-limit-ip",
        env = "TOWNES_RATE_LIMIT_IP",
        default_value_t = 600
    )]
    pub rate_limit_ip: u32,
    /// Requests per minute allowed for one signed-in user or API key.
    #[arg(
        long = "rate-limit-key",
        env = "TOWNES_RATE_LIMIT_KEY",
        default_value_t = 1200
    )]
    pub rate_limit_key: u32,
    /// WebSocket messages per minute allowed for one signed-in user or API key,
    /// across all their sockets.
    #[arg(
        long = "rate-limit-ws",
        env = "TOWNES_RATE_LIMIT_WS",
        default_value_t = 120
    )]
    pub rate_limit_ws: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated
    /// addresses or CIDR ranges, e.g. `10.0.0.0/8,192.0.2.7`). Empty: the
    /// header is ignored and the peer address is the client.
    #[arg(
        long = "trusted-proxies",
        env = "TOWNES_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// How often an open WebSocket re-checks its caller's session or key and
    /// rights to each followed guild (tests shorten it).
    #[arg(skip = WS_RECHECK)]
    pub ws_recheck: Duration,
    /// Self-hosting licences: activation and lease refresh (off without a
    /// signing key).
    #[command(flatten)]
    pub licensing: crate::licensing::server::ServerConfig,
    /// Retention and the offboarding flows' delays.
    #[command(flatten)]
    pub offboarding: crate::offboarding::OffboardingConfig,
}

/// A proxy address (one host) or range.
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR range like 10.0.0.0/8"))
}

/// The default of [`ApiConfig::ws_recheck`].
pub const WS_RECHECK: Duration = Duration::from_secs(30);

/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a login may take between `/auth/discord/login` and the callback.
pub const OAUTH_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long a member's rights in a guild are trusted before Discord is asked again.
pub const RIGHTS_TTL: Duration = Duration::from_secs(30);

impl ApiConfig {
    /// Defaults for tests and the playground: any free port, no cross-origin access.
    pub fn local() -> ApiConfig {
        ApiConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cors_origins: Vec::new(),
            oauth_client_id: None,
            oauth_client_secret: None,
            oauth_redirect_uri: None,
            discord_web_base: "https://discord.com".into(),
            cookie_secure: true,
            rate_limit_ip: 600,
            rate_limit_key: 1200,
            rate_limit_ws: 120,
            trusted_proxies: Vec::new(),
            ws_recheck: WS_RECHECK,
            licensing: Default::default(),
            offboarding: Default::default(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("addr", &self.addr)
            .field("cors_origins", &self.cors_origins)
            .field("oauth_client_id", &self.oauth_client_id)
            .field(
                "oauth_client_secret",
                &self.oauth_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("oauth_redirect_uri", &self.oauth_redirect_uri)
            .field("discord_web_base", &self.discord_web_base)
            .field("cookie_secure", &self.cookie_secure)
            .field("rate_limit_ip", &self.rate_limit_ip)
            .field("rate_limit_key", &self.rate_limit_key)
            .field("rate_limit_ws", &self.rate_limit_ws)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ws_recheck", &self.ws_recheck)
            .field("licensing", &self.licensing)
            .field("offboarding", &self.offboarding)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_client_secret() {
        let config = ApiConfig {
            oauth_client_secret: Some("hunter2-secret".into()),
            ..ApiConfig::local()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn trusted_proxies_are_hosts_or_ranges() {
        assert_eq!(
            parse_proxy(" 10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy("2001:db8::7").unwrap(),
            "2001:db8::7/128".parse::<IpNet>().unwrap()
        );
        assert!(parse_proxy("proxy.internal").unwrap_err().contains("CIDR"));
    }
}
