//! The `ai` capability's engine: chat completions from the operator's
//! OpenAI-compatible endpoint (or through a guild's own key), metered in
//! tokens and bounded by daily caps per plan, per guild and per member.
//!
//! One call:
//! 1. the request is checked against the contract's bounds (64 messages,
//!    16,000 characters each, 64,000 in all, temperature 0-2);
//! 2. the key is chosen: the guild's own ([`keys`]) or the operator's;
//! 3. the caps that apply are read ([`caps`]) and `max-tokens` is lowered to
//!    what they leave and to the operator's ceiling;
//! 4. the worst case (the prompt's estimate plus `max-tokens`) is reserved in
//!    the store's ledger, a conditional upsert per row that refuses past a
//!    cap, so concurrent calls of any process cannot go past it;
//! 5. the call is made under the per-guild and host-wide concurrency bounds
//!    with a hard timeout;
//! 6. the reservation is settled to the tokens the provider counted (released
//!    when the call failed) and the guild's usage counter for the day gains
//!    them: `/usage/{guildId}/daily` shows them, billing reports those spent
//!    through the operator's key.
//!
//! Tokens through a guild's own key are metered and shown, and the guild's
//! and members' caps apply to them, but the plan's cap does not (the tenant
//! pays its provider) and billing does not report them (ADR 0026).

pub mod caps;
pub mod client;
pub mod config;
pub mod keys;

pub use config::AiConfig;
pub use keys::{KeySealer, TenantKey};

use crate::store::{Store, TokenClaim};
use crate::wit::townes::feature::ai::{AiError, ChatAnswer, ChatRequest, ChatRole};
use caps::{Caps, Refusal};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The contract's bounds on a request (`wit/feature.wit`, `interface ai`).
pub const MAX_MESSAGES: usize = 64;
pub const MAX_MESSAGE_CHARS: usize = 16_000;
pub const MAX_TOTAL_CHARS: usize = 64_000;
/// How long a call waits for a host-wide slot before it is `unavailable`.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// What a guild's plan says about AI.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AiPlan {
    /// Tokens per UTC day through the operator's key; `None`: no cap.
    pub tokens_per_day: Option<u64>,
    /// The model; `None`: the operator's default.
    pub model: Option<String>,
}

impl AiPlan {
    pub fn of(plan: &crate::runtime::Plan) -> AiPlan {
        AiPlan {
            tokens_per_day: plan.ai_tokens_per_day,
            model: plan.ai_model.clone(),
        }
    }
}

/// Why a guild's key could not be set.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("guilds cannot set an AI key of their own on this platform")]
    NoSecret,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The AI service one runtime shares among its invocations.
pub struct Ai {
    config: AiConfig,
    client: Option<client::Client>,
    sealer: Option<KeySealer>,
    store: Store,
    slots: Semaphore,
    per_guild: Mutex<HashMap<u64, u32>>,
}

impl std::fmt::Debug for Ai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ai").field("config", &self.config).finish()
    }
}

/// A call's place among the guild's calls in flight; gives it back when dropped.
struct GuildSlot<'a> {
    ai: &'a Ai,
    guild_id: u64,
}

impl Drop for GuildSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.ai.per_guild.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.guild_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.guild_id);
            }
        }
    }
}

impl Ai {
    /// The service for `config`. A secret too short to seal keys with is an
    /// error: starting without it would silently refuse every tenant key.
    pub fn new(config: AiConfig, store: Store) -> Result<Ai, String> {
        let sealer = config
            .key_secret
            .as_deref()
            .map(KeySealer::from_secret)
            .transpose()?;
        let client = config.base_url.as_deref().map(client::Client::new);
        Ok(Ai {
            slots: Semaphore::new(config.concurrency.max(1) as usize),
            per_guild: Mutex::new(HashMap::new()),
            client,
            sealer,
            store,
            config,
        })
    }

    pub fn config(&self) -> &AiConfig {
        &self.config
    }

