//! A self-hosted runner's side (ADR 0016, addendum): `townes serve` with
//! `TOWNESDEV_LICENSE` checks the licence offline, activates it on the hosted
//! platform (`LICENSE_SERVER_BASE`) once, then refreshes its lease with
//! signed pings, and runs every guild on the lease's plan.
//!
//! The activation and its last lease are cached in
//! `<TOWNES_DATA_DIR>/license/lease.json` (mode 0600: it holds the
//! activation's secret), so a restart while the platform is unreachable
//! keeps the plan. Without an answer the lease holds until it expires, then
//! for a grace period (`TOWNES_LICENSE_GRACE`); after that, and at once when
//! the platform refuses the licence, the installation runs on `free`. It
//! never stops serving over a licence. Each change of [`Standing`] is one log
//! line saying why and what to do.

use super::lease::{self, LeaseClaims};
use super::server::{Ping, SIGNATURE_HEADER, sign_ping};
use super::{Claims, LicenseError, Secret, decode_public_key, parse_duration};
use crate::runtime::{FREE_PLAN, Runtime};
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A self-hosted installation's licence settings (`townes serve`).
#[derive(clap::Args, Clone)]
pub struct ClientConfig {
    /// This installation's licence key (`tdl1.…`) from the hosted platform;
    /// without it no licence applies (every guild runs on its own plan).
    #[arg(long = "license", env = "TOWNESDEV_LICENSE", hide_env_values = true)]
    pub license: Option<String>,
    /// The hosted platform that issued the licence (e.g. https://api.townesdev.com):
    /// where the installation activates it and refreshes its lease.
    // Behind a proxy, the URL may carry credentials.
    #[arg(
        long = "license-server",
        env = "LICENSE_SERVER_BASE",
        hide_env_values = true
    )]
    pub server_base: Option<String>,
    /// The issuer's public key, which licences and leases are checked with.
    #[arg(long = "license-public-key", env = "TOWNESDEV_LICENSE_PUBLIC_KEY")]
    pub public_key: Option<String>,
    /// How long after its lease expires an installation that cannot reach the
    /// platform keeps the licensed plan, e.g. `7d`.
    #[arg(
        long = "license-grace",
        env = "TOWNES_LICENSE_GRACE",
        default_value = "7d",
        value_parser = parse_duration
    )]
    pub grace: Duration,
    /// A name for this installation in the platform's log (e.g. the host name).
    #[arg(long = "license-instance", env = "TOWNES_LICENSE_INSTANCE")]
    pub instance: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("license", &self.license.as_ref().map(|_| "<redacted>"))
            .field(
                "server_base",
                &self.server_base.as_ref().map(|_| "<redacted>"),
            )
            .field("public_key", &self.public_key)
            .field("grace", &self.grace)
            .field("instance", &self.instance)
            .finish()
    }
}

/// How often an installation tries again while the platform does not answer
/// (sooner when its lease asks for refreshes more often).
pub const RETRY: Duration = Duration::from_secs(60);
/// How long one call to the platform may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the activation and its last lease are kept, under the data directory.
pub fn cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("license").join("lease.json")
}

/// What the installation runs on, and why. `Display` is the log line.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// The platform answered: the lease's plan applies.
    Licensed {
        license_id: String,
        plan: String,
        expires_at: DateTime<Utc>,
        refresh_at: DateTime<Utc>,
    },
    /// The lease cannot be renewed (the platform does not answer, or refuses
    /// the ping as stale); the cached lease is still in force.
    Offline {
        license_id: String,
        plan: String,
        expires_at: DateTime<Utc>,
        grace_ends: DateTime<Utc>,
        error: String,
    },
    /// The lease expired and still cannot be renewed: the plan holds until
    /// the grace ends.
    Grace {
        license_id: String,
        plan: String,
        expired_at: DateTime<Utc>,
        grace_ends: DateTime<Utc>,
        left: TimeDelta,
        error: String,
    },
    /// The free plan applies.
    Free(Degraded),
}

