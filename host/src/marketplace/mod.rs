//! Marketplace operations: the library API the CLI and the HTTP API both call.
//!
//! Install a feature version into the catalogue; enable and disable it per
//! guild with the capabilities the admin approves; change approvals and
//! configuration (validated against the feature's schema); upgrade a guild to a
//! newer version (running the feature's `migrate`) and roll back. Every change
//! writes an audit entry naming the actor.
//!
//! Concurrent changes never undo each other: toggles write `enabled` alone, and
//! changes validated against the row they read (configuration, approvals,
//! versions) are written only if its revision is unchanged, else read, checked
//! and written again ([`Marketplace::revise`]).

pub mod config;

use crate::grants::{Approval, always_granted, capability_name};
use crate::runtime::{InstallError, Runtime};
use crate::store::{
    Feature, FeatureVersion, GuildFeature, GuildService, NewAuditEntry, StoreError,
};
use crate::wit::{CapabilityRequest, Manifest};
use config::ConfigProblem;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(
        "feature id `{id}` belongs to publisher `{owner}`; only they can publish versions of it. Pick another id in describe()"
    )]
    IdTaken { id: String, owner: String },
    #[error("feature `{0}` is not installed; `townes feature list` shows the catalogue")]
    UnknownFeature(String),
    #[error("feature `{feature}` has no version {version}; installed: {installed}")]
    UnknownVersion {
        feature: String,
        version: String,
        installed: String,
    },
    #[error("guild {0} is not known to the platform; the bot must join it first")]
    UnknownGuild(u64),
    #[error(
        "guild {guild} is on the `{plan}` plan, which does not include `{feature}`; upgrade the plan (POST /tenants/<tenant id>/billing/checkout) or pick one of: {}",
        .allowed.join(", ")
    )]
    NotInPlan {
        guild: u64,
        plan: String,
        feature: String,
        allowed: Vec<String>,
    },
    #[error(
        "guild {guild} is {}: nothing can be enabled there; {}",
        .service.as_str().replace('_', "-"),
        if *.service == GuildService::ReadOnly {
            "renew the subscription (POST /tenants/<tenant id>/billing/checkout), or cancel the offboarding to go on with the free plan"
        } else {
            "cancel its offboarding first (POST /tenants/<tenant id>/offboarding/<id>/cancel)"
        }
    )]
    NotServed { guild: u64, service: GuildService },
    #[error("feature `{feature}` is not installed in guild {guild}; enable it first")]
    NotInGuild { guild: u64, feature: String },
    #[error("`{feature}` requires {} — approve {} to enable it", .missing.join(", "), if .missing.len() == 1 { "it" } else { "them" })]
    MissingRequired {
        feature: String,
        missing: Vec<String>,
    },
    #[error("`{feature}` does not request {}; it can only be granted what it asks for: {}", .extra.join(", "), .requested.join(", "))]
    NotRequested {
        feature: String,
        extra: Vec<String>,
        requested: Vec<String>,
    },
    #[error("the configuration does not match `{feature}`'s schema: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidConfig {
        feature: String,
        problems: Vec<ConfigProblem>,
    },
    #[error("guild {guild} already runs `{feature}` {version}")]
    SameVersion {
        guild: u64,
        feature: String,
        version: String,
    },
    #[error("`{feature}` {version}'s migrate failed, so guild {guild} stays on {from}: {reason}")]
    MigrateFailed {
        guild: u64,
        feature: String,
        version: String,
        from: String,
        reason: String,
    },
    #[error("`{feature}` could not be enabled in guild {guild}: its {step} failed: {reason}")]
    EnableFailed {
        guild: u64,
        feature: String,
        /// `migrate` or `lifecycle.enabled`.
        step: &'static str,
        reason: String,
    },
    #[error("guild {guild} has no earlier version of `{feature}` to roll back to")]
    NothingToRollBack { guild: u64, feature: String },
    #[error("`{feature}` in guild {guild} kept changing while this change was made")]
    Contended { guild: u64, feature: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Host(#[from] anyhow::Error),
}

/// A feature in the catalogue with its installed versions, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct CatalogueEntry {
    pub feature: Feature,
    pub versions: Vec<FeatureVersion>,
}