    /// Whether an endpoint is configured.
    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Seals and stores a guild's own key.
    pub async fn set_key(&self, guild_id: u64, key: &str, set_by: &str) -> Result<(), KeyError> {
        let sealer = self.sealer.as_ref().ok_or(KeyError::NoSecret)?;
        let key = TenantKey::parse(key).map_err(KeyError::Invalid)?;
        let sealed = sealer.seal(guild_id, &key);
        self.store
            .set_guild_ai_key(guild_id, &sealed, set_by)
            .await?;
        Ok(())
    }

    /// The guild's own key, if it set one that opens.
    fn guild_key(&self, guild_id: u64, sealed: &[u8]) -> Result<TenantKey, AiError> {
        let unreadable = || {
            tracing::warn!(
                guild = guild_id,
                "a guild's own AI key cannot be opened (TOWNES_AI_KEY_SECRET unset or changed)"
            );
            AiError::Unavailable(
                "this server's own AI key cannot be used; its admins should set it again on the dashboard".into(),
            )
        };
        let sealer = self.sealer.as_ref().ok_or_else(unreadable)?;
        sealer.open(guild_id, sealed).ok_or_else(unreadable)
    }

    /// One chat completion for a feature of `guild_id` (see the module doc).
    pub async fn chat(
        &self,
        guild_id: u64,
        plan: &AiPlan,
        request: ChatRequest,
    ) -> Result<(ChatAnswer, bool), AiError> {
        let prompt_estimate = check(&request)?;
        let Some(client) = &self.client else {
            return Err(AiError::Unavailable(
                "no AI model is configured on this platform (its operator sets TOWNES_AI_BASE_URL)"
                    .into(),
            ));
        };
        let Some(model) = plan.model.as_deref().or(self.config.model.as_deref()) else {
            return Err(AiError::Unavailable(
                "no AI model is configured for this server's plan".into(),
            ));
        };
        let settings = self.store.guild_ai(guild_id).await.map_err(store_failed)?;
        let own_key = match &settings.key_sealed {
            Some(sealed) => Some(self.guild_key(guild_id, sealed)?),
            None => None,
        };
        let claim = TokenClaim {
            guild_id,
            day: chrono::Utc::now().date_naive(),
            member_id: request.member_id,
            plan: own_key.is_none(),
        };
        let caps = Caps::new(plan, &settings, self.config.member_share_percent, &claim);
        let ceiling = request.max_tokens.min(self.config.max_output_tokens);
        let max_tokens = caps
            .fit(&self.store, &claim, prompt_estimate, ceiling)
            .await
            .map_err(|r| refusal(r, &caps))?;
        let reserved = prompt_estimate + u64::from(max_tokens);
        if !self
            .store
            .reserve_ai_tokens(&claim, reserved, &caps.limits())
            .await
            .map_err(store_failed)?
        {
            // Another call took what was left since `fit` looked.
            let why = caps
                .fit(&self.store, &claim, reserved, 1)
                .await
                .err()
                .unwrap_or(Refusal::Busy);
            return Err(refusal(why, &caps));
        }
        let result = self
            .call(
                client,
                guild_id,
                own_key.as_ref(),
                model,
                &request,
                max_tokens,
            )
            .await;
        let used = match &result {
            Ok(c) => c
                .tokens
                .map_or_else(|| prompt_estimate + estimate(&c.content), |(p, c)| p + c),
            Err(_) => 0,
        };
        if let Err(e) = self.store.settle_ai_tokens(&claim, reserved, used).await {
            tracing::error!(guild = guild_id, error = %e, tokens = used, "could not record AI tokens");
        }
        let completion = result?;
        let (prompt_tokens, completion_tokens) = completion
            .tokens
            .unwrap_or((prompt_estimate, estimate(&completion.content)));
        let (content, cut) = cut_to(completion.content, self.config.answer_max_chars);
        Ok((
            ChatAnswer {
                content,
                model: completion.model.unwrap_or_else(|| model.to_string()),
                prompt_tokens: clamp32(prompt_tokens),
                completion_tokens: clamp32(completion_tokens),
                truncated: cut || completion.cut,
            },
            own_key.is_some(),
        ))
    }

