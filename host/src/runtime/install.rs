//! Installing a component: validate it, read its manifest, cache its compiled
//! form, and record the version in the catalogue.
//!
//! Validation, in order: size; a component (not a core module or a precompiled
//! artifact); built against a compatible `townes:feature` version; exports the
//! feature world; `describe` succeeds in an empty sandbox; the manifest is
//! well-formed; and every capability interface it imports is requested in its
//! manifest (WASI is always linked, with an empty context).

use super::extensions::{Extensions, stored_manifest, validate_routes};
use super::limits::FREE_PLAN;
use super::{HostState, Loaded, Runtime};
use crate::grants::{
    Approval, Grant, IMPORT_REQUESTED, always_granted, capability_name, parse_capability,
};
use crate::store::{FeatureVersion, Scope, StoreError};
use crate::wit::extensions::{ApiIndices, Route};
use crate::wit::{Command, FeatureIndices, Manifest};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::InstancePre;
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Engine, Precompiled};

/// The version of the `townes:feature` package this host implements.
pub const WORLD_VERSION: &str = "0.1.4";
const PACKAGE: &str = "townes:feature";
/// Interfaces of the package every feature may import without requesting a
/// capability in its manifest.
const FREE_INTERFACES: [&str; 2] = ["invocation", "live"];

/// Interfaces of the package that come with another capability's grant:
/// `history` is reading what `messages` may post to, `files` is storage.
fn granted_with(interface: &str) -> Option<&'static str> {
    match interface {
        "history" => Some("messages"),
        "files" => Some("storage"),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the component is {size} bytes; the largest accepted is {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error(
        "not a WebAssembly component: {0}. Build one with `cargo build --target wasm32-wasip2` (Rust), componentize-py (Python) or jco (JavaScript)"
    )]
    NotAComponent(String),
    #[error(
        "the component was built for {found}, but this host speaks {PACKAGE}@0.1.x; rebuild it against the WIT of this release"
    )]
    WrongWorld { found: String },
    #[error(
        "the component imports `{0}`, which this host does not provide; features may import only WASI and the {PACKAGE} capabilities"
    )]
    UnknownImport(String),
    #[error("the component does not implement the {PACKAGE} world: {0}")]
    MissingExports(String),
    #[error("{0}")]
    TooComplex(String),
    #[error("describe() failed: {0}")]
    Describe(String),
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    #[error("invalid api routes: {0}")]
    InvalidRoutes(String),
    #[error(
        "the component imports the `{0}` capability but its manifest does not request it; request it in describe() with a reason for the admin, or stop calling it"
    )]
    Undeclared(String),
    #[error("{0}")]
    VersionConflict(String),
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

/// A component that passed every install check, not yet in the catalogue.
pub struct Validated {
    wasm: Vec<u8>,
    component: Component,
    pre: InstancePre<HostState>,
    exports: FeatureIndices,
    extensions: Extensions,
    manifest: Manifest,
    routes: Vec<Route>,
    /// The interfaces it requests by importing them (`ai`, `http`).
    imports: Vec<String>,
}

