//! The HTTP side: Stripe's `/v1` API and the hosted pages behind the URLs it
//! hands out.
//!
//! One handler takes every `/v1` request and, holding the account's lock for the
//! whole request (so two requests with one idempotency key cannot both run),
//! answers in Stripe's order: outage (503), API key (401), idempotency
//! (replay or 400 `idempotency_error`), then the endpoint. Every answer is
//! recorded.

use crate::form::{Form, object};
use crate::ids::now;
use crate::state::{Customer, LineItem, State, StoredResponse};
use crate::{MeterEvent, Recorded, SimError, StripeSim};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Sim};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub fn router(sim: StripeSim) -> Router {
    Router::new()
        .route("/checkout/{id}", get(checkout_page))
        .route("/checkout/{id}/complete", post(checkout_complete))
        .route("/portal/{id}", get(portal_page))
        .fallback(api)
        .with_state(sim)
}

/// An error the way Stripe answers it: `{"error": {type, code?, param?, message}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: Value,
    /// `Stripe-Should-Retry`, when Stripe says.
    pub should_retry: Option<bool>,
}

impl ApiError {
    pub fn new(
        status: u16,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let mut error = json!({ "type": kind, "message": message.into() });
        if let Some(code) = code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = param {
            error["param"] = json!(param);
        }
        Self {
            status,
            body: json!({ "error": error }),
            should_retry: None,
        }
    }

    fn invalid(code: Option<&str>, param: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", code, param, message)
    }

    fn missing(param: &str) -> Self {
        Self::invalid(
            Some("parameter_missing"),
            Some(param),
            format!("Missing required param: {param}."),
        )
    }

    /// `resource_missing`: 400 for an id given as a parameter, 404 for one in
    /// the path.
    fn no_such(status: u16, kind: &str, id: &str, param: &str) -> Self {
        Self::new(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            format!("No such {kind}: '{id}'"),
        )
    }

    fn invalid_integer(param: &str, value: &str) -> Self {
        Self::invalid(
            Some("parameter_invalid_integer"),
            Some(param),
            format!("Invalid integer: {value}"),
        )
    }

    fn retry(mut self, should: bool) -> Self {
        self.should_retry = Some(should);
        self
    }
}

/// What a `/v1` request is answered.
struct Answer {
    status: u16,
    body: String,
    should_retry: Option<bool>,
    /// The id of the request whose answer this replays.
    replay_of: Option<String>,
}