/// Why an installation with a licence runs on `free`.
#[derive(Clone, Debug, PartialEq)]
pub enum Degraded {
    NoPublicKey,
    BadPublicKey(String),
    NoServer,
    /// The licence itself is refused offline.
    License(LicenseError),
    /// The platform refused the licence (revoked, expired, not its own).
    Refused {
        code: String,
        message: String,
        hint: Option<String>,
    },
    /// The platform never answered, and there is no lease to run on.
    NeverActivated {
        error: String,
    },
    /// The lease and its grace are over without a renewal.
    GraceOver {
        license_id: String,
        expired_at: DateTime<Utc>,
        grace_ended: DateTime<Utc>,
        error: String,
    },
}

const CHECK_SERVER: &str = "check LICENSE_SERVER_BASE, this machine's network and its clock";

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Standing::Licensed {
                license_id,
                plan,
                expires_at,
                refresh_at,
            } => write!(
                f,
                "licence {license_id}: running on plan {plan}; the lease lasts until {expires_at} and is renewed at {refresh_at}"
            ),
            Standing::Offline {
                license_id,
                plan,
                expires_at,
                grace_ends,
                error,
            } => write!(
                f,
                "licence {license_id}: the lease cannot be renewed ({error}); still on plan {plan} with the cached lease until {expires_at}, then in grace until {grace_ends}; {CHECK_SERVER}"
            ),
            Standing::Grace {
                license_id,
                plan,
                expired_at,
                grace_ends,
                left,
                error,
            } => write!(
                f,
                "licence {license_id}: the lease expired at {expired_at} and still cannot be renewed ({error}); plan {plan} holds for {} more, until {grace_ends}, then the free plan applies; {CHECK_SERVER}",
                human(*left)
            ),
            Standing::Free(why) => match why {
                Degraded::NoPublicKey => f.write_str(
                    "TOWNESDEV_LICENSE is set but TOWNESDEV_LICENSE_PUBLIC_KEY is not, so the licence cannot be checked: running on the free plan; set TOWNESDEV_LICENSE_PUBLIC_KEY to the public key that came with the licence",
                ),
                Degraded::BadPublicKey(e) => write!(
                    f,
                    "TOWNESDEV_LICENSE_PUBLIC_KEY is not usable ({e}): running on the free plan; set it to the public key that came with the licence"
                ),
                Degraded::NoServer => f.write_str(
                    "TOWNESDEV_LICENSE is set but LICENSE_SERVER_BASE is not, so the licence cannot be activated: running on the free plan; set LICENSE_SERVER_BASE to the address of the platform that issued it",
                ),
                Degraded::License(e) => write!(
                    f,
                    "TOWNESDEV_LICENSE is refused: {e}; running on the free plan"
                ),
                Degraded::Refused {
                    code,
                    message,
                    hint,
                } => {
                    write!(
                        f,
                        "the licence server refused the licence ({code}): {message}; running on the free plan"
                    )?;
                    match hint {
                        Some(hint) => write!(f, "; {hint}"),
                        None => Ok(()),
                    }
                }
                Degraded::NeverActivated { error } => write!(
                    f,
                    "the licence server does not answer ({error}) and this installation has no lease yet: running on the free plan until it answers; {CHECK_SERVER}"
                ),
                Degraded::GraceOver {
                    license_id,
                    expired_at,
                    grace_ended,
                    error,
                } => write!(
                    f,
                    "licence {license_id}: the lease expired at {expired_at} and its grace ended at {grace_ended} without a renewal ({error}): running on the free plan until the licence server renews it; {CHECK_SERVER}"
                ),
            },
        }
    }
}