impl Validated {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The dashboard routes it serves (none without `api`).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// `townes:feature/messages@0.1.0` → (`townes:feature`, `messages`, `0.1.0`).
fn split_import(name: &str) -> (&str, &str, &str) {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    let (package, interface) = path.split_once('/').unwrap_or((path, ""));
    (package, interface, version)
}

/// Same major version, and for 0.x the same minor (semver compatibility).
fn compatible_world(version: &str) -> bool {
    let mut theirs = version.split('.');
    let mut ours = WORLD_VERSION.split('.');
    let (major, minor) = (theirs.next(), theirs.next());
    let (our_major, our_minor) = (ours.next(), ours.next());
    major == our_major && (our_major != Some("0") || minor == our_minor)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Runtime {
    /// Validates and installs a component. Installing the same bytes twice is a
    /// no-op; the same id and version with different bytes is refused.
    pub async fn install(&self, wasm: &[u8]) -> Result<(FeatureVersion, Manifest), InstallError> {
        let validated = self.validate(wasm).await?;
        self.record(validated).await
    }

    /// Everything [`Runtime::install`] checks, without recording anything: the
    /// caller may refuse the component for its manifest (e.g. an id it does
    /// not own) before [`Runtime::record`] adds it to the catalogue.
    pub async fn validate(&self, wasm: &[u8]) -> Result<Validated, InstallError> {
        let max = self.config.max_component_bytes;
        if wasm.len() > max {
            return Err(InstallError::TooLarge {
                size: wasm.len(),
                max,
            });
        }
        if Engine::detect_precompiled(wasm).is_some() {
            return Err(InstallError::NotAComponent(
                "this is a precompiled artifact; install the original .wasm".into(),
            ));
        }
        let structure = super::structure::measure(wasm).map_err(InstallError::NotAComponent)?;
        self.config
            .structure
            .check(&structure)
            .map_err(InstallError::TooComplex)?;
        let engine = self.engine.clone();
        let bytes = wasm.to_vec();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| InstallError::NotAComponent(format!("{e:#}")))?;
        let (imports, requested_imports) = self.check_imports(&component)?;
        let missing = |e: wasmtime::Error| InstallError::MissingExports(format!("{e:#}"));
        let pre = self.linker.instantiate_pre(&component).map_err(missing)?;
        let exports = FeatureIndices::new(&pre).map_err(missing)?;
        let extensions = Extensions::find(&pre);
        let (manifest, routes) = self
            .describe(&pre, &exports, extensions.api.as_ref())
            .await
            .map_err(|e| InstallError::Describe(format!("{e:#}")))?;
        validate_manifest(&manifest).map_err(InstallError::InvalidManifest)?;
        validate_routes(&routes).map_err(InstallError::InvalidRoutes)?;
        let requested: HashSet<_> = manifest
            .capabilities
            .iter()
            .map(|r| capability_name(r.capability))
            .collect();
        if let Some(undeclared) = imports.iter().find(|i| {
            !requested.contains(i.as_str()) && !parse_capability(i).is_ok_and(always_granted)
        }) {
            return Err(InstallError::Undeclared(undeclared.clone()));
        }

        Ok(Validated {
            wasm: wasm.to_vec(),
            component,
            pre,
            exports,
            extensions,
            manifest,
            routes,
            imports: requested_imports,
        })
    }

    /// Caches a validated component, stores its bytes in the database (where every
    /// process sharing it can load them) and records its version in the catalogue.
    pub async fn record(
        &self,
        validated: Validated,
    ) -> Result<(FeatureVersion, Manifest), InstallError> {
        let Validated {
            wasm,
            component,
            pre,
            exports,
            extensions,
            manifest,
            routes,
            imports,
        } = validated;
        let wasm = wasm.as_slice();
        let sha256 = sha256_hex(wasm);
        self.write_cache(&sha256, wasm, &component)?;
        // Before the version row: a version any process can see always has its bytes.
        self.store
            .put_component_blob(&sha256, wasm)
            .await
            .map_err(|e| InstallError::Host(e.into()))?;
        let version = FeatureVersion {
            feature_id: manifest.id.clone(),
            version: manifest.version.clone(),
            sha256,
            manifest: stored_manifest(&manifest, &routes, &imports).map_err(anyhow::Error::from)?,
            size_bytes: wasm.len() as u64,
            created_at: chrono::Utc::now(),
            published: true,
        };
        match self.store.insert_feature_version(&version).await {
            Ok(()) => {}
            Err(StoreError::InvalidArgument(why)) => {
                return Err(InstallError::VersionConflict(format!(
                    "{} {} is already installed with different contents ({why}); bump the version in describe()",
                    manifest.id, manifest.version
                )));
            }
            Err(e) => return Err(InstallError::Host(e.into())),
        }
        let key = (manifest.id.clone(), manifest.version.clone());
        self.loaded.insert(
            key,
            Arc::new(Loaded {
                pre,
                exports,
                extensions,
                manifest: manifest.clone(),
                routes: Arc::new(routes),
            }),
        );
        Ok((version, manifest))
    }

    /// Validates a component and puts it in the on-disk cache and the database's
    /// blobs without recording a version: an import writes the version's row
    /// itself, in its transaction. Safe to repeat, and harmless if that
    /// transaction fails (both are keyed by content). Returns the manifest's id and
    /// version.
    pub async fn stage_component(&self, wasm: &[u8]) -> Result<(String, String), InstallError> {
        let validated = self.validate(wasm).await?;
        let sha256 = sha256_hex(wasm);
        self.write_cache(&sha256, wasm, &validated.component)?;
        self.store
            .put_component_blob(&sha256, wasm)
            .await
            .map_err(|e| InstallError::Host(e.into()))?;
        Ok((validated.manifest.id, validated.manifest.version))
    }

    /// The bytes of the installed component `sha256`, as installed: from this
    /// host's cache, else from the database (checked against the sha256, and
    /// cached here).
    pub async fn component_bytes(&self, sha256: &str) -> anyhow::Result<Vec<u8>> {
        let wasm_path = self.cache_paths(sha256).0;
        match std::fs::read(&wasm_path) {
            Ok(wasm) => Ok(wasm),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.shared_component_bytes(sha256).await
            }
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", wasm_path.display())),
        }
    }

