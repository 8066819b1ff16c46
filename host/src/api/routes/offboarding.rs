//! Leaving the hosted platform (seed 001's offboarding): a tenant's flows,
//! starting a move to self-hosting or a bot removal, calling one off; and
//! erasing a member's data, by a guild's managers or by the member.

use super::{BodyErrors, CallerErrors, own_tenant};
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::export::{ExportKey, ExportRequest};
use crate::offboarding::OffboardingError;
use crate::store::{Forgotten, Offboarding, OffboardingKind, OffboardingState};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A flow as the dashboard shows it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::offboarding)]
pub struct OffboardingView {
    pub id: String,
    pub tenant_id: String,
    /// The one guild it concerns; `null`: every guild of the tenant.
    pub guild_id: Option<Snowflake>,
    /// `self_host`, `remove_bot` or `non_payment`.
    #[schema(example = "self_host")]
    pub kind: String,
    /// `awaiting_activation`, `grace`, `read_only`, `retired`, `purged` or
    /// `canceled`.
    #[schema(example = "awaiting_activation")]
    pub state: String,
    /// The licence issued for the self-hosted runner.
    pub license_id: Option<String>,
    /// The export taken with a move to self-hosting (`GET /exports/{id}`).
    pub export_id: Option<String>,
    pub started_by: String,
    /// When the hosted runner retires unless something happens first.
    pub retire_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// When the data is deleted.
    pub purge_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// What happens next, in a sentence.
    pub next: String,
}

impl From<Offboarding> for OffboardingView {
    fn from(f: Offboarding) -> OffboardingView {
        let when = |t: Option<DateTime<Utc>>| t.map_or("soon".into(), |t| t.to_rfc3339());
        let next = match (f.kind, f.state) {
            (_, OffboardingState::AwaitingActivation) => format!(
                "the hosted runner retires when the self-hosted runner activates its licence, at the latest {}",
                when(f.retire_at)
            ),
            (_, OffboardingState::Grace) => {
                "everything runs; pay the open invoice in the billing portal, or the guilds turn read-only when the grace period ends".into()
            }
            (_, OffboardingState::ReadOnly) => format!(
                "commands answer but nothing changes; export your data (POST /exports) or renew; the guilds retire {}",
                when(f.retire_at)
            ),
            (_, OffboardingState::Retired) => format!(
                "the data is deleted {}; cancel before then to bring the guilds back",
                when(f.purge_at)
            ),
            (_, OffboardingState::Purged) => "the data is deleted".into(),
            (_, OffboardingState::Canceled) => "called off: the guilds run as before".into(),
        };
        OffboardingView {
            id: f.id,
            tenant_id: f.tenant_id,
            guild_id: f.guild_id.map(Snowflake),
            kind: f.kind.as_str().into(),
            state: f.state.as_str().into(),
            license_id: f.license_id,
            export_id: f.export_id,
            started_by: f.started_by,
            retire_at: f.retire_at,
            retired_at: f.retired_at,
            purge_at: f.purge_at,
            purged_at: f.purged_at,
            canceled_at: f.canceled_at,
            created_at: f.created_at,
            next,
        }
    }
}

impl From<OffboardingError> for ApiError {
    fn from(e: OffboardingError) -> ApiError {
        let message = e.to_string();
        match e {
            OffboardingError::Unknown(_) | OffboardingError::NotTenantGuild(_) => {
                ApiError::NotFound(message)
            }
            OffboardingError::AlreadyOpen(_) => ApiError::Conflict {
                message,
                hint: Some(
                    "follow it with GET /tenants/{tenant_id}/offboarding, or cancel it first"
                        .into(),
                ),
            },
            OffboardingError::WrongState { .. } => ApiError::Conflict {
                message,
                hint: None,
            },
            OffboardingError::LicensingOff => ApiError::Unavailable {
                message,
                hint: None,
            },
            OffboardingError::Store(e) => e.into(),
        }
    }
}

/// The tenant's offboarding flows, newest first.
#[utoipa::path(get, path = "/tenants/{tenant_id}/offboarding", tag = "offboarding", operation_id = "listOffboardings",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, description = "The flows", body = Vec<OffboardingView>), CallerErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody)))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Vec<OffboardingView>>> {
    own_tenant(&caller, &tenant_id)?;
    let flows = state.offboarding().flows(&tenant_id).await?;
    Ok(axum::Json(flows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::offboarding_request)]
pub struct StartOffboarding {
    /// `self_host` (the whole tenant) or `remove_bot` (one guild, or every
    /// guild without `guild_id`). Non-payment flows are billing's to start.
    #[schema(example = "self_host")]
    pub kind: String,
    pub guild_id: Option<Snowflake>,
    /// Self-hosting: a passphrase (12 characters or more) to export the
    /// tenant's data with, as `POST /exports` would; leave it out to export
    /// later. Never stored.
    pub passphrase: Option<String>,
}

/// A started flow; for a move to self-hosting, the self-hosted runner's
/// environment (shown once: the licence is not kept).
#[derive(Serialize, ToSchema)]
#[schema(example = examples::offboarding_started)]
pub struct OffboardingStarted {
    pub offboarding: OffboardingView,
    /// `NAME=value` settings for the self-hosted runner's `.env`.
    pub env: Vec<String>,
    /// Why the export asked for with the move did not start (the move did):
    /// take it with `POST /exports`.
    pub export_error: Option<String>,
}

