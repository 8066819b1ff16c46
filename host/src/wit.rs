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
