//! `townes license …`: self-hosting licences (ADR 0016). The issuer's side:
//! `keygen` makes the issuer's key pair, `issue` signs a tenant's licence and
//! records it in the database (activation refuses a licence not recorded),
//! `revoke` and `regen` withdraw or replace one, `show` verifies a licence
//! with the public key and says what it allows or why it is refused. The
//! self-hoster's side: `status` reads the lease `townes serve` cached.

use super::{Settings, open_store, runtime_config};
use anyhow::Context as _;
use chrono::{SubsecRound as _, TimeDelta, Utc};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use townes::licensing::client::{ClientConfig, cache_path, cached_lease};
use townes::licensing::issuer::{
    self, Regen, Regenerated, check_plan, new_id, record_of, revoked_when, unknown_license,
};
use townes::licensing::lease::unused_limits;
use townes::licensing::{self as license, Claims};
use townes::store::Revocation;

#[derive(Subcommand)]
pub enum LicenseCommand {
    /// Make the issuer's key pair: the signing key goes to a file only the
    /// issuer reads (it is refused if the file exists); the public key, which
    /// runners verify with, is printed.
    Keygen {
        /// Where to write the signing key.
        #[arg(long)]
        signing_key: PathBuf,
    },
    /// Sign a licence for a tenant, record it in the database (installations
    /// can activate only recorded licences) and print its key.
    Issue {
        /// The issuer's signing key file (from `keygen`).
        #[arg(long)]
        signing_key: PathBuf,
        #[arg(long)]
        tenant: String,
        /// The plan whose limits the runner applies.
        #[arg(long, default_value = "pro")]
        plan: String,
        /// Days it is valid from now.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Marketplace features the plan may enable (comma-separated; none: all).
        #[arg(long, value_delimiter = ',')]
        flags: Vec<String>,
        /// Extra limits, `name=number` (comma-separated), e.g. `ai_tokens_per_day=50000`.
        #[arg(long, value_delimiter = ',')]
        limits: Vec<String>,
        /// The licence id; a new random one when absent.
        #[arg(long)]
        id: Option<String>,
    },
    /// Revoke a licence: its installations fall back to the free plan at their
    /// next refresh, and it can no longer be activated.
    Revoke {
        /// The licence's id (`lic_…`).
        id: String,
        /// Why, as its installations' operators will read it.
        #[arg(long)]
        reason: String,
    },
    /// Issue a new licence in place of one (same tenant, plan, features and
    /// limits; new id and dates) and revoke the old one, naming its successor.
    Regen {
        /// The licence's id (`lic_…`).
        id: String,
        /// The issuer's signing key file (from `keygen`).
        #[arg(long)]
        signing_key: PathBuf,
        /// The old licence's key, where its features and limits are read from
        /// when no installation ever activated it (the database keeps only its
        /// tenant and plan).
        #[arg(long)]
        license: Option<String>,
        /// Days the new licence is valid; the old one's length when absent.
        #[arg(long)]
        days: Option<u32>,
        /// Why, as the old licence's installations will read it.
        #[arg(long, default_value = "replaced by a new licence")]
        reason: String,
    },
    /// What this self-hosted installation's cached lease says: its plan, and
    /// how long until the next refresh, its expiry and the end of its grace.
    Status {
        #[command(flatten)]
        client: ClientConfig,
        #[arg(long)]
        json: bool,
    },
    /// Verify a licence key with the issuer's public key and show its claims,
    /// or why it is refused.
    Show {
        /// The licence key (`tdl1.…`).
        license: String,
        /// The issuer's public key (from `keygen`).
        #[arg(long, env = "TOWNESDEV_LICENSE_PUBLIC_KEY")]
        public_key: String,
        /// Also require that it belongs to this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: LicenseCommand) -> anyhow::Result<()> {
    match command {
        LicenseCommand::Keygen { signing_key } => {
            let key = license::new_signing_key();
            write_secret(&signing_key, &license::encode_signing_key(&key))?;
            println!(
                "signing key written to {} (keep it secret: whoever holds it can issue licences)",
                signing_key.display()
            );
            println!(
                "public key: {}",
                license::encode_public_key(&key.verifying_key())
            );
        }
        LicenseCommand::Issue {
            signing_key,
            tenant,
            plan,
            days,
            flags,
            limits,
            id,
        } => {
            let key = read_signing_key(&signing_key)?;
            anyhow::ensure!(days >= 1, "--days must be at least 1");
            check_plan(&runtime_config(settings)?.plans, &plan).map_err(anyhow::Error::msg)?;
            let limits = parse_limits(&limits)?;
            warn_unused(&limits);
            // Whole seconds: the times are shown to people.
            let issued_at = Utc::now().trunc_subsecs(0);
            let claims = Claims {
                id: id.unwrap_or_else(new_id),
                tenant,
                plan,
                flags,
                limits,
                issued_at,
                expires_at: issued_at + TimeDelta::days(days.into()),
            };
            let store = open_store(settings).await?;
            store.record_license(&record_of(&claims)).await?;
            println!("{}", license::issue(&claims, &key));
            eprintln!(
                "licence {} recorded: tenant {}, plan {}, valid until {}",
                claims.id, claims.tenant, claims.plan, claims.expires_at
            );
        }
        LicenseCommand::Revoke { id, reason } => {
            let store = open_store(settings).await?;
            match store.revoke_license(&id, &reason, Utc::now()).await? {
                Revocation::Revoked(_) => println!(
                    "licence {id} revoked: {reason}. Its installations run on the free plan from their next refresh (TOWNES_LICENSE_REFRESH), or when their lease ends if they cannot reach this platform."
                ),
                Revocation::AlreadyRevoked(record) => println!(
                    "licence {id} was already revoked{}; nothing changed",
                    revoked_when(&record)
                ),
                Revocation::Unknown => anyhow::bail!(unknown_license(&id)),
            }
        }
        LicenseCommand::Regen {
            id,
            signing_key,
            license: old_key,
            days,
            reason,
        } => {
            let key = read_signing_key(&signing_key)?;
            let store = open_store(settings).await?;
            let plans = runtime_config(settings)?.plans;
            let request = Regen {
                id: &id,
                old_key: old_key.as_deref(),
                days,
                reason: &reason,
            };
            let Regenerated { claims, key } =
                issuer::regenerate(&store, &plans, &key, &request, Utc::now()).await?;
            println!("{key}");
            eprintln!(
                "licence {} issued in place of {id} (now revoked: {reason}): tenant {}, plan {}, valid until {}; give the tenant the new key for TOWNESDEV_LICENSE",
                claims.id, claims.tenant, claims.plan, claims.expires_at
            );
        }
        LicenseCommand::Status { client, json } => status(&settings.data_dir, &client, json)?,
        LicenseCommand::Show {
            license: key,
            public_key,
            tenant,
            json,
        } => {
            let issuer = license::decode_public_key(&public_key).map_err(anyhow::Error::msg)?;
            let claims = license::verify(&key, &issuer, Utc::now(), tenant.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&claims)?);
            } else {
                println!("license {} for tenant {}", claims.id, claims.tenant);
                println!("plan: {}", claims.plan);
                println!(
                    "features: {}",
                    if claims.flags.is_empty() {
                        "all".to_string()
                    } else {
                        claims.flags.join(", ")
                    }
                );
                for (name, value) in &claims.limits {
                    println!("{name}: {value}");
                }
                println!(
                    "issued {} · expires {}",
                    claims.issued_at, claims.expires_at
                );
            }
        }
    }
    Ok(())
}