    /// Stores in the database the bytes of installed components that only this
    /// host's cache holds (installed before migration 0016), so every process
    /// sharing the database can load them; returns how many. Components this host
    /// does not have either are left to the host that does.
    pub async fn share_cached_components(&self) -> anyhow::Result<usize> {
        let mut shared = 0;
        for sha256 in self.store.unshared_components().await? {
            let Ok(wasm) = std::fs::read(self.cache_paths(&sha256).0) else {
                continue;
            };
            if sha256_hex(&wasm) != sha256 {
                tracing::warn!(%sha256, "the cached component does not match its sha256; not shared");
                continue;
            }
            self.store.put_component_blob(&sha256, &wasm).await?;
            shared += 1;
        }
        Ok(shared)
    }

    /// The bytes another process stored for component `sha256`, refused unless
    /// they hash to it, then written to this host's cache.
    async fn shared_component_bytes(&self, sha256: &str) -> anyhow::Result<Vec<u8>> {
        let wasm = self.store.component_blob(sha256).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "component {sha256} is neither in {} nor in the database; install the feature again",
                self.config.data_dir.join("components").display()
            )
        })?;
        let found = sha256_hex(&wasm);
        if found != sha256 {
            anyhow::bail!(
                "component {sha256} in the database does not match its sha256 (its bytes hash to {found}): \
                 the stored copy was damaged or altered, so it is not run; install the feature again"
            );
        }
        write_atomically(&self.cache_paths(sha256).0, &wasm)?;
        Ok(wasm)
    }

    /// Checks every import and returns the capability interfaces that carry
    /// functions (a types-only interface grants nothing), and the interfaces
    /// requested by importing them ([`IMPORT_REQUESTED`]).
    fn check_imports(
        &self,
        component: &Component,
    ) -> Result<(Vec<String>, Vec<String>), InstallError> {
        let mut capabilities = Vec::new();
        let mut requested = Vec::new();
        let ty = component.component_type();
        for (name, item) in ty.imports(&self.engine) {
            // Types a world `use`s may be imported at the top level; they grant nothing.
            if matches!(item.ty, ComponentItem::Type(_)) {
                continue;
            }
            let (package, interface, version) = split_import(name);
            if package.starts_with("wasi:") {
                continue;
            }
            if package != PACKAGE {
                return Err(InstallError::UnknownImport(name.to_string()));
            }
            if !compatible_world(version) {
                return Err(InstallError::WrongWorld {
                    found: format!("{PACKAGE}@{version}"),
                });
            }
            let has_functions = match &item.ty {
                ComponentItem::ComponentInstance(instance) => instance
                    .exports(&self.engine)
                    .any(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_))),
                _ => true,
            };
            if IMPORT_REQUESTED.contains(&interface) {
                if has_functions && !requested.iter().any(|r| r == interface) {
                    requested.push(interface.to_string());
                }
                continue;
            }
            if (interface == "types" && !has_functions) || FREE_INTERFACES.contains(&interface) {
                continue;
            }
            let capability = granted_with(interface).unwrap_or(interface);
            if parse_capability(capability).is_err() || capability == "message-content" {
                return Err(InstallError::UnknownImport(name.to_string()));
            }
            if has_functions {
                capabilities.push(capability.to_string());
            }
        }
        Ok((capabilities, requested))
    }

    /// Calls `describe`, and `api.routes` when the component serves routes,
    /// in a sandbox that grants nothing but `config` and `log`.
    pub(super) async fn describe(
        &self,
        pre: &InstancePre<HostState>,
        exports: &FeatureIndices,
        api: Option<&ApiIndices>,
    ) -> anyhow::Result<(Manifest, Vec<Route>)> {
        let limits = self.config.plans.get(FREE_PLAN).limits.clone();
        let grant = Grant::effective(
            &[],
            &Approval::default(),
            limits.capabilities,
            limits.quota(),
        );
        let scope = Scope {
            guild_id: 0,
            feature_id: String::new(),
        };
        let super::Fresh {
            mut store, stdio, ..
        } = self.new_store_with(
            scope,
            grant,
            "{}".into(),
            &limits,
            crate::capabilities::invocation::InvocationCtx::default(),
        );
        let meter = store.data().cpu.clone();
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let manifest = exports
                .load(&mut store, &instance)?
                .call_describe(&mut store)
                .await?;
            let routes = match api {
                Some(api) => {
                    api.load(&mut store, &instance)?
                        .call_routes(&mut store)
                        .await?
                }
                None => Vec::new(),
            };
            wasmtime::Result::Ok((manifest, routes))
        };
        let metered = super::cpu::Metered::new(call, meter);
        match tokio::time::timeout(limits.wall(), metered).await {
            Ok(Some(Ok(described))) => Ok(described),
            Ok(None) => Err(anyhow::anyhow!(
                "describe() spent the CPU budget of {:?}",
                limits.cpu()
            )),
            Ok(Some(Err(trap))) => {
                let stdio = String::from_utf8_lossy(&stdio.contents()).into_owned();
                Err(anyhow::anyhow!(
                    "{} {}",
                    super::classify_trap(&trap),
                    stdio.trim()
                ))
            }
            Err(_) => Err(anyhow::anyhow!(
                "describe() did not return within {:?}",
                limits.wall()
            )),
        }
    }

    fn cache_paths(&self, sha256: &str) -> (PathBuf, PathBuf) {
        let mut hasher = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let dir = self.config.data_dir.join("components");
        (
            dir.join(format!("{sha256}.wasm")),
            dir.join(format!("{sha256}.{:016x}.cwasm", hasher.finish())),
        )
    }

    fn write_cache(&self, sha256: &str, wasm: &[u8], component: &Component) -> anyhow::Result<()> {
        let (wasm_path, cwasm_path) = self.cache_paths(sha256);
        write_atomically(&wasm_path, wasm)?;
        write_atomically(&cwasm_path, &component.serialize()?)?;
        Ok(())
    }

    /// The compiled component for `sha256`: the precompiled artifact when it
    /// matches this engine, otherwise compiled again from the cached `.wasm`, or
    /// from the database's copy when this host has none (another process
    /// installed it).
    pub(super) async fn component_from_cache(&self, sha256: &str) -> anyhow::Result<Component> {
        let cwasm_path = self.cache_paths(sha256).1;
        if matches!(
            Engine::detect_precompiled_file(&cwasm_path),
            Ok(Some(Precompiled::Component))
        ) {
            // SAFETY: the artifact was written by this host into its own data
            // directory, under a name keyed by this engine's compatibility hash.
            match unsafe { Component::deserialize_file(&self.engine, &cwasm_path) } {
                Ok(component) => return Ok(component),
                Err(error) => {
                    tracing::warn!(%error, path = %cwasm_path.display(), "precompiled artifact unusable; compiling again")
                }
            }
        }
        let wasm = self.component_bytes(sha256).await?;
        let component = Component::new(&self.engine, &wasm)?;
        write_atomically(&cwasm_path, &component.serialize()?)?;
        Ok(component)
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c))
}

