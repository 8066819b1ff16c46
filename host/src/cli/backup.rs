//! `townes backup` and `townes restore`: the SQLite database to a file and
//! back. A backup is taken online (`VACUUM INTO`, one read transaction); a
//! restore checks the backup, then replaces the database only while no
//! process has it open. Postgres has its own tools: both commands print the
//! ones to use instead, and fail, so a script never takes that for a backup.

use super::Settings;
use std::path::{Path, PathBuf};
use townes::store::maintenance;

pub async fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    sqlite_file(settings, "backup", file)?;
    let bytes = maintenance::backup_sqlite(&settings.database_url, file).await?;
    println!(
        "database copied to {} ({bytes} bytes, readable by its owner only)",
        file.display()
    );
    println!(
        "keep {} with it: the installed components are files, not rows (the .cwasm files need no backup)",
        settings
            .data_dir
            .join("components")
            .join("*.wasm")
            .display()
    );
    Ok(())
}

pub async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let target = sqlite_file(settings, "restore", file)?;
    let info = maintenance::check_backup(file).await?;
    let kept = maintenance::restore_sqlite(file, &settings.database_url).await?;
    println!(
        "restored {} into {} ({} migrations)",
        file.display(),
        target.display(),
        info.migrations.applied
    );
    if let Some(kept) = kept {
        println!(
            "the database it replaced is kept as {}; delete it once the restore is checked",
            kept.display()
        );
    }
    if !info.migrations.pending.is_empty() {
        println!(
            "{} newer migrations are applied on the next start (or `townes migrate`)",
            info.migrations.pending.len()
        );
    }
    let components = settings.data_dir.join("components");
    let missing: Vec<&String> = info
        .components
        .iter()
        .filter(|sha256| !components.join(format!("{sha256}.wasm")).exists())
        .collect();
    if !missing.is_empty() {
        println!(
            "{} installed components are not in {}: copy the .wasm files kept with the backup there (or install those features again), else they fail to load",
            missing.len(),
            components.display()
        );
        for sha256 in missing {
            println!("  {sha256}.wasm");
        }
    }
    Ok(())
}

/// The configured SQLite file, or why `command` cannot work on the database.
fn sqlite_file(settings: &Settings, command: &str, file: &Path) -> anyhow::Result<PathBuf> {
    match maintenance::sqlite_file(&settings.database_url)? {
        Some(path) => Ok(path),
        None if settings.database_url.trim().starts_with("postgres") => {
            anyhow::bail!("{}", postgres_only(command, file))
        }
        None => anyhow::bail!(
            "DATABASE_URL is a SQLite database in memory, which lives as long as one process: there is nothing to {command}; point DATABASE_URL at a file"
        ),
    }
}

/// What to run instead when the database is Postgres. The URL is left as
/// `$DATABASE_URL`: it holds the password.
fn postgres_only(command: &str, file: &Path) -> String {
    let file = file.display();
    let tool = match command {
        "backup" => format!("pg_dump --format=custom --file={file} \"$DATABASE_URL\""),
        _ => format!(
            "pg_restore --clean --if-exists --no-owner --single-transaction --dbname=\"$DATABASE_URL\" {file}"
        ),
    };
    format!(
        "`townes {command}` handles SQLite only; DATABASE_URL is Postgres, so use its own tool:\n    {tool}\n  (see docs/OPERATIONS.md#backup-and-restore)"
    )
}