impl Answer {
    fn error(e: ApiError) -> Self {
        Answer {
            status: e.status,
            body: pretty(&e.body),
            should_retry: e.should_retry,
            replay_of: None,
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json")
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn api(
    Sim(sim): Sim<StripeSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let request_id = sim.0.ids.make("req_", 14);
    if path != "/v1" && !path.starts_with("/v1/") {
        let e = unrecognized(method.as_str(), &path);
        return respond(Answer::error(e), &request_id, None, None);
    }
    let form = Form::parse(&body);
    let key = header_str(&headers, "idempotency-key");
    let version = header_str(&headers, "stripe-version");
    let answer = {
        let mut st = sim.state();
        let answer = answer(
            &sim,
            &mut st,
            method.as_str(),
            &path,
            &headers,
            &form,
            key.as_deref(),
            &request_id,
        );
        st.requests.push(Recorded {
            method: method.as_str().to_string(),
            path,
            idempotency_key: key.clone(),
            stripe_version: version.clone(),
            form: form.0,
            status: answer.status,
            replayed: answer.replay_of.is_some(),
        });
        answer
    };
    respond(answer, &request_id, key.as_deref(), version.as_deref())
}

fn respond(answer: Answer, request_id: &str, key: Option<&str>, version: Option<&str>) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("request-id", request_id);
    if let Some(key) = key {
        set("idempotency-key", key);
    }
    set("stripe-version", version.unwrap_or(crate::API_VERSION));
    if let Some(original) = &answer.replay_of {
        set("idempotent-replayed", "true");
        set("original-request", original);
    }
    if let Some(retry) = answer.should_retry {
        set("stripe-should-retry", if retry { "true" } else { "false" });
    }
    response
}

#[allow(clippy::too_many_arguments)]
fn answer(
    sim: &StripeSim,
    st: &mut State,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    form: &Form,
    key: Option<&str>,
    request_id: &str,
) -> Answer {
    if st.unreachable {
        return Answer::error(
            ApiError::new(
                503,
                "api_error",
                None,
                None,
                "Stripe is unavailable (the simulator is set unreachable).",
            )
            .retry(true),
        );
    }
    if let Err(e) = authenticate(sim, headers) {
        return Answer::error(e);
    }
    let key = key.filter(|_| method == "POST");
    if let Some(key) = key
        && let Some(stored) = st.idempotency.get(key)
    {
        if stored.method == method && stored.path == path && stored.params == form.sorted() {
            let replay = Answer {
                status: stored.status,
                body: stored.body.clone(),
                should_retry: None,
                replay_of: Some(stored.request_id.clone()),
            };
            st.replays += 1;
            return replay;
        }
        return Answer::error(ApiError::new(
            400,
            "idempotency_error",
            None,
            None,
            format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{key}' if you meant to \
                 execute a different request."
            ),
        ));
    }
    let answer = match dispatch(sim, st, method, path, form) {
        Ok(body) => Answer {
            status: 200,
            body: pretty(&body),
            should_retry: None,
            replay_of: None,
        },
        Err(e) => Answer::error(e),
    };
    // Stripe keeps the result of a request that ran; one refused by validation
    // ran nothing, so a retry with the key runs again.
    if let Some(key) = key
        && (200..300).contains(&answer.status)
    {
        st.idempotency.insert(
            key.to_string(),
            StoredResponse {
                method: method.to_string(),
                path: path.to_string(),
                params: form.sorted(),
                status: answer.status,
                body: answer.body.clone(),
                request_id: request_id.to_string(),
            },
        );
    }
    if st.lose_responses > 0 {
        st.lose_responses -= 1;
        return Answer::error(
            ApiError::new(
                502,
                "api_error",
                None,
                None,
                "The answer was lost on the way back (simulated); the request was carried out.",
            )
            .retry(true),
        );
    }
    answer
}

fn authenticate(sim: &StripeSim, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(key) if key == sim.0.config.secret_key => Ok(()),
        Some(key) => {
            let tail: String = key
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(ApiError::new(
                401,
                "invalid_request_error",
                None,
                None,
                format!("Invalid API Key provided: sk_test_****{tail}"),
            ))
        }
        None => Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            None,
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY').",
        )),
    }
}

fn unrecognized(method: &str, path: &str) -> ApiError {
    ApiError::new(
        404,
        "invalid_request_error",
        None,
        None,
        format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
             or we can help at https://support.stripe.com/."
        ),
    )
}

fn dispatch(
    sim: &StripeSim,
    st: &mut State,
    method: &str,
    path: &str,
    form: &Form,
) -> Result<Value, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    match (method, segments.as_slice()) {
        ("POST", ["customers"]) => create_customer(sim, st, form),
        ("GET", ["customers", id]) => st
            .customer(id)
            .map(Customer::to_json)
            .ok_or_else(|| ApiError::no_such(404, "customer", id, "id")),
        ("POST", ["checkout", "sessions"]) => create_checkout_session(sim, st, form),
        ("GET", ["checkout", "sessions", id]) => st
            .session(id)
            .map(|s| s.to_json(&sim.0.base_url))
            .ok_or_else(|| ApiError::no_such(404, "checkout.session", id, "session")),
        ("GET", ["subscriptions", id]) => st
            .subscription(id)
            .map(|s| s.to_json())
            .ok_or_else(|| ApiError::no_such(404, "subscription", id, "id")),
        ("POST", ["billing_portal", "sessions"]) => create_portal_session(sim, st, form),
        ("POST", ["billing", "meter_events"]) => create_meter_event(sim, st, form),
        _ => Err(unrecognized(method, path)),
    }
}

fn existing_customer<'a>(st: &State, form: &'a Form, param: &str) -> Result<&'a str, ApiError> {
    let id = form.get(param).ok_or_else(|| ApiError::missing(param))?;
    if st.customer(id).is_none() {
        return Err(ApiError::no_such(400, "customer", id, param));
    }
    Ok(id)
}

