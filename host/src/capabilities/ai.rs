//! `ai` (contract 0.1.4): chat completions from the model the operator
//! configured for the guild's plan, or through the guild's own key. Importing
//! the interface requests it; [`crate::grants::Grant::ai`] says whether the
//! guild's admin approved it.

use super::{Cap, Effect};
use crate::store::Scope;
use crate::wit::townes::feature::ai::{AiError, ChatAnswer, ChatRequest, Host};

/// What `ai` needs: whose call it is.
pub struct AiCtx {
    pub scope: Scope,
}

impl Host for Cap<'_, AiCtx> {
    async fn chat(&mut self, _request: ChatRequest) -> Result<ChatAnswer, AiError> {
        const CALL: &str = "ai.chat";
        self.calls.begin_imported(CALL).map_err(AiError::from)?;
        let result = if self.calls.grant.ai {
            Err(AiError::Unavailable(
                "no model is configured on this platform".into(),
            ))
        } else {
            Err(AiError::Denied)
        };
        self.calls
            .finish_imported(CALL, result, |_: &ChatAnswer| None::<Effect>)
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
