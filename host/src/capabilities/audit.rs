//! `audit`: entries in the guild's audit log, attributed to the feature, at most
//! the plan's `audit_per_hour` per (guild, feature) so a busy feature cannot
//! bury the admins' own entries.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::audit::Host;
use crate::runtime::wit::{Capability, Error};
use crate::store::NewAuditEntry;

impl Host for HostState {
    async fn write(&mut self, action: String, details: String) -> Result<(), Error> {
        const CALL: &str = "audit.write";
        self.begin(Capability::Audit, CALL)?;
        let per_hour = self.limits.audit_per_hour;
        let result = if action.is_empty() || action.len() > 64 || details.len() > 4096 {
            Err(Error::InvalidArgument(
                "an audit action is 1 to 64 bytes and its details at most 4096".into(),
            ))
        } else if !self
            .rates
            .audit
            .take(self.guild_id, &self.scope.feature_id, per_hour)
        {
            Err(Error::QuotaExceeded(format!(
                "audit entries: {per_hour} per hour in this guild are used up"
            )))
        } else {
            let entry = NewAuditEntry {
                guild_id: Some(self.guild_id),
                actor: format!("feature:{}", self.scope.feature_id),
                action: action.clone(),
                feature_id: Some(self.scope.feature_id.clone()),
                details: serde_json::json!({ "details": details }),
            };
            self.store.audit(&entry).await.map_err(Error::from)
        };
        self.finish(CALL, result, |_| {
            Some(Effect::AuditWritten {
                action: action.clone(),
            })
        })
    }
}