impl Standing {
    /// What decides whether a new standing is worth a log line: the kind,
    /// licence and plan, and in grace the hours left (a countdown).
    fn log_key(&self) -> String {
        match self {
            Standing::Licensed {
                license_id, plan, ..
            } => format!("licensed {license_id} {plan}"),
            Standing::Offline {
                license_id, plan, ..
            } => format!("offline {license_id} {plan}"),
            Standing::Grace {
                license_id,
                plan,
                left,
                ..
            } => format!("grace {license_id} {plan} {}", left.num_hours()),
            Standing::Free(Degraded::NeverActivated { .. }) => "free: unreachable".into(),
            Standing::Free(Degraded::GraceOver { license_id, .. }) => {
                format!("free: grace over {license_id}")
            }
            Standing::Free(why) => format!("free: {}", Standing::Free(why.clone())),
        }
    }

    /// Whether it can change without a restart (the platform answering again,
    /// a refresh due): the others are settings or a refusal to fix first.
    fn changes(&self) -> bool {
        match self {
            Standing::Free(why) => matches!(
                why,
                Degraded::NeverActivated { .. } | Degraded::GraceOver { .. }
            ),
            _ => true,
        }
    }
}

/// `3 d 4 h`, `5 h 12 min`, `40 s`.
fn human(span: TimeDelta) -> String {
    let seconds = span.num_seconds().max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// What the cache file holds. `Debug` (through [`Secret`]) leaves the secret out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cached {
    activation_id: String,
    secret: Secret,
    lease: String,
}

/// What the platform answers, as far as the runner reads it: the lease is
/// the only part it trusts, since only the lease is signed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    activation_id: String,
    secret: Option<Secret>,
    lease: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    hint: Option<String>,
}

/// How a call to the platform went wrong.
enum CallError {
    /// No usable answer: the network, a 5xx, a rate limit, or an answer that
    /// is not a lease for this licence. The cached lease stands.
    Unreachable(String),
    /// An answer about the licence or the activation.
    Refused(ErrorDetail),
}

struct State {
    /// The activation and its lease (verified), once loaded or obtained.
    cached: Option<(Cached, LeaseClaims)>,
    /// The cache file was read already.
    loaded: bool,
    /// The refresh ping not answered yet: sent again, same id, until it is.
    pending: Option<Ping>,
    /// The log key of the last standing logged.
    logged: Option<String>,
}

/// One installation's licence: checks it, talks to the platform, applies
/// the plan to the runtime.
pub struct LicenseClient {
    config: ClientConfig,
    cache: PathBuf,
    http: reqwest::Client,
    runtime: Arc<Runtime>,
    state: tokio::sync::Mutex<State>,
}

