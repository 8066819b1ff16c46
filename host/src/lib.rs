//! The TownesDev Bot Platform host.
//!
//! - [`runtime`]: the wasmtime sandbox that runs features.
//! - [`capabilities`]: one module per WIT interface, each checking the grant.
//! - [`grants`]: what a feature may do in a guild.
//! - [`marketplace`]: catalogue and per-guild feature operations.
//! - [`store`]: the database (SQLite or Postgres).
//! - [`discord`]: the port every Discord call goes through.

pub mod capabilities;
pub mod commands;
pub mod discord;
pub mod gateway;
pub mod grants;
pub mod interactions;
pub mod marketplace;
pub mod platform;
pub mod runtime;
pub mod store;
