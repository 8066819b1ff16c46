//! `cargo xtask openapi [--check]`: the OpenAPI document and the TypeScript
//! client generated from it.
//!
//! The document comes from `townes openapi` with the built-in features'
//! components (utoipa plus their routes, YAML on stdout) and is committed as
//! `docs/API/openapi.yaml`; the client is
//! `clients/typescript/src/index.ts`, made from that file by
//! [`crate::ts_client::generate_ts`]. `--check` regenerates both in memory
//! and fails, naming the stale file, when a committed one differs.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ts_client::generate_ts;
use crate::{Failure, Result, cargo_bin};

/// The committed OpenAPI document, relative to the workspace root.
pub const OPENAPI_YAML: &str = "docs/API/openapi.yaml";
/// The committed TypeScript client, relative to the workspace root.
pub const CLIENT_TS: &str = "clients/typescript/src/index.ts";

const TOWNES_OPENAPI: &[&str] = &["run", "-q", "-p", "townes", "--", "openapi"];

/// `components`: the built-in features, whose routes the document lists.
pub fn openapi(root: &Path, args: &[String], components: &[String]) -> Result {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            return Err(Failure::new(format!(
                "`openapi` takes only `--check` (got {args:?})"
            )));
        }
    };
    let yaml = townes_openapi(root, components)?;
    let ts = generate_ts(&yaml)
        .map_err(|e| Failure::new(format!("cannot generate {CLIENT_TS}: {e}")))?;
    let files = [(OPENAPI_YAML, yaml.as_str()), (CLIENT_TS, ts.as_str())];
    if check {
        let stale: Vec<String> = files
            .iter()
            .filter_map(|(file, fresh)| match fs::read_to_string(root.join(file)) {
                Ok(committed) if committed == *fresh => None,
                Ok(_) => Some(format!("  {file} is stale")),
                Err(_) => Some(format!("  {file} is missing")),
            })
            .collect();
        if stale.is_empty() {
            println!("{OPENAPI_YAML} and {CLIENT_TS} are up to date");
            return Ok(());
        }
        return Err(Failure::new(format!(
            "the API files do not match `townes openapi`:\n{}\nrun `cargo xtask openapi` and commit the result",
            stale.join("\n")
        )));
    }
    for (file, text) in files {
        let path = root.join(file);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
        }
        fs::write(&path, text).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        println!("wrote {file}");
    }
    Ok(())
}

/// `cargo run -q -p townes -- openapi {components}`'s standard output.
fn townes_openapi(root: &Path, components: &[String]) -> Result<String> {
    eprintln!("$ cargo {} …", TOWNES_OPENAPI.join(" "));
    let output = Command::new(cargo_bin())
        .args(TOWNES_OPENAPI)
        .args(components)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure::new(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(Failure::new(format!(
            "`cargo {}` failed ({})",
            TOWNES_OPENAPI.join(" "),
            output.status
        )));
    }
    let yaml = String::from_utf8(output.stdout)
        .map_err(|_| Failure::new("`townes openapi` printed something that is not UTF-8"))?;
    if yaml.trim().is_empty() {
        return Err(Failure::new("`townes openapi` printed nothing"));
    }
    Ok(yaml)
}