impl LicenseClient {
    pub fn new(
        config: ClientConfig,
        runtime: Arc<Runtime>,
        data_dir: &Path,
    ) -> anyhow::Result<LicenseClient> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("townes/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(LicenseClient {
            config,
            cache: cache_path(data_dir),
            http,
            runtime,
            state: tokio::sync::Mutex::new(State {
                cached: None,
                loaded: false,
                pending: None,
                logged: None,
            }),
        })
    }

    /// Checks the licence at `now`, asks the platform for a lease (activating
    /// when there is none), applies the resulting plan, logs the standing if
    /// it changed, and returns it.
    pub async fn check(&self, now: DateTime<Utc>) -> Standing {
        let mut state = self.state.lock().await;
        let standing = self.standing(&mut state, now).await;
        match &standing {
            Standing::Free(_) => {
                let free = self.runtime.plans().get(FREE_PLAN).clone();
                self.runtime
                    .set_installation_plan(Some((FREE_PLAN.to_string(), free)));
            }
            _ => {
                if let Some((_, lease)) = &state.cached {
                    self.runtime
                        .set_installation_plan(Some((lease.plan_name.clone(), lease.plan.clone())));
                }
            }
        }
        let key = standing.log_key();
        if state.logged.as_ref() != Some(&key) {
            match &standing {
                Standing::Licensed { .. } => tracing::info!("{standing}"),
                _ => tracing::warn!("{standing}"),
            }
            state.logged = Some(key);
        } else {
            tracing::debug!("{standing}");
        }
        standing
    }

    /// How long until the next [`LicenseClient::check`] after `standing` at
    /// `now`; `None` when only a restart with other settings can change it.
    pub fn next_check(standing: &Standing, now: DateTime<Utc>) -> Option<Duration> {
        let until = |at: DateTime<Utc>| (at - now).to_std().unwrap_or(Duration::ZERO);
        let wait = match standing {
            Standing::Licensed { refresh_at, .. } => until(*refresh_at),
            Standing::Offline { expires_at, .. } => RETRY.min(until(*expires_at)),
            Standing::Grace { grace_ends, .. } => RETRY.min(until(*grace_ends)),
            free => {
                if !free.changes() {
                    return None;
                }
                RETRY
            }
        };
        Some(wait.max(Duration::from_secs(1)))
    }

    async fn standing(&self, state: &mut State, now: DateTime<Utc>) -> Standing {
        let Some(license) = &self.config.license else {
            // `start` never makes a client without a licence; a blank one
            // reads as a malformed key.
            return Standing::Free(Degraded::License(LicenseError::Malformed(
                "TOWNESDEV_LICENSE is empty".into(),
            )));
        };
        let Some(public_key) = &self.config.public_key else {
            return Standing::Free(Degraded::NoPublicKey);
        };
        let issuer = match decode_public_key(public_key) {
            Ok(issuer) => issuer,
            Err(e) => return Standing::Free(Degraded::BadPublicKey(e)),
        };
        let claims = match super::verify(license, &issuer, now, None) {
            Ok(claims) => claims,
            Err(e) => {
                self.forget(state);
                return Standing::Free(Degraded::License(e));
            }
        };
        let Some(base) = &self.config.server_base else {
            return Standing::Free(Degraded::NoServer);
        };
        if !state.loaded {
            state.loaded = true;
            state.cached = self.load(&issuer, &claims);
        }
        // An activation the platform does not know (any more) is made again,
        // once per check.
        let mut activated_again = false;
        loop {
            let call = match &state.cached {
                Some((cached, _)) => {
                    let ping = state.pending.get_or_insert_with(|| Ping {
                        activation_id: cached.activation_id.clone(),
                        ping_id: hex::encode(rand::random::<[u8; 16]>()),
                        sent_at: now,
                    });
                    self.refresh(base, cached, ping, now).await
                }
                None => self.activate(base, license).await,
            };
            let answer = match call {
                Ok(answer) => answer,
                Err(CallError::Refused(refused))
                    if !activated_again
                        && matches!(
                            refused.code.as_str(),
                            "activation_unknown" | "signature_invalid"
                        ) =>
                {
                    tracing::warn!(
                        "the licence server does not accept this installation's activation ({}): activating the licence again",
                        refused.message
                    );
                    self.forget(state);
                    activated_again = true;
                    continue;
                }
                Err(CallError::Refused(refused)) if refused.code == "signature_stale" => {
                    state.pending = None;
                    return self.unanswered(state, now, refused.message);
                }
                Err(CallError::Refused(refused)) => {
                    self.forget(state);
                    return Standing::Free(Degraded::Refused {
                        code: refused.code,
                        message: refused.message,
                        hint: refused.hint,
                    });
                }
                Err(CallError::Unreachable(error)) => return self.unanswered(state, now, error),
            };
            state.pending = None;
            let lease = match self.accept(&issuer, &claims, state, answer) {
                Ok(lease) => lease,
                Err(error) => return self.unanswered(state, now, error),
            };
            return Standing::Licensed {
                license_id: lease.license_id.clone(),
                plan: lease.plan_name.clone(),
                expires_at: lease.expires_at,
                refresh_at: lease.refresh_at(),
            };
        }
    }

    /// The standing without an answer from the platform: the cached lease,
    /// its grace, or `free`.
    fn unanswered(&self, state: &State, now: DateTime<Utc>, error: String) -> Standing {
        let Some((_, lease)) = &state.cached else {
            return Standing::Free(Degraded::NeverActivated { error });
        };
        let grace_ends = lease.grace_ends(self.config.grace);
        if now < lease.expires_at {
            Standing::Offline {
                license_id: lease.license_id.clone(),
                plan: lease.plan_name.clone(),
                expires_at: lease.expires_at,
                grace_ends,
                error,
            }
        } else if now < grace_ends {
            Standing::Grace {
                license_id: lease.license_id.clone(),
                plan: lease.plan_name.clone(),
                expired_at: lease.expires_at,
                grace_ends,
                left: grace_ends - now,
                error,
            }
        } else {
            Standing::Free(Degraded::GraceOver {
                license_id: lease.license_id.clone(),
                expired_at: lease.expires_at,
                grace_ended: grace_ends,
                error,
            })
        }
    }

    /// Takes an answer's lease if the issuer signed it for this licence (and,
    /// on a refresh, this activation), and caches it.
    fn accept(
        &self,
        issuer: &VerifyingKey,
        claims: &Claims,
        state: &mut State,
        answer: Answer,
    ) -> Result<LeaseClaims, String> {
        let lease = lease::open(&answer.lease, issuer).map_err(|e| e.to_string())?;
        if lease.license_id != claims.id || lease.activation_id != answer.activation_id {
            return Err(format!(
                "it answered with a lease for licence {} and activation {}, not this installation's; check LICENSE_SERVER_BASE",
                lease.license_id, lease.activation_id
            ));
        }
        let secret = match (answer.secret, &state.cached) {
            (Some(secret), _) => secret,
            (None, Some((cached, _))) if cached.activation_id == answer.activation_id => {
                cached.secret.clone()
            }
            _ => return Err("it answered an activation without its secret".into()),
        };
        let cached = Cached {
            activation_id: answer.activation_id,
            secret,
            lease: answer.lease,
        };
        if let Err(e) = write_cache(&self.cache, &cached) {
            // The plan applies all the same; only a restart without the
            // platform would miss the lease.
            tracing::warn!(
                "cannot keep the lease in {}: {e}; a restart while the licence server is unreachable will run on the free plan until it answers; check that TOWNES_DATA_DIR is writable",
                self.cache.display()
            );
        }
        state.cached = Some((cached, lease.clone()));
        Ok(lease)
    }

    /// The cached activation, if it holds a lease the issuer signed for this
    /// licence.
    fn load(&self, issuer: &VerifyingKey, claims: &Claims) -> Option<(Cached, LeaseClaims)> {
        let text = match std::fs::read_to_string(&self.cache) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(
                    "cannot read the cached lease {}: {e}; activating the licence again",
                    self.cache.display()
                );
                return None;
            }
        };
        let cached: Cached = match serde_json::from_str(&text) {
            Ok(cached) => cached,
            Err(e) => {
                tracing::warn!(
                    "the cached lease {} is unreadable ({e}); activating the licence again",
                    self.cache.display()
                );
                return None;
            }
        };
        match lease::open(&cached.lease, issuer) {
            Ok(lease) if lease.license_id == claims.id => Some((cached, lease)),
            Ok(lease) => {
                tracing::info!(
                    "the cached lease is for licence {}, not {}: activating the new licence",
                    lease.license_id,
                    claims.id
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "the cached lease {} is refused ({e}); activating the licence again",
                    self.cache.display()
                );
                None
            }
        }
    }

    /// Drops the activation and its cache file.
    fn forget(&self, state: &mut State) {
        state.cached = None;
        state.pending = None;
        match std::fs::remove_file(&self.cache) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                "cannot delete the cached lease {}: {e}; delete it by hand",
                self.cache.display()
            ),
        }
    }

    async fn activate(&self, base: &str, license: &str) -> Result<Answer, CallError> {
        let body = serde_json::json!({
            "license": license.trim(),
            "instance": self.config.instance,
        });
        let request = self.http.post(endpoint(base, "activate")).json(&body);
        answer(request).await
    }

    async fn refresh(
        &self,
        base: &str,
        cached: &Cached,
        ping: &Ping,
        now: DateTime<Utc>,
    ) -> Result<Answer, CallError> {
        let body = serde_json::to_vec(ping).expect("a ping serializes");
        let signature = sign_ping(&cached.secret, now.timestamp(), &body);
        let request = self
            .http
            .post(endpoint(base, "refresh"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        answer(request).await
    }
}

fn endpoint(base: &str, route: &str) -> String {
    format!("{}/licenses/{route}", base.trim().trim_end_matches('/'))
}

/// Sends `request` and reads the platform's answer.
async fn answer(request: reqwest::RequestBuilder) -> Result<Answer, CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::Unreachable(without_url(e)))?;
    let status = response.status();
    if status.is_success() {
        return response.json::<Answer>().await.map_err(|e| {
            CallError::Unreachable(format!(
                "its answer is not an activation or a lease: {}",
                without_url(e)
            ))
        });
    }
    let text = response.text().await.unwrap_or_default();
    let error = serde_json::from_str::<ErrorAnswer>(&text)
        .ok()
        .map(|e| e.error);
    match error {
        // 4xx but 429: about this licence or activation.
        Some(detail) if status.is_client_error() && status.as_u16() != 429 => {
            Err(CallError::Refused(detail))
        }
        Some(detail) => Err(CallError::Unreachable(format!(
            "HTTP {status}: {}",
            detail.message
        ))),
        None => Err(CallError::Unreachable(format!(
            "HTTP {status} from something that is not a TownesDev platform"
        ))),
    }
}

