//! `townes export` and `townes import`: export bundles without the API, against
//! `--database-url` (ADR 0018). The passphrase comes from an environment
//! variable named on the command line, never from an argument (arguments are
//! visible to every user of the machine) and never echoed.

use super::{Settings, platform};
use std::path::PathBuf;
use townes::export::{ExportKey, export_bundle, import_bundle};
use townes::store::export::ExportScope;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The tenant to export.
    #[arg(long)]
    pub tenant: String,
    /// Only this guild of the tenant.
    #[arg(long)]
    pub guild: Option<u64>,
    /// The bundle to write; an existing file is never overwritten.
    #[arg(long)]
    pub out: PathBuf,
    /// The environment variable holding the passphrase (12 characters or more).
    #[arg(long, default_value = "TOWNES_EXPORT_PASSPHRASE")]
    pub passphrase_env: String,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The bundle to restore.
    pub file: PathBuf,
    /// The environment variable holding the bundle's passphrase.
    #[arg(long, default_value = "TOWNES_EXPORT_PASSPHRASE")]
    pub passphrase_env: String,
}

fn key(variable: &str) -> anyhow::Result<ExportKey> {
    let text = std::env::var(variable).map_err(|_| {
        anyhow::anyhow!(
            "set the passphrase in the environment variable {variable} (or name another with --passphrase-env)"
        )
    })?;
    Ok(ExportKey::passphrase(text)?)
}

pub async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<()> {
    let key = key(&args.passphrase_env)?;
    if args.out.exists() {
        anyhow::bail!(
            "{} exists; choose another file (a bundle is never overwritten)",
            args.out.display()
        );
    }
    let runtime = platform(settings).await?;
    let scope = match args.guild {
        None => ExportScope::Tenant(args.tenant.clone()),
        Some(guild_id) => ExportScope::Guild {
            tenant_id: args.tenant.clone(),
            guild_id,
        },
    };
    let bytes = export_bundle(&runtime, &scope, &key, settings.export_max_bytes, |_, _| {}).await?;
    let partial = args.out.with_extension("partial");
    std::fs::write(&partial, &bytes)?;
    std::fs::rename(&partial, &args.out)?;
    println!(
        "wrote {} ({} bytes, sha256 {})",
        args.out.display(),
        bytes.len(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    Ok(())
}

pub async fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    let key = key(&args.passphrase_env)?;
    let size = std::fs::metadata(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?
        .len();
    if size > settings.export_max_bytes {
        anyhow::bail!(
            "{} is {size} bytes; the limit is {} (TOWNES_EXPORT_MAX_BYTES)",
            args.file.display(),
            settings.export_max_bytes
        );
    }
    let bytes = std::fs::read(&args.file)?;
    let runtime = platform(settings).await?;
    let report = import_bundle(&runtime, &bytes, &key, settings.export_max_bytes).await?;
    println!(
        "imported tenant {} with {} guild(s): {}",
        report.tenant_id,
        report.guild_ids.len(),
        report
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(table, n)| format!("{table} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
