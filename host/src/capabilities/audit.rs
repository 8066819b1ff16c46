//! `audit`: entries in the guild's audit log, attributed to the feature, at most
//! the plan's `audit_per_hour` per (guild, feature) so a busy feature cannot
//! bury the admins' own entries.

use super::rates::Rates;
use super::{Cap, Effect};
use crate::store::{NewAuditEntry, Scope, Store};
use crate::wit::townes::feature::audit::Host;
use crate::wit::{Capability, Error};
use std::sync::Arc;

/// What `audit` needs: where entries go, whose they are, and the allowance
/// they are counted against.
pub struct AuditCtx {
    pub store: Store,
    pub scope: Scope,
    pub rates: Arc<Rates>,
    pub audit_per_hour: u32,
}

impl Host for Cap<'_, AuditCtx> {
    async fn write(&mut self, action: String, details: String) -> Result<(), Error> {
        const CALL: &str = "audit.write";
        self.calls.begin(Capability::Audit, CALL)?;
        let per_hour = self.ctx.audit_per_hour;
        let result = if let Err(e) = townes_limits::audit::check_entry(&action, &details) {
            Err(e.into())
        } else if !self.ctx.rates.audit.take(
            self.ctx.scope.guild_id,
            &self.ctx.scope.feature_id,
            per_hour,
        ) {
            Err(Error::QuotaExceeded(format!(
                "audit entries: {per_hour} per hour in this guild are used up"
            )))
        } else {
            let entry = NewAuditEntry {
                guild_id: Some(self.ctx.scope.guild_id),
                actor: format!("feature:{}", self.ctx.scope.feature_id),
                action: action.clone(),
                feature_id: Some(self.ctx.scope.feature_id.clone()),
                details: serde_json::json!({ "details": details }),
            };
            self.ctx.store.audit(&entry).await.map_err(Error::from)
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::AuditWritten {
                action: action.clone(),
            })
        })
    }
}