/// Commands a feature defines in one guild (`guild-commands`) at most.
pub const MAX_GUILD_COMMANDS: usize = 50;

/// Checks the commands a feature defines in a guild as a manifest's are
/// checked, and their number.
pub fn validate_guild_commands(commands: &[Command]) -> Result<(), String> {
    if commands.len() > MAX_GUILD_COMMANDS {
        return Err(format!(
            "{} commands; at most {MAX_GUILD_COMMANDS} per guild",
            commands.len()
        ));
    }
    validate_commands(commands)
}

/// Names, descriptions and options of commands, as Discord takes them.
fn validate_commands(commands: &[Command]) -> Result<(), String> {
    let mut names = HashSet::new();
    for command in commands {
        if !valid_name(&command.name, 32, &['-', '_']) {
            return Err(format!(
                "command `{}`: names are 1 to 32 lower-case letters, digits, `-` and `_`",
                command.name
            ));
        }
        if !names.insert(command.name.as_str()) {
            return Err(format!("command `{}` is declared twice", command.name));
        }
        if command.description.is_empty() || command.description.chars().count() > 100 {
            return Err(format!(
                "command `{}`: description must be 1 to 100 characters",
                command.name
            ));
        }
        if !command.slash && !command.prefix {
            return Err(format!(
                "command `{}` is neither slash nor prefix",
                command.name
            ));
        }
        let options = command
            .options
            .iter()
            .chain(command.subcommands.iter().flat_map(|s| s.options.iter()));
        for option in options {
            if !valid_name(&option.name, 32, &['-', '_']) {
                return Err(format!(
                    "command `{}`: option `{}` is not a valid name",
                    command.name, option.name
                ));
            }
        }
        if command.options.len() > 25 || command.subcommands.len() > 25 {
            return Err(format!(
                "command `{}`: at most 25 options and 25 subcommands",
                command.name
            ));
        }
    }
    Ok(())
}

