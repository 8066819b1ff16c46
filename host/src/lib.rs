//! The TownesDev Bot Platform host.
//!
//! - [`wit`]: the types generated from the feature contract (`wit/feature.wit`).
//! - [`api`]: the dashboard's REST and WebSocket API.
//! - [`runtime`]: the wasmtime sandbox that runs features.
//! - [`capabilities`]: one module per WIT interface, each with its own context,
//!   checking the grant.
//! - [`grants`]: what a feature may do in a guild.
//! - [`marketplace`]: catalogue and per-guild feature operations.
//! - [`store`]: the database (SQLite or Postgres).
//! - [`discord`]: the port every Discord call goes through.
//! - [`metrics`]: Prometheus metrics, served by the API's `/metrics` route.
//! - [`error_reporting`]: optional Sentry reporting, secrets scrubbed.
//! - [`billing`]: plans tenants pay for, trials, Stripe.
//! - [`licensing`]: self-hosting licences, the leases runners act on, and both
//!   sides of activation and refresh.
//! - [`offboarding`]: moving to self-hosting, removing the bot, non-payment;
//!   retention, purge and a member's erasure.
//! - [`live`]: live events for the dashboard, fanned out through Redis when hosted.
//! - [`export`]: encrypted export bundles of a tenant or guild, and imports.
//! - [`community_health`]: the daily community health score per guild and the
//!   activity counting behind it.

pub mod ai;
pub mod api;
pub mod billing;
pub mod capabilities;
pub mod commands;
pub mod community_health;
pub mod discord;
pub mod error_reporting;
pub mod event_stream;
pub mod export;
pub mod gateway;
pub mod grants;
pub mod interactions;
pub mod licensing;
pub mod live;
pub mod marketplace;
pub mod metrics;
pub mod offboarding;
pub mod platform;
pub mod runtime;
pub mod shared_limits;
pub mod store;
pub mod wit;