/// A transport error with its causes (reqwest's own message is only "error
/// sending request") and without its URL, which is in the settings.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Writes the cache readable by its owner only, replacing the old one whole.
fn write_cache(path: &Path, cached: &Cached) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().expect("the cache is in a directory");
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension("json.partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&partial)?;
    file.write_all(&serde_json::to_vec(cached).expect("the cache serializes"))?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// The background refresh of a running installation; stops when dropped.
pub struct LicenseTask(tokio::task::JoinHandle<()>);

impl Drop for LicenseTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies `config`'s licence to `runtime` (`townes serve`): checks it once
/// now, then keeps the lease fresh in the background. `None` without
/// `TOWNESDEV_LICENSE` (nothing changes then), or when only a restart with
/// other settings can change the outcome (it was logged). Never fails: the
/// installation runs on `free` instead.
pub async fn start(
    config: &ClientConfig,
    runtime: Arc<Runtime>,
    data_dir: &Path,
) -> Option<LicenseTask> {
    config.license.as_ref()?;
    let client = match LicenseClient::new(config.clone(), runtime, data_dir) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(
                "cannot start the licence client ({e:#}): running on every guild's own plan"
            );
            return None;
        }
    };
    let mut standing = client.check(Utc::now()).await;
    LicenseClient::next_check(&standing, Utc::now())?;
    Some(LicenseTask(tokio::spawn(async move {
        while let Some(wait) = LicenseClient::next_check(&standing, Utc::now()) {
            tokio::time::sleep(wait).await;
            standing = client.check(Utc::now()).await;
        }
    })))
}

