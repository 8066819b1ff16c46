//! The project's build and test driver: `cargo xtask <command>`.
//!
//! Commands:
//! - `build-guests`: builds every WebAssembly component (each crate under
//!   `features/*` and `host/tests/guests/*`) with one
//!   `cargo build --release --target wasm32-wasip2` invocation;
//! - `test [args]`: `build-guests`, then `cargo test --workspace [args]`;
//! - `run [args]`: `build-guests`, then `cargo run -p townes --release -- [args]`
//!   (default: `serve` with the features under `features/`);
//! - `bench [args]`: `build-guests`, then `cargo run -p townes-bench --release
//!   -- [args]` (the dispatch benchmark; `--help` for its options);
//! - `ci`: `cargo fmt --check`, `cargo clippy -D warnings`, then `test`;
//! - `openapi [--check]`: `build-guests`, then writes `docs/API/openapi.yaml`
//!   from `townes openapi` with the built-in features' components, and generates the TypeScript client `clients/typescript/src/index.ts` from
//!   it (see [`openapi`] and [`ts_client`]); `--check` only compares;
//! - `fuzz-api [options]`: runs schemathesis against `townes serve` (the
//!   offline playground) and fails on any 5xx or response the OpenAPI document
//!   does not describe (see [`fuzz_api`]).
//!
//! `build-guests` also builds the Python examples under `examples/*` (a folder
//! with `app.py` and `wit/`) with componentize-py, installing it with pip when it
//! is missing; without Python it prints a notice and skips them, except under
//! `CI`, where that is an error.

mod fuzz_api;
mod openapi;
mod ts_client;