/// The publisher of components installed from this machine's command line.
pub const LOCAL_PUBLISHER: &str = "local";

/// Who publishes a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publisher {
    /// The platform itself: the builtin features it ships.
    Platform,
    /// An author or operator, by name.
    Named(String),
}

impl Publisher {
    pub fn name(&self) -> &str {
        match self {
            Publisher::Platform => crate::store::PLATFORM_PUBLISHER,
            Publisher::Named(name) => name,
        }
    }
}

pub struct Marketplace<'r> {
    runtime: &'r Runtime,
    /// Who is acting, as recorded in the audit log (`cli`, `user:<id>`, …).
    actor: String,
}

impl<'r> Marketplace<'r> {
    pub fn new(runtime: &'r Runtime, actor: impl Into<String>) -> Self {
        Marketplace {
            runtime,
            actor: actor.into(),
        }
    }

    pub async fn catalogue(&self) -> Result<Vec<CatalogueEntry>, MarketError> {
        let store = self.runtime.store();
        let mut entries = Vec::new();
        for feature in store.features().await? {
            let versions = store.versions_of(&feature.id).await?;
            entries.push(CatalogueEntry { feature, versions });
        }
        Ok(entries)
    }

    /// Validates and installs a component into the catalogue. A feature id
    /// belongs to the publisher that installed it first (the builtins to the
    /// platform): another publisher's version of it is refused before anything
    /// is recorded, so nobody can take over a feature by publishing a higher
    /// version under its id.
    pub async fn install(
        &self,
        wasm: &[u8],
        publisher: &Publisher,
    ) -> Result<(FeatureVersion, Manifest), MarketError> {
        let validated = self.runtime.validate(wasm).await?;
        let manifest = validated.manifest();
        let id = manifest.id.clone();
        let claim = Feature {
            id: id.clone(),
            name: manifest.name.clone(),
            description: manifest.description.clone(),
            builtin: matches!(publisher, Publisher::Platform),
            publisher: Some(publisher.name().to_string()),
            created_at: chrono::Utc::now(),
        };
        if !self.runtime.store().claim_feature(&claim).await? {
            let owner = self
                .runtime
                .store()
                .feature(&id)
                .await?
                .as_ref()
                .and_then(Feature::owner)
                .unwrap_or_default()
                .to_string();
            self.audit(
                None,
                "feature.install_refused",
                &id,
                json!({ "publisher": publisher.name(), "owner": &owner }),
            )
            .await?;
            return Err(MarketError::IdTaken { id, owner });
        }
        let before = self
            .runtime
            .store()
            .feature_version(&id, &manifest.version)
            .await?;
        let (version, manifest) = self.runtime.record(validated).await?;
        // Installing the same build again changes nothing, so it is not audited.
        if before.is_none_or(|b| b.sha256 != version.sha256) {
            self.audit(None, "feature.installed", &manifest.id, json!({ "version": version.version, "sha256": version.sha256, "size_bytes": version.size_bytes })).await?;
        }
        Ok((version, manifest))
    }

    /// The capabilities a feature version requests (the latest published when
    /// `version` is none), for the admin to approve.
    pub async fn requests(
        &self,
        feature_id: &str,
        version: Option<&str>,
    ) -> Result<(String, Vec<CapabilityRequest>), MarketError> {
        let version = self.resolve_version(feature_id, version).await?;
        let manifest = self.runtime.manifest(feature_id, &version).await?;
        Ok((version, manifest.capabilities))
    }

