//! `live`: updates a feature sends to its guild's dashboard subscribers
//! (`ticket_update`, …). Free to import, like `log`; each call spends
//! host-call fuel and is held to a kind name that cannot pose as the host or as
//! the socket's own replies and a size (`townes_limits::live`), and to a
//! per-(guild, feature) rate, so a feature cannot flood the dashboards or put
//! words in the host's mouth.

use super::rates::Rates;
use super::{Cap, Effect};
use crate::live::{Live, LiveEvent, LiveKind};
use crate::store::Scope;
use crate::wit::Error;
use crate::wit::townes::feature::live::Host;
use std::sync::Arc;

/// Events one feature may publish in one guild per minute.
pub const PER_MINUTE: u32 = 600;

/// What `live` needs: the bus, whose events they are, and their allowance.
pub struct LiveCtx {
    pub live: Live,
    pub scope: Scope,
    pub rates: Arc<Rates>,
}

impl Host for Cap<'_, LiveCtx> {
    async fn publish(&mut self, kind: String, data: String) -> Result<(), Error> {
        const CALL: &str = "live.publish";
        self.calls.spend(CALL)?;
        let Scope {
            guild_id,
            feature_id,
        } = &self.ctx.scope;
        let result = townes_limits::live::check_event(&kind, &data)
            .map_err(Error::from)
            .and_then(|()| {
                serde_json::from_str(&data)
                    .map_err(|e| Error::InvalidArgument(format!("live data is not JSON: {e}")))
            })
            .and_then(|data| {
                if !self.ctx.rates.live.take(*guild_id, feature_id, PER_MINUTE) {
                    return Err(Error::QuotaExceeded(format!(
                        "live events: {PER_MINUTE} per minute in this guild are used up"
                    )));
                }
                let kind = LiveKind::Feature {
                    kind: kind.clone(),
                    feature: feature_id.clone(),
                };
                self.ctx.live.publish(LiveEvent::new(*guild_id, kind, data));
                Ok(())
            });
        self.calls.finish(CALL, result, |()| {
            Some(Effect::LivePublished { kind: kind.clone() })
        })
    }
}
