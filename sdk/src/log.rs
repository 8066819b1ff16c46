//! Write to the host log — always granted.
//!
//! Lines are attributed to the feature and guild, and capped in size by the host.
//! Logging never fails.

use crate::route;

pub use crate::LogLevel as Level;

/// Writes one line at `level`.
pub fn write(level: Level, message: impl AsRef<str>) {
    let message = message.as_ref();
    route!(
        wasm: crate::bindings::townes::feature::log::write(level, message),
        mock: crate::testing::log_line(level, message),
    )
}

/// Writes one line at trace level.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message)
}

/// Writes one line at debug level.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message)
}

/// Writes one line at info level.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message)
}

/// Writes one line at warn level.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message)
}

/// Writes one line at error level.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message)
}
