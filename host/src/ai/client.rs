//! The OpenAI-compatible chat-completions call: one shared HTTP client, a
//! timeout, a cap on the answer's bytes, and errors that never carry what the
//! provider sent back (a provider may echo part of a key in its error text).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest response body read from the provider.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Serialize)]
pub struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: &'a [Message<'a>],
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<AnswerMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// What the provider answered.
#[derive(Debug)]
pub struct Completion {
    pub content: String,
    pub model: Option<String>,
    /// `None` when the provider sent no `usage`.
    pub tokens: Option<(u64, u64)>,
    /// The provider stopped at `max_tokens`.
    pub cut: bool,
}

/// Why a call failed, in words fit for the feature and the logs: no part of
/// the provider's answer, no key.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the AI provider could not be reached")]
    Unreachable,
    #[error("the AI provider refused the API key (HTTP {0})")]
    Unauthorized(u16),
    #[error("the AI provider is rate limiting these calls (HTTP 429); try again later")]
    RateLimited,
    #[error("the AI provider refused the request (HTTP {0})")]
    Refused(u16),
    #[error("the AI provider failed (HTTP {0})")]
    Failed(u16),
    #[error("the AI provider's answer could not be read: {0}")]
    Malformed(&'static str),
}

/// The provider's endpoint and the shared client.
pub struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a TLS backend is compiled in");
        Client {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
        }
    }

    /// One chat completion. `key` goes into the `Authorization` header and
    /// nowhere else.
    pub async fn chat(
        &self,
        key: Option<&str>,
        model: &str,
        messages: &[Message<'_>],
        max_tokens: u32,
        temperature: Option<f32>,
        timeout: Duration,
    ) -> Result<Completion, UpstreamError> {
        let body = Body {
            model,
            messages,
            max_tokens,
            temperature,
            stream: false,
        };
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let call = async {
            let mut response = request
                .send()
                .await
                .map_err(|_| UpstreamError::Unreachable)?;
            let status = response.status().as_u16();
            match status {
                200..=299 => {}
                401 | 403 => return Err(UpstreamError::Unauthorized(status)),
                429 => return Err(UpstreamError::RateLimited),
                400..=499 => return Err(UpstreamError::Refused(status)),
                _ => return Err(UpstreamError::Failed(status)),
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|_| UpstreamError::Unreachable)?
            {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(UpstreamError::Malformed("larger than 1 MiB"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))??;
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|_| UpstreamError::Malformed("not JSON"))?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or(UpstreamError::Malformed("no choices"))?;
        Ok(Completion {
            content: choice.message.and_then(|m| m.content).unwrap_or_default(),
            model: answer.model,
            tokens: answer.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
            cut: choice.finish_reason.as_deref() == Some("length"),
        })
    }
}
