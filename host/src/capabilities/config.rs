//! `config`: the feature's own validated configuration. Always granted.

use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::config::Host;
use crate::runtime::wit::{Capability, Error};

impl Host for HostState {
    async fn get(&mut self) -> Result<String, Error> {
        self.begin(Capability::Config, "config.get")?;
        Ok(self.config.clone())
    }
}
