//! The operator's AI settings: the OpenAI-compatible endpoint, its key, the
//! default model (a plan may name its own: `ai_model`), the secret tenants'
//! own keys are sealed with, and the bounds of every call.

use std::time::Duration;

/// How `ai` reaches a model. Read from the environment like every setting
/// (`TOWNES_AI_*`); without a base URL `ai` answers `unavailable` and the
/// rest of the platform runs as before.
#[derive(clap::Args, Clone, PartialEq)]
pub struct AiConfig {
    /// The OpenAI-compatible API's base URL, up to and including its version
    /// (`…/v1`): calls go to `{base}/chat/completions`. Unset: no AI.
    #[arg(long = "ai-base-url", env = "TOWNES_AI_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// The operator's API key for it (sent as `Authorization: Bearer …`);
    /// unset: no Authorization header (a local model server).
    #[arg(
        long = "ai-api-key",
        env = "TOWNES_AI_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,
    /// The model of every plan that names none of its own (`ai_model`).
    #[arg(long = "ai-model", env = "TOWNES_AI_MODEL", global = true)]
    pub model: Option<String>,
    /// The secret guilds' own API keys are sealed with at rest (at least 32
    /// characters; keep it like the database password). Unset: guilds cannot
    /// set a key of their own.
    #[arg(
        long = "ai-key-secret",
        env = "TOWNES_AI_KEY_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub key_secret: Option<String>,
    /// How long one call may take before it fails as `unavailable`.
    #[arg(
        long = "ai-timeout-seconds",
        env = "TOWNES_AI_TIMEOUT_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=600),
        global = true
    )]
    pub timeout_seconds: u64,
    /// The most tokens one answer may take, whatever a feature asks.
    #[arg(
        long = "ai-max-output-tokens",
        env = "TOWNES_AI_MAX_OUTPUT_TOKENS",
        default_value_t = 1024,
        global = true
    )]
    pub max_output_tokens: u32,
    /// The most characters of an answer handed to a feature (cut, `truncated`).
    #[arg(
        long = "ai-answer-max-chars",
        env = "TOWNES_AI_ANSWER_MAX_CHARS",
        default_value_t = 16_000,
        global = true
    )]
    pub answer_max_chars: usize,
    /// One member's daily cap as a share of the guild's, in percent, where
    /// the guild's admins set no member cap of their own.
    #[arg(
        long = "ai-member-share-percent",
        env = "TOWNES_AI_MEMBER_SHARE_PERCENT",
        default_value_t = 25,
        value_parser = clap::value_parser!(u8).range(1..=100),
        global = true
    )]
    pub member_share_percent: u8,
    /// AI calls in flight in this process, every guild together.
    #[arg(
        long = "ai-concurrency",
        env = "TOWNES_AI_CONCURRENCY",
        default_value_t = 16,
        global = true
    )]
    pub concurrency: u32,
    /// AI calls in flight for one guild in this process; more are refused
    /// as `unavailable` at once.
    #[arg(
        long = "ai-concurrency-per-guild",
        env = "TOWNES_AI_CONCURRENCY_PER_GUILD",
        default_value_t = 2,
        global = true
    )]
    pub concurrency_per_guild: u32,
}

impl Default for AiConfig {
    /// No endpoint: `ai` is unavailable.
    fn default() -> Self {
        AiConfig {
            base_url: None,
            api_key: None,
            model: None,
            key_secret: None,
            timeout_seconds: 30,
            max_output_tokens: 1024,
            answer_max_chars: 16_000,
            member_share_percent: 25,
            concurrency: 16,
            concurrency_per_guild: 2,
        }
    }
}

impl AiConfig {
    /// An endpoint with a key and a default model (tests, the playground).
    pub fn endpoint(base_url: impl Into<String>, api_key: Option<&str>, model: &str) -> Self {
        AiConfig {
            base_url: Some(base_url.into()),
            api_key: api_key.map(str::to_string),
            model: Some(model.to_string()),
            ..AiConfig::default()
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

impl std::fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &redacted(&self.api_key))
            .field("model", &self.model)
            .field("key_secret", &redacted(&self.key_secret))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("answer_max_chars", &self.answer_max_chars)
            .field("member_share_percent", &self.member_share_percent)
            .field("concurrency", &self.concurrency)
            .field("concurrency_per_guild", &self.concurrency_per_guild)
            .finish()
    }
}
