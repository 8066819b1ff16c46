//! `townes license …`: the issuer's side of self-hosting licences (ADR 0016).
//! `keygen` makes the issuer's key pair, `issue` signs a tenant's licence with
//! it, `show` verifies a licence with the public key and says what it allows
//! or why it is refused. Nothing here needs the database.

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::PathBuf;
use townes::license::{self, Claims};

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
    /// Sign a licence for a tenant and print its key.
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

pub fn run(command: LicenseCommand) -> anyhow::Result<()> {
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
            let text = std::fs::read_to_string(&signing_key)
                .with_context(|| format!("reading {}", signing_key.display()))?;
            let key = license::decode_signing_key(&text).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(days >= 1, "--days must be at least 1");
            let issued_at = Utc::now();
            let claims = Claims {
                id: id.unwrap_or_else(|| format!("lic_{}", hex::encode(rand::random::<[u8; 8]>()))),
                tenant,
                plan,
                flags,
                limits: parse_limits(&limits)?,
                issued_at,
                expires_at: issued_at + TimeDelta::days(days.into()),
            };
            println!("{}", license::issue(&claims, &key));
        }
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
