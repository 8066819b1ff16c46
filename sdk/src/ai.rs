//! Chat completions from the model the platform's operator configured for
//! the guild's plan, or through the guild's own key (contract 0.1.4).
//!
//! Calling [`chat`] makes your component import `ai`, which requests it: the
//! guild's admin approves it on the dashboard (there is no
//! [`Capability`](crate::Capability) for it). Every call is metered in tokens
//! against daily caps per plan, per guild and per member; the answer comes
//! back as data and your feature decides what to post.
//!
//! ```no_run
//! use townes_sdk::ai::{self, ChatMessage, ChatRequest};
//! let answer = ai::chat(&ChatRequest::new(vec![
//!     ChatMessage::system("You are a helpful concierge."),
//!     ChatMessage::user("What are the server rules?"),
//! ]).max_tokens(300).for_member(42))?;
//! println!("{}", answer.content);
//! # Ok::<(), townes_sdk::ai::AiError>(())
//! ```
//!
//! Errors: [`AiError::Denied`] (not approved, or no model for the guild),
//! [`AiError::QuotaExceeded`] (its text names the cap and when it resets:
//! tell the member), [`AiError::InvalidArgument`], [`AiError::Unavailable`]
//! (the model failed or was too slow; later may work).

use crate::Snowflake;
pub use crate::bindings::townes::feature::ai::{
    AiError, ChatAnswer, ChatMessage, ChatRequest, ChatRole,
};
use crate::route;

/// The contract's bounds: messages per request, characters per message and
/// in all.
pub const MAX_MESSAGES: usize = 64;
/// Characters in one message.
pub const MAX_MESSAGE_CHARS: usize = 16_000;
/// Characters in all of a request's messages.
pub const MAX_TOTAL_CHARS: usize = 64_000;

impl ChatMessage {
    /// Instructions for the model.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::System,
            content: content.into(),
        }
    }

    /// What a member said.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::User,
            content: content.into(),
        }
    }

    /// What the model answered before.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

impl ChatRequest {
    /// `messages`, at most 256 tokens of answer, the model's temperature, for
    /// the guild as a whole.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            messages,
            max_tokens: 256,
            temperature: None,
            member_id: None,
        }
    }

    /// The most tokens the answer may take (the host may lower it).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// 0.0-2.0.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Counts the call against this member's daily cap too.
    pub fn for_member(mut self, member_id: Snowflake) -> Self {
        self.member_id = Some(member_id);
        self
    }
}

/// One chat completion.
pub fn chat(request: &ChatRequest) -> Result<ChatAnswer, AiError> {
    route!(
        wasm: crate::bindings::townes::feature::ai::chat(request),
        mock: crate::testing::ai_chat(request),
    )
}
