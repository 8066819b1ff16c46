//! `config`: the feature's own validated configuration. Always granted.

use super::Cap;
use crate::wit::townes::feature::config::Host;
use crate::wit::{Capability, Error};

/// The feature's configuration in this guild, as JSON.
pub struct ConfigCtx(pub String);

impl Host for Cap<'_, ConfigCtx> {
    async fn get(&mut self) -> Result<String, Error> {
        self.calls.begin(Capability::Config, "config.get")?;
        Ok(self.ctx.0.clone())
    }
}