    /// The provider call, within the guild's and the host's concurrency.
    async fn call(
        &self,
        client: &client::Client,
        guild_id: u64,
        key: Option<&TenantKey>,
        model: &str,
        request: &ChatRequest,
        max_tokens: u32,
    ) -> Result<client::Completion, AiError> {
        let _guild = self.guild_slot(guild_id)?;
        let _slot = tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                AiError::Unavailable(
                    "the platform's AI calls are all busy; try again shortly".into(),
                )
            })?;
        let messages: Vec<client::Message<'_>> = request
            .messages
            .iter()
            .map(|m| client::Message {
                role: match m.role {
                    ChatRole::System => "system",
                    ChatRole::User => "user",
                    ChatRole::Assistant => "assistant",
                },
                content: &m.content,
            })
            .collect();
        let key = key
            .map(TenantKey::expose)
            .or(self.config.api_key.as_deref());
        client
            .chat(
                key,
                model,
                &messages,
                max_tokens,
                request.temperature,
                self.config.timeout(),
            )
            .await
            .map_err(|e| {
                tracing::warn!(guild = guild_id, error = %e, "an AI call failed");
                AiError::Unavailable(e.to_string())
            })
    }

    fn guild_slot(&self, guild_id: u64) -> Result<GuildSlot<'_>, AiError> {
        let mut map = self.per_guild.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(guild_id).or_insert(0);
        if *n >= self.config.concurrency_per_guild.max(1) {
            return Err(AiError::Unavailable(format!(
                "this server already has {n} AI calls running; try again shortly"
            )));
        }
        *n += 1;
        Ok(GuildSlot { ai: self, guild_id })
    }
}

fn store_failed(e: crate::store::StoreError) -> AiError {
    tracing::error!(error = %e, "the AI token ledger failed");
    AiError::Unavailable("AI usage cannot be recorded right now; try again later".into())
}

fn refusal(why: Refusal, caps: &Caps) -> AiError {
    match why {
        Refusal::Busy => AiError::Unavailable(
            "this server's AI calls are using what is left of today's tokens; try again shortly"
                .into(),
        ),
        other => AiError::QuotaExceeded(caps.describe(&other, chrono::Utc::now())),
    }
}

/// Checks a request against the contract; returns its prompt's token estimate.
fn check(request: &ChatRequest) -> Result<u64, AiError> {
    let invalid = |s: String| Err(AiError::InvalidArgument(s));
    if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES {
        return invalid(format!(
            "messages: send 1 to {MAX_MESSAGES}, not {}",
            request.messages.len()
        ));
    }
    let mut total = 0;
    for (i, m) in request.messages.iter().enumerate() {
        let chars = m.content.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return invalid(format!(
                "messages[{i}]: {chars} characters; at most {MAX_MESSAGE_CHARS}"
            ));
        }
        total += chars;
    }
    if total > MAX_TOTAL_CHARS {
        return invalid(format!(
            "messages: {total} characters in all; at most {MAX_TOTAL_CHARS}"
        ));
    }
    if request.max_tokens == 0 {
        return invalid("max-tokens: at least 1".into());
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return invalid(format!("temperature: {t} is outside 0.0-2.0"));
    }
    Ok(request
        .messages
        .iter()
        .map(|m| estimate(&m.content) + 4)
        .sum::<u64>()
        + 3)
}

/// A generous estimate of a text's tokens: a token per three ASCII
/// characters, one per other character (CJK runs near that).
pub fn estimate(text: &str) -> u64 {
    let (ascii, other) = text.chars().fold((0u64, 0u64), |(a, o), c| {
        if c.is_ascii() { (a + 1, o) } else { (a, o + 1) }
    });
    ascii.div_ceil(3) + other
}

/// `text` cut to `max` characters; whether it was cut.
fn cut_to(text: String, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (text[..at].to_string(), true),
        None => (text, false),
    }
}

fn clamp32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
