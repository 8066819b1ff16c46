//! Read this feature's own configuration in this guild — always granted.
//!
//! The host validates the admin's configuration against the manifest's schema
//! and hands out the default config until the admin sets one.

use crate::{Error, route};
use serde::de::DeserializeOwned;

/// The configuration as JSON text.
pub fn get() -> Result<String, Error> {
    route!(
        wasm: crate::bindings::townes::feature::config::get(),
        mock: crate::testing::call(crate::Capability::Config, |h| Ok(h.config_text())),
    )
}

/// The configuration parsed into `T` (a `#[derive(Deserialize)]` struct, or
/// [`serde_json::Value`]). A mismatch is `Error::InvalidArgument`.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Config { greeting: String }
/// let config: Config = townes_sdk::config::get_json()?;
/// # Ok::<(), townes_sdk::Error>(())
/// ```
pub fn get_json<T: DeserializeOwned>() -> Result<T, Error> {
    let text = get()?;
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidArgument(format!("config does not match the expected shape: {e}"))
    })
}
