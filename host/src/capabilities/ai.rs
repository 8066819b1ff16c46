//! `ai` (contract 0.1.4): chat completions from the model the operator
//! configured for the guild's plan, or through the guild's own key. Importing
//! the interface requests it; [`crate::grants::Grant::ai`] says whether the
//! guild's admin approved it.
//!
//! The work (caps, keys, metering, the provider call) is [`crate::ai::Ai`]'s;
//! this module checks the approval and keeps the wait on the model's answer
//! off the invocation's wall budget, up to the plan's `ai_wait_ms`.

use super::{Cap, Effect};
use crate::ai::{Ai, AiPlan};
use crate::runtime::wall::{Wait, WallClock};
use crate::store::Scope;
use crate::wit::townes::feature::ai::{AiError, ChatAnswer, ChatRequest, Host};
use std::sync::Arc;

/// What `ai` needs: whose call it is, the guild's plan, the AI service and
/// the invocation's clock.
pub struct AiCtx {
    pub scope: Scope,
    pub ai: Arc<Ai>,
    pub plan: AiPlan,
    pub(crate) wall: WallClock,
}

impl Host for Cap<'_, AiCtx> {
    async fn chat(&mut self, request: ChatRequest) -> Result<ChatAnswer, AiError> {
        const CALL: &str = "ai.chat";
        self.calls.begin_imported(CALL).map_err(AiError::from)?;
        let result = if self.calls.grant.ai {
            let ctx = &*self.ctx;
            ctx.wall
                .excluding_as(
                    Wait::Ai,
                    ctx.ai.chat(ctx.scope.guild_id, &ctx.plan, request),
                )
                .await
        } else {
            Err(AiError::Denied)
        };
        let (result, own_key) = match result {
            Ok((answer, own_key)) => (Ok(answer), own_key),
            Err(e) => (Err(e), false),
        };
        self.calls.finish(CALL, result, |a: &ChatAnswer| {
            Some(Effect::AiAnswered {
                model: a.model.clone(),
                prompt_tokens: a.prompt_tokens,
                completion_tokens: a.completion_tokens,
                own_key,
                truncated: a.truncated,
            })
        })
    }
}

impl From<crate::wit::Error> for AiError {
    fn from(e: crate::wit::Error) -> Self {
        use crate::wit::Error;
        match e {
            Error::Denied(_) => AiError::Denied,
            Error::QuotaExceeded(s) => AiError::QuotaExceeded(s),
            Error::InvalidArgument(s) => AiError::InvalidArgument(s),
            Error::NotFound(s) | Error::Unavailable(s) => AiError::Unavailable(s),
        }
    }
}

impl super::Refusal for AiError {
    fn describe(&self) -> String {
        match self {
            AiError::Denied => "denied(ai)".to_string(),
            AiError::QuotaExceeded(s) => format!("quota-exceeded: {s}"),
            AiError::InvalidArgument(s) => format!("invalid-argument: {s}"),
            AiError::Unavailable(s) => format!("unavailable: {s}"),
        }
    }
}