/// What `townes license status` shows: the cached activation and lease.
#[derive(Debug, Serialize)]
pub struct CachedLease {
    pub activation_id: String,
    pub lease: LeaseClaims,
}

impl CachedLease {
    /// What the lease means at `now` with `grace`, one fact a line.
    pub fn describe(&self, grace: Duration, now: DateTime<Utc>) -> Vec<String> {
        let lease = &self.lease;
        let when = |at: DateTime<Utc>| match at > now {
            true => format!("{at} (in {})", human(at - now)),
            false => format!("{at} ({} ago)", human(now - at)),
        };
        let grace_ends = lease.grace_ends(grace);
        let standing = if now < lease.expires_at {
            format!("licensed: plan {} applies", lease.plan_name)
        } else if now < grace_ends {
            format!(
                "in grace: plan {} applies for {} more unless the licence server answers",
                lease.plan_name,
                human(grace_ends - now)
            )
        } else {
            "grace over: the free plan applies until the licence server answers".to_string()
        };
        vec![
            format!(
                "licence {} for tenant {} (activation {})",
                lease.license_id, lease.tenant, self.activation_id
            ),
            format!("plan: {}", lease.plan_name),
            format!(
                "features: {}",
                lease
                    .plan
                    .features
                    .as_ref()
                    .map_or("all".to_string(), |f| f.join(", "))
            ),
            format!("lease issued: {}", when(lease.issued_at)),
            format!("next refresh: {}", when(lease.refresh_at())),
            format!("lease expires: {}", when(lease.expires_at)),
            format!(
                "grace ends: {}, {} after the lease (TOWNES_LICENSE_GRACE)",
                when(grace_ends),
                human(TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX))
            ),
            format!("now: {standing}"),
        ]
    }
}

