//! Host-side bindings generated from `wit/feature.wit`.
//!
//! Every import is async so capabilities can await the store and Discord; none is
//! trappable, because a capability failure is a typed `error` value for the guest,
//! never a reason to kill it. The types derive serde so manifests can be stored as
//! JSON and events can be given on the command line.

wasmtime::component::bindgen!({
    world: "feature",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
});

pub use self::townes::feature::types::*;

impl MessageBody {
    /// A message with only text.
    pub fn text(content: impl Into<String>) -> Self {
        MessageBody {
            content: Some(content.into()),
            embeds: Vec::new(),
            components: Vec::new(),
        }
    }
}

/// Bindings of the optional exports (world `extensions`: `api`,
/// `lifecycle`, `moderation-events`, `guild-ready` and `guild-commands`),
/// sharing the types above. A component may lack them; the
/// runtime looks each one up beside the required `feature` exports.
pub mod extensions {
    wasmtime::component::bindgen!({
        world: "extensions",
        path: "../wit",
        exports: { default: async },
        with: { "townes:feature/types": super::townes::feature::types },
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    });

    pub use self::exports::townes::feature::api::{
        Caller as ApiCaller, Guest as ApiGuest, GuestIndices as ApiIndices, Method,
        Request as ApiRequest, Response as ApiResponse, Route,
    };
    pub use self::exports::townes::feature::guild_commands::GuestIndices as GuildCommandsIndices;
    pub use self::exports::townes::feature::guild_ready::GuestIndices as GuildReadyIndices;
    pub use self::exports::townes::feature::lifecycle::GuestIndices as LifecycleIndices;
    pub use self::exports::townes::feature::moderation_events::{
        GuestIndices as ModerationEventsIndices, ModerationAction, ModerationEvent,
    };
}