    /// Enables a feature in a guild with the approved capabilities. Every
    /// required capability must be approved; nothing it does not request can be.
    ///
    /// On a first enable (or a return on another version) the feature's
    /// `migrate` runs first; then its `lifecycle.enabled`. If either fails the
    /// guild's row is put back as it was and the error names the step.
    pub async fn enable(
        &self,
        guild_id: u64,
        feature_id: &str,
        version: Option<&str>,
        approval: Approval,
    ) -> Result<GuildFeature, MarketError> {
        let Some(guild) = self.runtime.store().guild(guild_id).await? else {
            return Err(MarketError::UnknownGuild(guild_id));
        };
        if guild.service != GuildService::Active {
            return Err(MarketError::NotServed {
                guild: guild_id,
                service: guild.service,
            });
        }
        let (plan_name, plan) = self.runtime.plan_of(&guild.plan);
        if !plan.allows_feature(feature_id) {
            return Err(MarketError::NotInPlan {
                guild: guild_id,
                plan: plan_name,
                feature: feature_id.into(),
                allowed: plan.features.unwrap_or_default(),
            });
        }
        let version = self.resolve_version(feature_id, version).await?;
        let manifest = self.runtime.manifest(feature_id, &version).await?;
        check_approval(&manifest, &approval)?;
        let store = self.runtime.store();
        let before = store.guild_feature(guild_id, feature_id).await?;
        let gf = store
            .enable_guild_feature(guild_id, feature_id, &version, &approval)
            .await?;
        let migrate_from = match &before {
            None => Some(String::new()),
            Some(b) if b.version != version => Some(b.version.clone()),
            Some(_) => None,
        };
        if let Err((step, reason)) = self.start(guild_id, feature_id, migrate_from).await {
            match &before {
                Some(before) => store.upsert_guild_feature(before).await?,
                None => {
                    store.delete_guild_feature(guild_id, feature_id).await?;
                }
            }
            self.audit(
                Some(guild_id),
                "feature.enable_failed",
                feature_id,
                json!({ "version": version, "step": step, "reason": reason }),
            )
            .await?;
            return Err(MarketError::EnableFailed {
                guild: guild_id,
                feature: feature_id.into(),
                step,
                reason,
            });
        }
        self.audit(
            Some(guild_id),
            "feature.enabled",
            feature_id,
            json!({ "version": version, "grants": gf.grants }),
        )
        .await?;
        Ok(gf)
    }

    /// Runs what a just-enabled feature needs: `migrate` from `migrate_from`
    /// (when given), then `lifecycle.enabled`. Fails with the step and why.
    async fn start(
        &self,
        guild_id: u64,
        feature_id: &str,
        migrate_from: Option<String>,
    ) -> Result<(), (&'static str, String)> {
        if let Some(from) = migrate_from {
            let outcome = self.runtime.migrate(guild_id, feature_id, &from).await;
            outcome.result.map_err(|e| ("migrate", e.to_string()))?;
        }
        let outcome = self.runtime.lifecycle(guild_id, feature_id, true).await;
        outcome
            .result
            .map_err(|e| ("lifecycle.enabled", e.to_string()))?;
        // Commands the feature defines in the guild: not reading them leaves
        // the guild with the manifest's, which is no reason to refuse.
        if let Err(error) = self
            .runtime
            .refresh_feature_commands(guild_id, feature_id)
            .await
        {
            tracing::warn!(guild = guild_id, feature = %feature_id, %error, "could not read the commands the feature defines");
        }
        Ok(())
    }

    /// Turns a feature off in a guild; its approvals and configuration are
    /// kept. The feature's `lifecycle.disabled` runs after it is off (so no
    /// new events reach it), still holding its grants; if it fails, the
    /// feature is off all the same and the audit entry says why.
    pub async fn disable(&self, guild_id: u64, feature_id: &str) -> Result<(), MarketError> {
        let gf = self
            .runtime
            .store()
            .set_guild_feature_enabled(guild_id, feature_id, false)
            .await?
            .ok_or_else(|| MarketError::NotInGuild {
                guild: guild_id,
                feature: feature_id.into(),
            })?;
        let hook = self.runtime.lifecycle(guild_id, feature_id, false).await;
        // Its queued Discord calls go too: a disabled feature acts no more.
        self.runtime
            .store()
            .outbox_cancel(guild_id, feature_id)
            .await?;
        let mut details = json!({ "version": gf.version });
        if let Err(e) = hook.result {
            details["disabled_hook_error"] = json!(e.to_string());
        }
        self.audit(Some(guild_id), "feature.disabled", feature_id, details)
            .await
    }

    /// Replaces what the guild's admin approved for a feature.
    pub async fn approve(
        &self,
        guild_id: u64,
        feature_id: &str,
        approval: Approval,
    ) -> Result<GuildFeature, MarketError> {
        let (before, after) = self
            .revise(guild_id, feature_id, |manifest, gf| {
                check_approval(manifest, &approval)?;
                Ok(GuildFeature {
                    grants: approval.clone(),
                    ..gf
                })
            })
            .await?;
        self.audit(
            Some(guild_id),
            "feature.grants_changed",
            feature_id,
            json!({ "before": before.grants, "after": after.grants }),
        )
        .await?;
        Ok(after)
    }