fn validate_manifest(m: &Manifest) -> Result<(), String> {
    if !valid_name(&m.id, 32, &['-']) || m.id.starts_with('-') {
        return Err(format!(
            "id `{}` must be 1 to 32 lower-case letters, digits and dashes",
            m.id
        ));
    }
    semver::Version::parse(&m.version)
        .map_err(|e| format!("version `{}` is not semver ({e})", m.version))?;
    if m.name.trim().is_empty() || m.name.chars().count() > 100 {
        return Err("name must be 1 to 100 characters".into());
    }
    if m.description.chars().count() > 1000 {
        return Err("description must be at most 1000 characters".into());
    }
    validate_commands(&m.commands)?;
    let mut requested = HashSet::new();
    for request in &m.capabilities {
        let name = capability_name(request.capability);
        if !requested.insert(name) {
            return Err(format!("capability `{name}` is requested twice"));
        }
        if request.reason.trim().is_empty() {
            return Err(format!(
                "capability `{name}` needs a reason to show the admin"
            ));
        }
    }
    let schema: serde_json::Value = serde_json::from_str(&m.config_schema)
        .map_err(|e| format!("config-schema is not JSON: {e}"))?;
    if !schema.is_object() && !schema.is_boolean() {
        return Err("config-schema must be a JSON Schema object".into());
    }
    let default: serde_json::Value = serde_json::from_str(&m.default_config)
        .map_err(|e| format!("default-config is not JSON: {e}"))?;
    crate::marketplace::config::validate(&m.config_schema, &default).map_err(|problems| {
        let problems: Vec<_> = problems.iter().map(ToString::to_string).collect();
        format!(
            "default-config does not match config-schema: {}",
            problems.join("; ")
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_split_into_package_interface_and_version() {
        assert_eq!(
            split_import("townes:feature/storage@0.1.0"),
            ("townes:feature", "storage", "0.1.0")
        );
        assert_eq!(
            split_import("wasi:cli/environment@0.2.6"),
            ("wasi:cli", "environment", "0.2.6")
        );
    }

    #[test]
    fn world_versions_are_compatible_within_the_same_minor_of_zero() {
        assert!(compatible_world("0.1.0"));
        assert!(compatible_world("0.1.7"));
        assert!(!compatible_world("0.2.0"));
        assert!(!compatible_world("1.0.0"));
        assert!(!compatible_world(""));
    }
}