fn read_signing_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    license::decode_signing_key(&text).map_err(anyhow::Error::msg)
}

/// Says which limits no runner will apply (a typo, or a name from a newer version).
fn warn_unused(limits: &BTreeMap<String, u64>) {
    let unused = unused_limits(limits);
    if !unused.is_empty() {
        eprintln!(
            "note: {} name no limit a plan has, or do not fit it: runners ignore them",
            unused.join(", ")
        );
    }
}

/// `townes license status`: the cached lease, read with the public key.
fn status(data_dir: &Path, client: &ClientConfig, json: bool) -> anyhow::Result<()> {
    let public_key = client.public_key.as_deref().context(
        "set TOWNESDEV_LICENSE_PUBLIC_KEY (or --license-public-key) to the public key that came with the licence: the cached lease is checked with it",
    )?;
    let issuer = license::decode_public_key(public_key).map_err(anyhow::Error::msg)?;
    let Some(cached) = cached_lease(data_dir, &issuer).map_err(anyhow::Error::msg)? else {
        anyhow::bail!(
            "no lease is cached in {}: this installation has not activated a licence. Set TOWNESDEV_LICENSE, LICENSE_SERVER_BASE and TOWNESDEV_LICENSE_PUBLIC_KEY and start `townes serve` (with the same TOWNES_DATA_DIR)",
            cache_path(data_dir).display()
        );
    };
    let now = Utc::now();
    if json {
        let value = serde_json::json!({
            "activation_id": cached.activation_id,
            "lease": cached.lease,
            "refresh_at": cached.lease.refresh_at(),
            "grace_ends": cached.lease.grace_ends(client.grace),
            "expired": cached.lease.expires_at <= now,
        });
        println!("{value}");
        return Ok(());
    }
    for line in cached.describe(client.grace, now) {
        println!("{line}");
    }
    let configured = client
        .license
        .as_deref()
        .and_then(|text| license::open(text, &issuer).ok());
    if let Some(claims) = configured.filter(|c| c.id != cached.lease.license_id) {
        println!(
            "note: TOWNESDEV_LICENSE holds licence {}, not the cached one: the next start activates it",
            claims.id
        );
    }
    Ok(())
}

/// `name=number` pairs.
fn parse_limits(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .with_context(|| format!("`{pair}`: limits are name=number"))?;
            let value = value
                .trim()
                .parse()
                .with_context(|| format!("`{pair}`: {value} is not a whole number"))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

/// Writes a new file readable by its owner only; an existing one is kept.
fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}