    /// Sets a feature's configuration in a guild after validating it against the
    /// schema of the version the guild runs.
    pub async fn set_config(
        &self,
        guild_id: u64,
        feature_id: &str,
        config: Value,
    ) -> Result<(), MarketError> {
        let keys: Vec<String> = config
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        self.revise(guild_id, feature_id, |manifest, gf| {
            validate_config(manifest, &config)?;
            Ok(GuildFeature {
                config: Some(config.clone()),
                ..gf
            })
        })
        .await?;
        // Keys only: configuration values may be private to the guild.
        self.audit(
            Some(guild_id),
            "feature.config_changed",
            feature_id,
            json!({ "keys": keys }),
        )
        .await
    }

    /// Moves a guild to another installed version of a feature and runs that
    /// version's `migrate`. If `migrate` fails the guild stays where it was.
    pub async fn upgrade(
        &self,
        guild_id: u64,
        feature_id: &str,
        to: &str,
    ) -> Result<GuildFeature, MarketError> {
        self.upgrade_with(guild_id, feature_id, to, None).await
    }

    /// [`Marketplace::upgrade`], replacing the approvals in the same step (for a
    /// version that requests more than the one before); `None` keeps them.
    pub async fn upgrade_with(
        &self,
        guild_id: u64,
        feature_id: &str,
        to: &str,
        approval: Option<Approval>,
    ) -> Result<GuildFeature, MarketError> {
        let to = self.resolve_version(feature_id, Some(to)).await?;
        let manifest = self.runtime.manifest(feature_id, &to).await?;
        let (before, upgraded) = self
            .revise(guild_id, feature_id, |_, gf| {
                if gf.version == to {
                    return Err(MarketError::SameVersion {
                        guild: guild_id,
                        feature: feature_id.into(),
                        version: to.clone(),
                    });
                }
                let approval = approval.clone().unwrap_or_else(|| gf.grants.clone());
                check_approval(&manifest, &approval)?;
                if let Some(config) = &gf.config {
                    validate_config(&manifest, config)?;
                }
                Ok(GuildFeature {
                    version: to.clone(),
                    grants: approval,
                    previous_version: Some(gf.version.clone()),
                    ..gf
                })
            })
            .await?;
        let outcome = self
            .runtime
            .migrate(guild_id, feature_id, &before.version)
            .await;
        if let Err(error) = outcome.result {
            // Back to where it was, keeping what others changed meanwhile.
            self.revise(guild_id, feature_id, |_, gf| {
                Ok(GuildFeature {
                    version: before.version.clone(),
                    grants: before.grants.clone(),
                    previous_version: before.previous_version.clone(),
                    ..gf
                })
            })
            .await?;
            let reason = error.to_string();
            self.audit(
                Some(guild_id),
                "feature.upgrade_failed",
                feature_id,
                json!({ "from": before.version, "to": to, "reason": reason }),
            )
            .await?;
            return Err(MarketError::MigrateFailed {
                guild: guild_id,
                feature: feature_id.into(),
                version: to,
                from: before.version,
                reason,
            });
        }
        self.audit(
            Some(guild_id),
            "feature.upgraded",
            feature_id,
            json!({ "from": before.version, "to": to }),
        )
        .await?;
        Ok(upgraded)
    }