fn create_customer(sim: &StripeSim, st: &mut State, form: &Form) -> Result<Value, ApiError> {
    let customer = Customer {
        id: sim.0.ids.make("cus_", 14),
        created: now(),
        email: form.get("email").map(str::to_string),
        name: form.get("name").map(str::to_string),
        metadata: form.hash("metadata"),
    };
    let json = customer.to_json();
    st.customers.push(customer);
    Ok(json)
}

fn create_checkout_session(
    sim: &StripeSim,
    st: &mut State,
    form: &Form,
) -> Result<Value, ApiError> {
    match form.get("mode") {
        None => return Err(ApiError::missing("mode")),
        Some("subscription") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                None,
                Some("mode"),
                format!("The simulator only supports mode=subscription (got '{other}')."),
            ));
        }
    }
    let customer = existing_customer(st, form, "customer")?.to_string();
    let mut line_items = Vec::new();
    for (index, fields) in form.list("line_items") {
        let param = format!("line_items[{index}][price]");
        let price = fields
            .get("price")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::missing(&param))?;
        if !sim.0.config.prices.iter().any(|p| p == price) {
            return Err(ApiError::no_such(400, "price", price, &param));
        }
        let quantity = match fields.get("quantity").filter(|q| !q.is_empty()) {
            None => 1,
            Some(q) => q.parse::<u64>().ok().filter(|q| *q >= 1).ok_or_else(|| {
                ApiError::invalid_integer(&format!("line_items[{index}][quantity]"), q)
            })?,
        };
        line_items.push(LineItem {
            price: price.clone(),
            quantity,
        });
    }
    if line_items.is_empty() {
        return Err(ApiError::missing("line_items"));
    }
    let trial_param = "subscription_data[trial_period_days]";
    let trial_days = match form.get(trial_param) {
        None => None,
        Some(d) => Some(
            d.parse::<u32>()
                .ok()
                .filter(|d| (1..=730).contains(d))
                .ok_or_else(|| ApiError::invalid_integer(trial_param, d))?,
        ),
    };
    let created = now();
    let session = crate::state::Session {
        id: sim.0.ids.make("cs_test_", 58),
        created,
        expires_at: created + 24 * 3600,
        customer,
        client_reference_id: form.get("client_reference_id").map(str::to_string),
        line_items,
        trial_days,
        subscription_metadata: form.hash("subscription_data[metadata]"),
        metadata: form.hash("metadata"),
        success_url: form.get("success_url").map(str::to_string),
        cancel_url: form.get("cancel_url").map(str::to_string),
        status: "open",
        payment_status: "unpaid",
        subscription: None,
    };
    let json = session.to_json(&sim.0.base_url);
    st.sessions.push(session);
    Ok(json)
}

fn create_portal_session(sim: &StripeSim, st: &mut State, form: &Form) -> Result<Value, ApiError> {
    let customer = existing_customer(st, form, "customer")?;
    let id = sim.0.ids.make("bps_", 24);
    let json = json!({
        "id": id,
        "object": "billing_portal.session",
        "url": format!("{}/portal/{id}", sim.0.base_url),
        "customer": customer,
        "return_url": form.get("return_url"),
        "configuration": "bpc_sim",
        "flow": null,
        "locale": null,
        "on_behalf_of": null,
        "created": now(),
        "livemode": false,
    });
    st.portal_sessions.push(json.clone());
    Ok(json)
}

/// How far back a meter event's timestamp may be (35 days) and ahead (5 min).
const METER_PAST_SECS: i64 = 35 * 86_400;
const METER_FUTURE_SECS: i64 = 300;