use std::env;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";
/// Folders whose every sub-folder with a `Cargo.toml` is a guest crate.
const GUEST_DIRS: &[&str] = &["features", "host/tests/guests"];
/// Python example features, built with componentize-py into `target/python/`.
const PYTHON_EXAMPLES: &str = "examples";
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  build-guests     build every component (features/*, host/tests/guests/*) for wasm32-wasip2
  test [args]      build-guests, then `cargo test --workspace [args]`
                   (e.g. `cargo xtask test -- --nocapture`, `cargo xtask test -p hello`)
  run [args]       build-guests, then `cargo run -p townes --release -- [args]` (default: serve + features)
  bench [args]     build-guests, then the dispatch benchmark (`cargo xtask bench --help`)
  ci               cargo fmt --check, cargo clippy -D warnings, then test
  openapi          build-guests, write docs/API/openapi.yaml (`townes openapi` + built-in features) and generate
                   the TypeScript client clients/typescript/src/index.ts from it
  openapi --check  fail, naming the file, when either committed file is stale
  fuzz-api [opts]  fuzz the running API with schemathesis against docs/API/openapi.yaml
                   (`cargo xtask fuzz-api --help` for options)";

/// A failure: a message, and the exit code to leave with.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

type Result<T = (), E = Failure> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

fn run(args: &[String]) -> Result {
    let root = workspace_root();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            println!("{USAGE}");
            return Ok(());
        }
    };
    match command {
        "build-guests" => {
            no_args(command, rest)?;
            build_guests(&root)
        }
        "test" => {
            build_guests(&root)?;
            test(&root, rest)
        }
        "run" => {
            build_guests(&root)?;
            let rest = rest.strip_prefix(&["--".to_string()]).unwrap_or(rest);
            let mut args: Vec<String> = ["run", "-p", "townes", "--release", "--"]
                .map(String::from)
                .into();
            if rest.is_empty() {
                args.push("serve".into());
                args.extend(shipped_features(&root)?);
            } else {
                args.extend(rest.iter().cloned());
            }
            cargo(&root, &args)
        }
        "bench" => {
            build_guests(&root)?;
            let rest = rest.strip_prefix(&["--".to_string()]).unwrap_or(rest);
            let mut args: Vec<String> = ["run", "-p", "townes-bench", "--release", "--"]
                .map(String::from)
                .into();
            args.extend(rest.iter().cloned());
            cargo(&root, &args)
        }
        "ci" => {
            no_args(command, rest)?;
            cargo(&root, &["fmt", "--all", "--", "--check"])?;
            cargo(
                &root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )?;
            build_guests(&root)?;
            test(&root, &[])
        }
        "openapi" => {
            build_guests(&root)?;
            openapi::openapi(&root, rest, &shipped_features(&root)?)
        }
        "fuzz-api" => fuzz_api::fuzz_api(&root, rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(Failure::new(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
    }
}

fn no_args(command: &str, rest: &[String]) -> Result {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "`{command}` takes no arguments (got {rest:?})"
        )))
    }
}

/// `cargo test --workspace [args]`; `--workspace` is left out when the args
/// select packages themselves.
fn test(root: &Path, rest: &[String]) -> Result {
    let before_separator = rest.iter().take_while(|a| *a != "--");
    let selects_packages = before_separator
        .clone()
        .any(|a| a.starts_with("-p") || a.starts_with("--package"));
    let mut args = vec!["test"];
    if !selects_packages {
        args.push("--workspace");
    }
    args.extend(rest.iter().map(String::as_str));
    cargo(root, &args)
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cargo <args>` in `root`, echoing the command; a failure carries the
/// child's exit code.
fn cargo<S: AsRef<OsStr>>(root: &Path, args: &[S]) -> Result {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    eprintln!("$ cargo {}", shown.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| Failure::new(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        let code = status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1);
        Err(Failure {
            message: format!("`cargo {}` failed ({status})", shown.join(" ")),
            code,
        })
    }
}

/// A guest crate: where it is and the name of the `.wasm` it produces.
struct Guest {
    dir: PathBuf,
    package: String,
    lib_name: String,
}

fn build_guests(root: &Path) -> Result {
    ensure_wasm_target()?;
    let guests = discover_guests(root)?;
    if guests.is_empty() {
        println!("no guest crates under {}", GUEST_DIRS.join(", "));
        return Ok(());
    }
    let mut args = vec![
        "build".to_string(),
        "--release".into(),
        "--target".into(),
        WASM_TARGET.into(),
    ];
    for g in &guests {
        args.push("-p".into());
        args.push(g.package.clone());
    }
    cargo(root, &args)?;
    report_guests(root, &guests)?;
    build_python_examples(root)
}

fn report_guests(root: &Path, guests: &[Guest]) -> Result {
    let out_dir = target_dir(root).join(WASM_TARGET).join("release");
    println!("built {} component(s):", guests.len());
    for g in guests {
        let wasm = out_dir.join(format!("{}.wasm", g.lib_name));
        let source = g.dir.strip_prefix(root).unwrap_or(&g.dir);
        let shown = wasm.strip_prefix(root).unwrap_or(&wasm);
        match fs::metadata(&wasm) {
            Ok(meta) => println!(
                "  {:<50} {:>10}  (from {})",
                shown.display(),
                human_size(meta.len()),
                source.display()
            ),
            Err(e) => {
                return Err(Failure::new(format!(
                    "{} did not produce {}: {e} (is it a `cdylib`?)",
                    source.display(),
                    wasm.display()
                )));
            }
        }
    }
    Ok(())
}

/// The built components of the features under `features/` (not the test guests).
fn shipped_features(root: &Path) -> Result<Vec<String>> {
    let out_dir = target_dir(root).join(WASM_TARGET).join("release");
    let features = root.join("features");
    Ok(discover_guests(root)?
        .into_iter()
        .filter(|g| g.dir.starts_with(&features))
        .map(|g| {
            out_dir
                .join(format!("{}.wasm", g.lib_name))
                .display()
                .to_string()
        })
        .collect())
}

fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Builds each `examples/<name>/app.py` against its `wit/` world into
/// `target/python/<name>.wasm`, with the repository's WIT as its dependency.
fn build_python_examples(root: &Path) -> Result {
    let Ok(entries) = fs::read_dir(root.join(PYTHON_EXAMPLES)) else {
        return Ok(());
    };
    let mut examples: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("app.py").is_file() && p.join("wit").is_dir())
        .collect();
    examples.sort();
    if examples.is_empty() {
        return Ok(());
    }
    let Some(tool) = componentize_py()? else {
        return Ok(());
    };
    let out_dir = target_dir(root).join("python");
    fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::new(format!("{}: {e}", out_dir.display())))?;
    for dir in examples {
        let deps = dir.join("wit/deps/townes-feature");
        fs::create_dir_all(&deps)
            .and_then(|()| fs::copy(root.join("wit/feature.wit"), deps.join("feature.wit")))
            .map_err(|e| Failure::new(format!("{}: {e}", deps.display())))?;
        let world = world_name(&dir.join("wit"))?;
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .replace('-', "_");
        let out = out_dir.join(format!("{name}.wasm"));
        eprintln!(
            "$ componentize-py --wit-path wit --world {world} componentize app -o {}",
            out.display()
        );
        let status = Command::new(&tool)
            .args([
                "--wit-path",
                "wit",
                "--world",
                &world,
                "componentize",
                "app",
                "-o",
            ])
            .arg(&out)
            .current_dir(&dir)
            .status()
            .map_err(|e| Failure::new(format!("cannot run componentize-py: {e}")))?;
        if !status.success() {
            return Err(Failure::new(format!(
                "componentize-py failed for {} ({status})",
                dir.display()
            )));
        }
        let size = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {:<50} {:>10}  (from {})",
            out.display(),
            human_size(size),
            dir.display()
        );
    }
    Ok(())
}

/// The world declared in a `wit/` folder's own `.wit` file.
fn world_name(wit: &Path) -> Result<String> {
    let files = fs::read_dir(wit).map_err(|e| Failure::new(format!("{}: {e}", wit.display())))?;
    for file in files
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension() == Some(OsStr::new("wit")))
    {
        let text = fs::read_to_string(&file)
            .map_err(|e| Failure::new(format!("{}: {e}", file.display())))?;
        if let Some(name) = text.lines().find_map(|l| l.trim().strip_prefix("world ")) {
            return Ok(name.trim_end_matches('{').trim().to_string());
        }
    }
    Err(Failure::new(format!("no `world` in {}", wit.display())))
}

/// The componentize-py executable, installed with pip when missing. `None`
/// (with a notice) when Python is unavailable outside CI.
fn componentize_py() -> Result<Option<PathBuf>> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let on_path = PathBuf::from("componentize-py");
    if works(&on_path) {
        return Ok(Some(on_path));
    }
    eprintln!("$ python3 -m pip install --quiet {COMPONENTIZE_PY}");
    let installed = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", COMPONENTIZE_PY])
        .status()
        .is_ok_and(|s| s.success());
    // pip may put the script outside PATH: ask Python where its scripts go.
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("componentize-py"));
    match scripts.filter(|p| installed && works(p)) {
        Some(path) => Ok(Some(path)),
        None if in_ci() => Err(Failure::new(format!(
            "the Python examples need {COMPONENTIZE_PY}, and `python3 -m pip install {COMPONENTIZE_PY}` did not provide it"
        ))),
        None => {
            eprintln!(
                "skipping the Python examples: componentize-py is not available (needs python3 and pip: `pip install {COMPONENTIZE_PY}`)"
            );
            Ok(None)
        }
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn discover_guests(root: &Path) -> Result<Vec<Guest>> {
    let mut guests = Vec::new();
    for dir in GUEST_DIRS {
        let dir = root.join(dir);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Failure::new(format!("{}: {e}", dir.display()))),
        };
        let mut crates: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect();
        crates.sort();
        for dir in crates {
            let manifest_path = dir.join("Cargo.toml");
            let manifest = fs::read_to_string(&manifest_path)
                .map_err(|e| Failure::new(format!("{}: {e}", manifest_path.display())))?;
            let package = toml_string(&manifest, "package", "name").ok_or_else(|| {
                Failure::new(format!("{}: no [package] name", manifest_path.display()))
            })?;
            let lib_name =
                toml_string(&manifest, "lib", "name").unwrap_or_else(|| package.replace('-', "_"));
            guests.push(Guest {
                dir,
                package,
                lib_name,
            });
        }
    }
    Ok(guests)
}

/// The string value of `key` in `[section]` of a simple TOML file.
fn toml_string(toml: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            let v = v.trim();
            let v = v.split('#').next().unwrap_or(v).trim();
            return Some(v.trim_matches('"').trim_matches('\'').to_string());
        }
    }
    None
}

/// Where cargo puts build output: `cargo metadata`'s `target_directory`, else
/// `$CARGO_TARGET_DIR`, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    let from_metadata = Command::new(cargo_bin())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| json_string_field(&String::from_utf8_lossy(&o.stdout), "target_directory"));
    if let Some(dir) = from_metadata {
        return PathBuf::from(dir);
    }
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The value of the first `"field":"..."` in a JSON text (enough for cargo
/// metadata's top-level `target_directory`).
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let needle = format!("\"{field}\":\"");
    let start = json.find(&needle)? + needle.len();
    let mut out = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Makes sure the wasm32-wasip2 standard library is installed, adding it with
/// rustup when missing.
fn ensure_wasm_target() -> Result {
    match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) if out.status.success() => {
            let installed = String::from_utf8_lossy(&out.stdout);
            if installed.lines().any(|l| l.trim() == WASM_TARGET) {
                return Ok(());
            }
            eprintln!("$ rustup target add {WASM_TARGET}");
            let status = Command::new("rustup")
                .args(["target", "add", WASM_TARGET])
                .status()
                .map_err(|e| Failure::new(format!("cannot run rustup: {e}")))?;
            if status.success() {
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "`rustup target add {WASM_TARGET}` failed ({status})"
                )))
            }
        }
        Ok(out) => Err(Failure::new(format!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // No rustup: accept a toolchain that already ships the target.
            if sysroot_has_target() {
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "rustup is not installed and this toolchain has no {WASM_TARGET} \
                     standard library; install rustup (https://rustup.rs) and run \
                     `rustup target add {WASM_TARGET}`, or install the target for your toolchain"
                )))
            }
        }
        Err(e) => Err(Failure::new(format!("cannot run rustup: {e}"))),
    }
}

fn sysroot_has_target() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(WASM_TARGET)
                .is_dir()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_from_simple_toml() {
        let toml = "[package]\nname = \"wrong_world\" # x\nversion = \"1\"\n[lib]\ncrate-type = [\"cdylib\"]\n";
        assert_eq!(
            toml_string(toml, "package", "name").as_deref(),
            Some("wrong_world")
        );
        assert_eq!(toml_string(toml, "lib", "name"), None);
    }

    #[test]
    fn reads_a_json_string_field() {
        let json = r#"{"packages":[],"target_directory":"/a \"b\"\\c","x":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some("/a \"b\"\\c")
        );
    }

    #[test]
    fn discovers_the_guests_of_this_workspace() {
        let guests = discover_guests(&workspace_root()).ok().unwrap_or_default();
        let names: Vec<&str> = guests.iter().map(|g| g.lib_name.as_str()).collect();
        for expected in ["hello", "hostile", "undeclared", "wrong_world"] {
            assert!(names.contains(&expected), "{names:?}");
        }
    }
}