    /// Returns a guild to the version it ran before its last upgrade. Data the
    /// newer version wrote stays; `migrate` is not run backwards.
    pub async fn rollback(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<GuildFeature, MarketError> {
        let (current, rolled_back) = self
            .revise(guild_id, feature_id, |_, gf| {
                let Some(previous) = gf.previous_version.clone() else {
                    return Err(MarketError::NothingToRollBack {
                        guild: guild_id,
                        feature: feature_id.into(),
                    });
                };
                // One step back only: rolling back twice is not a way forward again.
                Ok(GuildFeature {
                    version: previous,
                    previous_version: None,
                    ..gf
                })
            })
            .await?;
        self.audit(
            Some(guild_id),
            "feature.rolled_back",
            feature_id,
            json!({ "from": current.version, "to": rolled_back.version }),
        )
        .await?;
        Ok(rolled_back)
    }

    /// Applies `change` to the (guild, feature) row as read, with the manifest of
    /// the version it runs, and writes the result if no other change landed
    /// meanwhile; otherwise reads it again and re-applies `change` (which
    /// re-validates), a few times before giving up. Returns the row before and
    /// after.
    async fn revise(
        &self,
        guild_id: u64,
        feature_id: &str,
        mut change: impl FnMut(&Manifest, GuildFeature) -> Result<GuildFeature, MarketError>,
    ) -> Result<(GuildFeature, GuildFeature), MarketError> {
        for _ in 0..REVISE_ATTEMPTS {
            let before = self.in_guild(guild_id, feature_id).await?;
            let manifest = self.runtime.manifest(feature_id, &before.version).await?;
            let after = change(&manifest, before.clone())?;
            if let Some(after) = self.runtime.store().revise_guild_feature(&after).await? {
                return Ok((before, after));
            }
        }
        Err(MarketError::Contended {
            guild: guild_id,
            feature: feature_id.into(),
        })
    }

    async fn in_guild(&self, guild_id: u64, feature_id: &str) -> Result<GuildFeature, MarketError> {
        self.runtime
            .store()
            .guild_feature(guild_id, feature_id)
            .await?
            .ok_or_else(|| MarketError::NotInGuild {
                guild: guild_id,
                feature: feature_id.into(),
            })
    }

    /// `version`, checked to be installed, or the newest published version.
    async fn resolve_version(
        &self,
        feature_id: &str,
        version: Option<&str>,
    ) -> Result<String, MarketError> {
        let versions = self.runtime.store().versions_of(feature_id).await?;
        if versions.is_empty() {
            return Err(MarketError::UnknownFeature(feature_id.into()));
        }
        let found = match version {
            Some(wanted) => versions.iter().find(|v| v.version == wanted),
            None => versions.iter().find(|v| v.published),
        };
        found
            .map(|v| v.version.clone())
            .ok_or_else(|| MarketError::UnknownVersion {
                feature: feature_id.into(),
                version: version.unwrap_or("(latest published)").into(),
                installed: versions
                    .iter()
                    .map(|v| v.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    async fn audit(
        &self,
        guild_id: Option<u64>,
        action: &str,
        feature_id: &str,
        details: Value,
    ) -> Result<(), MarketError> {
        let entry = NewAuditEntry {
            guild_id,
            actor: self.actor.clone(),
            action: action.into(),
            feature_id: Some(feature_id.into()),
            details,
        };
        Ok(self.runtime.store().audit(&entry).await?)
    }
}

/// How many times [`Marketplace::revise`] reads, checks and writes before it
/// reports contention.
const REVISE_ATTEMPTS: usize = 3;

fn validate_config(manifest: &Manifest, config: &Value) -> Result<(), MarketError> {
    config::validate(&manifest.config_schema, config).map_err(|problems| {
        MarketError::InvalidConfig {
            feature: manifest.id.clone(),
            problems,
        }
    })
}

/// Every required capability approved, and nothing approved that is not requested.
fn check_approval(manifest: &Manifest, approval: &Approval) -> Result<(), MarketError> {
    let requested: Vec<_> = manifest.capabilities.iter().map(|r| r.capability).collect();
    let names = |caps: &mut dyn Iterator<Item = crate::wit::Capability>| {
        caps.map(|c| capability_name(c).to_string())
            .collect::<Vec<_>>()
    };
    let extra = names(
        &mut approval
            .capabilities
            .iter()
            .filter(|c| !requested.contains(c) && !always_granted(*c)),
    );
    if !extra.is_empty() {
        return Err(MarketError::NotRequested {
            feature: manifest.id.clone(),
            extra,
            requested: names(&mut requested.iter().copied()),
        });
    }
    let missing = names(
        &mut manifest
            .capabilities
            .iter()
            .filter(|r| {
                r.required
                    && !always_granted(r.capability)
                    && !approval.capabilities.contains(r.capability)
            })
            .map(|r| r.capability),
    );
    if !missing.is_empty() {
        return Err(MarketError::MissingRequired {
            feature: manifest.id.clone(),
            missing,
        });
    }
    Ok(())
}