fn create_meter_event(sim: &StripeSim, st: &mut State, form: &Form) -> Result<Value, ApiError> {
    let event_name = form
        .get("event_name")
        .ok_or_else(|| ApiError::missing("event_name"))?
        .to_string();
    let customer = existing_customer(st, form, "payload[stripe_customer_id]")?.to_string();
    let raw_value = form
        .get("payload[value]")
        .ok_or_else(|| ApiError::missing("payload[value]"))?;
    let value = raw_value
        .parse::<i64>()
        .map_err(|_| ApiError::invalid_integer("payload[value]", raw_value))?;
    let created = now();
    let timestamp = match form.get("timestamp") {
        None => created,
        Some(t) => {
            let t = t
                .parse::<i64>()
                .map_err(|_| ApiError::invalid_integer("timestamp", t))?;
            if t < created - METER_PAST_SECS || t > created + METER_FUTURE_SECS {
                return Err(ApiError::invalid(
                    None,
                    Some("timestamp"),
                    format!(
                        "Timestamp {t} must be within the past 35 calendar days or up to 5 \
                         minutes in the future (Unix seconds)."
                    ),
                ));
            }
            t
        }
    };
    let identifier = match form.get("identifier") {
        Some(i) => i.to_string(),
        None => sim.0.ids.make("", 24),
    };
    if st.meter_events.iter().any(|m| m.identifier == identifier) {
        // The message is what Stripe answers; the code is a guess (Stripe's
        // documentation does not name one).
        return Err(ApiError::invalid(
            Some("duplicate_meter_event"),
            Some("identifier"),
            format!("An event already exists with identifier {identifier}."),
        )
        .retry(false));
    }
    let payload = form.hash("payload");
    st.meter_events.push(MeterEvent {
        identifier: identifier.clone(),
        event_name: event_name.clone(),
        customer,
        value,
        timestamp,
    });
    Ok(json!({
        "object": "billing.meter_event",
        "created": created,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": false,
        "payload": object(&payload),
        "timestamp": timestamp,
    }))
}

// ----- hosted pages -----

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    ))
}

/// `GET /checkout/{id}`: Stripe's hosted Checkout page, with a button that
/// does what `complete_checkout` does.
async fn checkout_page(Sim(sim): Sim<StripeSim>, Path(id): Path<String>) -> Response {
    let Some(session) = sim.state().session(&id).cloned() else {
        return (StatusCode::NOT_FOUND, page("Unknown Checkout session", "")).into_response();
    };
    let items: String = session
        .line_items
        .iter()
        .map(|l| format!("<li>{} × {}</li>", escape(&l.price), l.quantity))
        .collect();
    let trial = session
        .trial_days
        .map(|d| format!("<p>{d}-day free trial</p>"))
        .unwrap_or_default();
    let action = if session.status == "open" {
        format!(
            "<form method=\"post\" action=\"/checkout/{}/complete\"><button>Pay (simulated)</button></form>",
            escape(&id)
        )
    } else {
        "<p>This session is complete.</p>".to_string()
    };
    page(
        "Stripe Checkout (simulated)",
        &format!(
            "<p>Session <code>{}</code> for customer <code>{}</code></p><ul>{items}</ul>{trial}{action}",
            escape(&id),
            escape(&session.customer)
        ),
    )
    .into_response()
}

/// `POST /checkout/{id}/complete`: pays, sends the webhooks, and goes to the
/// session's `success_url` (`{CHECKOUT_SESSION_ID}` filled in, as Stripe does).
async fn checkout_complete(Sim(sim): Sim<StripeSim>, Path(id): Path<String>) -> Response {
    match sim.complete_checkout(&id).await {
        Ok(_) | Err(SimError::Unreachable { .. }) => {
            let success = sim.state().session(&id).and_then(|s| s.success_url.clone());
            match success {
                Some(url) => {
                    Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", &id)).into_response()
                }
                None => page("Paid", "<p>The subscription is active.</p>").into_response(),
            }
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            page(
                "Payment failed",
                &format!("<p>{}</p>", escape(&e.to_string())),
            ),
        )
            .into_response(),
    }
}

/// `GET /portal/{id}`: the billing portal, a link back to `return_url`.
async fn portal_page(Sim(sim): Sim<StripeSim>, Path(id): Path<String>) -> Response {
    let session = sim
        .state()
        .portal_sessions
        .iter()
        .find(|s| s["id"] == id.as_str())
        .cloned();
    let Some(session) = session else {
        return (StatusCode::NOT_FOUND, page("Unknown portal session", "")).into_response();
    };
    let back = session["return_url"]
        .as_str()
        .map(|u| format!("<p><a href=\"{}\">Return</a></p>", escape(u)))
        .unwrap_or_default();
    page(
        "Stripe billing portal (simulated)",
        &format!(
            "<p>Customer <code>{}</code></p>{back}",
            escape(session["customer"].as_str().unwrap_or(""))
        ),
    )
    .into_response()
}