/// Starts moving the tenant to self-hosting, or removing the bot.
#[utoipa::path(post, path = "/tenants/{tenant_id}/offboarding", tag = "offboarding", operation_id = "startOffboarding",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    request_body(content = StartOffboarding, example = examples::offboarding_request),
    responses((status = 201, description = "Started", body = OffboardingStarted), CallerErrors, BodyErrors,
        (status = 404, description = "Not the caller's tenant, or not its guild", body = ErrorBody),
        (status = 409, description = "A flow is already under way for these guilds", body = ErrorBody),
        (status = 503, description = "This platform does not issue self-hosting licences", body = ErrorBody)))]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    Json(body): Json<StartOffboarding>,
) -> ApiResult<(StatusCode, axum::Json<OffboardingStarted>)> {
    own_tenant(&caller, &tenant_id)?;
    let now = Utc::now();
    let by = caller.actor();
    let guild_id = body.guild_id.map(|g| g.0);
    let offboarding = state.offboarding();
    let mut export_error = None;
    let (flow, env) = match body.kind.as_str() {
        "self_host" if guild_id.is_some() => {
            return Err(ApiError::invalid(
                "guild_id",
                "a move to self-hosting takes the whole tenant; leave guild_id out",
            ));
        }
        "self_host" => {
            // Checked before the move starts: its licence is shown only once.
            let key = body.passphrase.map(ExportKey::passphrase).transpose()?;
            let kit = offboarding.start_self_host(&tenant_id, &by, now).await?;
            let mut flow = kit.offboarding;
            if let Some(key) = key {
                let request = ExportRequest {
                    tenant_id: tenant_id.clone(),
                    guild_id: None,
                    key,
                    requested_by: by.clone(),
                };
                match state.exports().start(request).await {
                    Ok(job) => {
                        state
                            .store()
                            .set_offboarding_export(&flow.id, &job.id)
                            .await?;
                        flow.export_id = Some(job.id);
                    }
                    Err(error) => export_error = Some(error.to_string()),
                }
            }
            let env = kit
                .env
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (flow, env)
        }
        "remove_bot" => (
            offboarding
                .start_remove_bot(&tenant_id, guild_id, &by, now)
                .await?,
            Vec::new(),
        ),
        other => {
            return Err(ApiError::invalid(
                "kind",
                format!(
                    "`{other}` is not a flow a tenant starts: use self_host or remove_bot ({} is started by billing)",
                    OffboardingKind::NonPayment.as_str()
                ),
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(OffboardingStarted {
            offboarding: flow.into(),
            env,
            export_error,
        }),
    ))
}

/// Calls a flow off before its purge: the guilds run as before.
#[utoipa::path(post, path = "/tenants/{tenant_id}/offboarding/{offboarding_id}/cancel", tag = "offboarding",
    operation_id = "cancelOffboarding",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id"),
        ("offboarding_id" = String, Path, description = "The flow's id")),
    responses((status = 200, description = "Called off", body = OffboardingView), CallerErrors,
        (status = 404, description = "Not the caller's tenant, or no such flow", body = ErrorBody),
        (status = 409, description = "Purged, already called off, or in billing's grace", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path((tenant_id, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OffboardingView>> {
    own_tenant(&caller, &tenant_id)?;
    let flow = state
        .offboarding()
        .cancel(&tenant_id, &id, &caller.actor(), Utc::now())
        .await?;
    Ok(axum::Json(flow.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::forget_request)]
pub struct ForgetRequest {
    /// The member whose data is erased.
    pub user_id: Snowflake,
}

/// What an erasure removed.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::forgotten)]
pub struct ForgottenView {
    pub storage_keys: u64,
    pub scores: u64,
    pub files: u64,
    pub audit_entries: u64,
    pub jobs: u64,
}

impl From<Forgotten> for ForgottenView {
    fn from(f: Forgotten) -> ForgottenView {
        ForgottenView {
            storage_keys: f.storage_keys,
            scores: f.scores,
            files: f.files,
            audit_entries: f.audit_entries,
            jobs: f.jobs,
        }
    }
}

/// Erases what the guild's features keep about one member ("delete my data"):
/// storage keys and files naming them, their score-board rows, their pending
/// jobs, and the actor and details of their audit entries.
#[utoipa::path(post, path = "/api/guild/{guild_id}/forget-user", tag = "offboarding", operation_id = "forgetUser",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = String, Path, description = "Guild snowflake")),
    request_body(content = ForgetRequest, example = examples::forget_request),
    responses((status = 200, description = "Erased", body = ForgottenView), CallerErrors, BodyErrors,
        (status = 403, description = "No Manage Server in the guild", body = ErrorBody),
        (status = 404, description = "Unknown guild", body = ErrorBody)))]
pub async fn forget_user(
    State(state): State<ApiState>,
    access: GuildAccess,
    Json(body): Json<ForgetRequest>,
) -> ApiResult<axum::Json<ForgottenView>> {
    let forgotten = state
        .store()
        .forget_user(&[access.guild.id], body.user_id.0)
        .await?;
    tracing::info!(guild = access.guild.id, by = %access.caller.actor(), "a member's data was erased");
    Ok(axum::Json(forgotten.into()))
}

/// Erases what every guild's features keep about the signed-in person, in
/// the manner of Red-DiscordBot's "delete my data". A person's own session
/// only: an API key acts for a tenant, not for a person.
#[utoipa::path(post, path = "/me/forget", tag = "offboarding", operation_id = "forgetMe",
    security(("session" = [])),
    responses((status = 200, description = "Erased", body = ForgottenView), CallerErrors,
        (status = 403, description = "Called with an API key", body = ErrorBody)))]
pub async fn forget_me(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<axum::Json<ForgottenView>> {
    let Caller::User { user_id, .. } = caller else {
        return Err(ApiError::Forbidden(
            "an API key cannot ask to forget a person; sign in as that person".into(),
        ));
    };
    let guilds: Vec<u64> = state.store().guilds().await?.iter().map(|g| g.id).collect();
    let forgotten = state.store().forget_user(&guilds, user_id).await?;
    Ok(axum::Json(forgotten.into()))
}
