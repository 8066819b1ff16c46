//! A fake OpenAI-compatible chat-completions server for testing `ai` offline.
//! See the README for what it answers.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use townes_ai_sim::{AiSim, SimConfig};
//! let sim = AiSim::start(SimConfig::new()).await?;
//! // point the host at sim.base_url(); after a call:
//! let request = &sim.requests()[0];
//! assert_eq!(request.authorization.as_deref(), Some("Bearer sk-operator"));
//! # Ok(()) }
//! ```

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the simulator is set up. It always listens on a free port of 127.0.0.1.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The keys accepted as `Authorization: Bearer …`; empty: any, or none.
    pub keys: Vec<String>,
    /// The answer starts with the system prompt's first line (`[system: …]`).
    pub echo_system: bool,
}

impl SimConfig {
    /// Any key accepted, no echo of the system prompt.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One request, as received and answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

impl Recorded {
    /// The `content` of the request's messages of `role`, in order.
    pub fn contents(&self, role: &str) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str().map(str::to_string))
            .collect()
    }

    /// The system prompt (every system message, joined by newlines).
    pub fn system(&self) -> String {
        self.contents("system").join("\n")
    }
}

#[derive(Default)]
struct State_ {
    requests: Vec<Recorded>,
    delay: Duration,
    fail: Option<u16>,
    answer: Option<String>,
}

struct Inner {
    config: SimConfig,
    base_url: String,
    state: Mutex<State_>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// A running simulator. Cheap to clone; clones share one server.
#[derive(Clone)]
pub struct AiSim(Arc<Inner>);

impl AiSim {
    /// Binds a free port on 127.0.0.1 and serves in a background task.
    pub async fn start(config: SimConfig) -> std::io::Result<AiSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let sim = AiSim(Arc::new(Inner {
            config,
            base_url,
            state: Mutex::new(State_::default()),
            shutdown,
        }));
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(sim.clone());
        let mut stop = sim.0.shutdown.subscribe();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                eprintln!("AI simulator stopped serving: {e}");
            }
        });
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT/v1`: what `TOWNES_AI_BASE_URL` is set to.
    pub fn base_url(&self) -> String {
        self.0.base_url.clone()
    }

    fn state(&self) -> MutexGuard<'_, State_> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Waits this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Answers every request with `status` (an OpenAI-style error body) until
    /// [`AiSim::succeed`].
    pub fn fail_with(&self, status: u16) {
        self.state().fail = Some(status);
    }

    /// Answers normally again.
    pub fn succeed(&self) {
        self.state().fail = None;
    }

    /// Answers with `text` instead of the echo (cut to `max_tokens` as usual);
    /// `None`: the echo again.
    pub fn set_answer(&self, text: Option<&str>) {
        self.state().answer = text.map(str::to_string);
    }

    /// Stops serving.
    pub fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
    }
}

/// Tokens of a text as the simulator counts them: one per four characters.
pub fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn error(status: u16, message: String, kind: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "code": null}})),
    )
        .into_response()
}

async fn completions(State(sim): State<AiSim>, headers: HeaderMap, body: String) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (delay, fail, answer, n) = {
        let s = sim.state();
        (s.delay, s.fail, s.answer.clone(), s.requests.len() + 1)
    };
    let record = |status: u16| {
        sim.state().requests.push(Recorded {
            authorization: authorization.clone(),
            body: body.clone(),
            status,
        });
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if !sim.0.config.keys.is_empty() {
        let key = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if !sim.0.config.keys.iter().any(|k| k == key) {
            record(401);
            // As real providers do: part of the key sent, in the error text.
            let shown: String = key.chars().take(12).collect();
            return error(
                401,
                format!(
                    "Incorrect API key provided: {shown}****. You can find your API key at the provider."
                ),
                "invalid_request_error",
            );
        }
    }
    if let Some(status) = fail {
        record(status);
        return error(
            status,
            format!(
                "simulated failure {status} (key {})",
                authorization.as_deref().unwrap_or("none")
            ),
            "server_error",
        );
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let model = body["model"].as_str().unwrap_or("").to_string();
    if messages.is_empty() || model.is_empty() {
        record(400);
        return error(
            400,
            "`model` and `messages` are required".into(),
            "invalid_request_error",
        );
    }
    let content = |m: &Value| m["content"].as_str().unwrap_or("").to_string();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(content)
        .unwrap_or_default();
    let mut text = answer.unwrap_or_else(|| format!("Answer #{n} (model {model}): {last_user}"));
    if sim.0.config.echo_system
        && let Some(system) = messages.iter().find(|m| m["role"] == "system")
    {
        let first = content(system).lines().next().unwrap_or("").to_string();
        text = format!("[system: {first}] {text}");
    }
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(u64::MAX);
    let mut finish = "stop";
    if tokens(&text) > max_tokens {
        text = text.chars().take((max_tokens * 4) as usize).collect();
        finish = "length";
    }
    let prompt_tokens: u64 = messages.iter().map(|m| tokens(&content(m)) + 4).sum();
    let completion_tokens = tokens(&text);
    record(200);
    Json(json!({
        "id": format!("chatcmpl-sim-{n}"),
        "object": "chat.completion",
        "created": 1_800_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response()
}