/// The lease cached in `data_dir`, checked with `issuer`; `None` when there
/// is none.
pub fn cached_lease(data_dir: &Path, issuer: &VerifyingKey) -> Result<Option<CachedLease>, String> {
    let path = cache_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let cached: Cached = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is unreadable ({e}); delete it, `townes serve` activates again",
            path.display()
        )
    })?;
    let lease =
        lease::open(&cached.lease, issuer).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(CachedLease {
        activation_id: cached.activation_id,
        lease,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(human(TimeDelta::seconds(40)), "40 s");
        assert_eq!(human(TimeDelta::seconds(600)), "10 min");
        assert_eq!(human(TimeDelta::minutes(312)), "5 h 12 min");
        assert_eq!(human(TimeDelta::hours(76)), "3 d 4 h");
        assert_eq!(human(TimeDelta::seconds(-5)), "0 s");
    }

    #[test]
    fn the_licence_and_the_secret_never_show_in_debug_output() {
        let config = ClientConfig {
            license: Some("tdl1.secret-ish".into()),
            server_base: None,
            public_key: None,
            grace: Duration::from_secs(1),
            instance: None,
        };
        assert!(!format!("{config:?}").contains("tdl1"));
        let cached = Cached {
            activation_id: "act_1".into(),
            secret: Secret::new("hunter2".into()),
            lease: String::new(),
        };
        assert!(!format!("{cached:?}").contains("hunter2"));
    }

    #[test]
    fn checks_follow_the_lease_and_retry_while_unanswered() {
        let now = Utc::now();
        let licensed = Standing::Licensed {
            license_id: "lic_1".into(),
            plan: "pro".into(),
            expires_at: now + TimeDelta::days(3),
            refresh_at: now + TimeDelta::seconds(30),
        };
        assert_eq!(
            LicenseClient::next_check(&licensed, now),
            Some(Duration::from_secs(30))
        );
        let offline = Standing::Offline {
            license_id: "lic_1".into(),
            plan: "pro".into(),
            expires_at: now + TimeDelta::seconds(5),
            grace_ends: now + TimeDelta::days(7),
            error: "down".into(),
        };
        assert_eq!(
            LicenseClient::next_check(&offline, now),
            Some(Duration::from_secs(5))
        );
        let refused = Standing::Free(Degraded::NoServer);
        assert_eq!(LicenseClient::next_check(&refused, now), None);
        let waiting = Standing::Free(Degraded::NeverActivated {
            error: "down".into(),
        });
        assert_eq!(LicenseClient::next_check(&waiting, now), Some(RETRY));
    }
}
