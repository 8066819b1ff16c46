//! Write TownesDev features in Rust.
//!
//! A feature is a WebAssembly component (`wasm32-wasip2`) that implements the
//! `townes:feature@0.1.4` contract (`wit/feature.wit`, world `full`). This
//! crate gives you:
//!
//! - the contract's types under short paths ([`Context`], [`Event`], [`Reply`],
//!   [`Manifest`], [`Error`], [`Capability`], …) with small builders
//!   ([`Reply::text`], [`Embed::new`], [`Command::slash`], [`CapabilityRequest::required`]);
//! - the [`Feature`] trait and one macro, [`export_feature!`], that turns it into a
//!   component;
//! - one module of free functions per capability ([`messages`], [`members`],
//!   [`roles`], [`channels`], [`moderation`], [`storage`], [`config`], [`scheduler`],
//!   [`audit`], [`log`], [`live`], [`history`], [`files`], [`http`], [`ai`]). Your component imports exactly the capabilities whose
//!   functions it calls, so it never asks the host for more than its manifest
//!   declares;
//! - [`snowflake`]: the JSON Schema and serde helpers for Discord ids in your
//!   configuration, which dashboards send as strings;
//! - [`time`]: the clock (which tests stop on the mock host), UTC calendar
//!   arithmetic, and Discord's RFC 3339 timestamps;
//! - [`testing::MockHost`], an in-memory host that the capability functions talk to
//!   when your code runs natively, so `cargo test` works with no host and no wasm.
//!
//! # A whole feature
//!
//! ```
//! use townes_sdk::{
//!     Capability, CapabilityRequest, Command, CommandInvocation, Context, Error, Feature,
//!     Manifest, Reply, storage,
//! };
//!
//! pub struct Hello;
//!
//! impl Feature for Hello {
//!     fn describe() -> Manifest {
//!         Manifest::new("hello", "0.1.0")
//!             .description("Says hello and counts how often")
//!             .command(Command::slash("hello", "Say hello"))
//!             .capability(CapabilityRequest::required(Capability::Storage, "count greetings"))
//!     }
//!
//!     fn on_command(_ctx: &Context, inv: CommandInvocation) -> Result<Reply, Error> {
//!         match inv.name.as_str() {
//!             "hello" => {
//!                 let n = storage::increment("greetings", 1)?;
//!                 let who = inv.invoker.display_name();
//!                 Ok(Reply::text(format!("Hello, {who}! (greeting #{n})")))
//!             }
//!             _ => Err(Error::InvalidArgument("unknown command".into())),
//!         }
//!     }
//! }
//!
//! townes_sdk::export_feature!(Hello);
//!
//! // A native unit test: no host, no wasm.
//! # fn main() {
//! use townes_sdk::{Member, User, testing::MockHost};
//! let host = MockHost::for_feature::<Hello>();
//! let ann = Member::new(User::new(7, "ann"));
//! let inv = CommandInvocation::new("hello", ann, 42);
//! let reply = Hello::on_command(&host.context(), inv.clone()).unwrap();
//! assert_eq!(reply.body.content.as_deref(), Some("Hello, ann! (greeting #1)"));
//! host.deny(Capability::Storage);
//! assert_eq!(
//!     Hello::on_command(&host.context(), inv).unwrap_err(),
//!     Error::Denied(Capability::Storage)
//! );
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` on a
//! `crate-type = ["cdylib", "rlib"]` crate; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component the host installs.
//!
//! # Errors are values
//!
//! A capability that is not granted in the guild returns
//! `Err(Error::Denied(capability))`, an exhausted quota `Err(Error::QuotaExceeded(..))`;
//! nothing traps. Handle them like any other result — for example answer in the
//! channel when a DM is not possible. [`testing::MockHost::deny`] lets you test that
//! path.

#![warn(missing_docs)]

/// The raw bindings generated from `wit/feature.wit` by `wit-bindgen`.
///
/// You rarely need this module: the crate root re-exports every type, and the
/// capability modules wrap every import. [`export_feature!`] uses the generated
/// `Guest` trait and `export_raw!` macro from here.
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "full",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "townes_sdk::bindings",
        generate_all,
        additional_derives: [PartialEq],
    });
}

mod builders;
pub mod testing;

pub mod ai;
pub mod audit;
pub mod channels;
pub mod config;
pub mod files;
pub mod history;
pub mod http;
pub mod invocation;
pub mod live;
pub mod log;
pub mod members;
pub mod messages;
pub mod moderation;
pub mod roles;
pub mod scheduler;
pub mod snowflake;
pub mod storage;
pub mod template;
pub mod time;

pub use bindings::exports::townes::feature::api::{
    Caller as ApiCaller, Method, Request as ApiRequest, Response as ApiResponse, Route,
};
pub use bindings::exports::townes::feature::moderation_events::{
    ModerationAction, ModerationEvent,
};
pub use bindings::townes::feature::channels::{
    ChannelKind, ChannelSpec, OverwriteTarget, PermissionOverwrite,
};
pub use bindings::townes::feature::files::FileInfo;
pub use bindings::townes::feature::history::{Attachment, PastMessage};
pub use bindings::townes::feature::log::Level as LogLevel;
pub use bindings::townes::feature::storage::{Entry, ScoreEntry};
pub use bindings::townes::feature::types::{
    ActionRow, Button, ButtonStyle, Capability, CapabilityRequest, Command, CommandArgument,
    CommandInvocation, CommandOption, CommandSource, ComponentInteraction, Context, Embed,
    EmbedField, Error, Event, EventKind, GuildInfo, InteractionKind, Manifest, Member, Message,
    MessageBody, MessageDeleted, Modal, OptionKind, OptionValue, Reaction, Reply, ScheduledJob,
    SelectMenu, SelectOption, Snowflake, Subcommand, TextInput, UiComponent, User,
};
pub use builders::limits;

/// `serde_json`, re-exported so features need no extra dependency for
/// [`Manifest::config`], [`config::get_json`] and [`storage::get_json`].
pub use serde_json;
/// Re-export of [`serde_json::json!`].
pub use serde_json::json;

/// A feature: the manifest plus one function per handler of the contract.
///
/// Only [`describe`](Feature::describe) is required. The other handlers have
/// defaults: events, scheduled jobs and migrations do nothing, and commands and
/// components answer `Error::InvalidArgument("unknown command")` /
/// `"unknown component"`. Turn the type into a component with [`export_feature!`].
///
/// Every handler gets the guild's [`Context`]. Capability functions are always
/// scoped to that guild by the host, so there is no guild id to pass around.
pub trait Feature {
    /// The manifest: id, version, commands, events, requested capabilities and the
    /// config schema. Called once at install time; must not call capabilities.
    fn describe() -> Manifest;

    /// An event the manifest subscribes to.
    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        let _ = (ctx, event);
        Ok(())
    }

    /// One of the manifest's commands, slash or prefix.
    fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        let _ = (ctx, invocation);
        Err(Error::InvalidArgument("unknown command".into()))
    }

    /// A button, select menu or modal submit on something this feature posted.
    fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        let _ = (ctx, interaction);
        Err(Error::InvalidArgument("unknown component".into()))
    }

    /// A job this feature scheduled with [`scheduler::schedule`].
    fn on_schedule(ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        let _ = (ctx, job);
        Ok(())
    }

    /// Called once per guild when the guild moves to this version from
    /// `from_version`, and on the feature's first enable there (from `""`).
    fn migrate(ctx: &Context, from_version: &str) -> Result<(), Error> {
        let _ = (ctx, from_version);
        Ok(())
    }

    /// The dashboard routes this feature serves (none by default). Read once
    /// at install; must not call capabilities. The host mounts them under
    /// `/api/guild/{guild_id}/features/{feature_id}` behind its own
    /// authorization and lists them in the OpenAPI document.
    fn routes() -> Vec<Route> {
        Vec::new()
    }

    /// One call to a route from [`routes`](Feature::routes). The body, if
    /// any, already matches the route's request schema; answer JSON that
    /// matches its response schema ([`ApiResponse::json`]).
    fn on_api(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        let _ = (ctx, request);
        Err(Error::NotFound("no such route".into()))
    }

    /// The guild's admins enabled the feature (after [`migrate`](Feature::migrate)
    /// on a first enable). An error turns it off again and is shown to them.
    fn on_enabled(ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// The guild's admins disabled the feature; its storage stays.
    fn on_disabled(ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// A member was banned, unbanned, kicked or timed out outside the
    /// platform (in Discord's own interface, or by another bot). Delivered
    /// only where the feature holds [`Moderation`](Capability::Moderation).
    fn on_moderation(ctx: &Context, event: ModerationEvent) -> Result<(), Error> {
        let _ = (ctx, event);
        Ok(())
    }

    /// The platform is back in the guild after being away (it started, or
    /// opened a new gateway session): events of the meantime were not
    /// delivered, so reconcile what the feature manages.
    fn on_guild_ready(ctx: &Context) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// Commands the feature defines in this guild beside its manifest's
    /// (commands the guild's admins wrote on the dashboard, say): asked for
    /// when the feature is enabled and after each of its dashboard routes that
    /// changes something. They reach [`Feature::on_command`] like the
    /// manifest's. At most 50; names the manifest or another feature uses are
    /// skipped.
    fn guild_commands(ctx: &Context) -> Result<Vec<Command>, Error> {
        let _ = ctx;
        Ok(Vec::new())
    }
}

/// Exports a type implementing [`Feature`] as the component's handlers.
///
/// Use it once per crate, on a plain type name:
///
/// ```
/// # use townes_sdk::{Feature, Manifest};
/// pub struct MyFeature;
/// impl Feature for MyFeature {
///     fn describe() -> Manifest { Manifest::new("my-feature", "0.1.0") }
/// }
/// townes_sdk::export_feature!(MyFeature);
/// ```
///
/// It implements the generated `Guest` traits (the handlers, `api`,
/// `lifecycle`, `moderation-events`, `guild-ready` and `guild-commands`) by delegating to `Feature`, and on
/// `wasm32` emits the component's exports. On native targets only the trait
/// implementation is emitted, so several features can be linked into one test
/// binary.
#[macro_export]
macro_rules! export_feature {
    ($ty:ident) => {
        impl $crate::bindings::Guest for $ty {
            fn describe() -> $crate::Manifest {
                <$ty as $crate::Feature>::describe()
            }

            fn on_event(
                ctx: $crate::Context,
                event: $crate::Event,
            ) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_event(&ctx, event)
            }

            fn on_command(
                ctx: $crate::Context,
                invocation: $crate::CommandInvocation,
            ) -> ::core::result::Result<$crate::Reply, $crate::Error> {
                <$ty as $crate::Feature>::on_command(&ctx, invocation)
            }

            fn on_component(
                ctx: $crate::Context,
                interaction: $crate::ComponentInteraction,
            ) -> ::core::result::Result<$crate::Reply, $crate::Error> {
                <$ty as $crate::Feature>::on_component(&ctx, interaction)
            }

            fn on_schedule(
                ctx: $crate::Context,
                job: $crate::ScheduledJob,
            ) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_schedule(&ctx, job)
            }

            fn migrate(
                ctx: $crate::Context,
                from_version: ::std::string::String,
            ) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::migrate(&ctx, &from_version)
            }
        }

        impl $crate::bindings::exports::townes::feature::api::Guest for $ty {
            fn routes() -> ::std::vec::Vec<$crate::Route> {
                <$ty as $crate::Feature>::routes()
            }

            fn handle(
                ctx: $crate::Context,
                request: $crate::ApiRequest,
            ) -> ::core::result::Result<$crate::ApiResponse, $crate::Error> {
                <$ty as $crate::Feature>::on_api(&ctx, request)
            }
        }

        impl $crate::bindings::exports::townes::feature::lifecycle::Guest for $ty {
            fn enabled(ctx: $crate::Context) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_enabled(&ctx)
            }

            fn disabled(ctx: $crate::Context) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_disabled(&ctx)
            }
        }

        impl $crate::bindings::exports::townes::feature::moderation_events::Guest for $ty {
            fn on_moderation(
                ctx: $crate::Context,
                event: $crate::ModerationEvent,
            ) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_moderation(&ctx, event)
            }
        }

        impl $crate::bindings::exports::townes::feature::guild_commands::Guest for $ty {
            fn commands(
                ctx: $crate::Context,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Command>, $crate::Error> {
                <$ty as $crate::Feature>::guild_commands(&ctx)
            }
        }

        impl $crate::bindings::exports::townes::feature::guild_ready::Guest for $ty {
            fn on_guild_ready(ctx: $crate::Context) -> ::core::result::Result<(), $crate::Error> {
                <$ty as $crate::Feature>::on_guild_ready(&ctx)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_raw!($ty with_types_in $crate::bindings);
    };
}

/// Runs the wasm import on `wasm32` and the thread's mock host elsewhere.
macro_rules! route {
    (wasm: $wasm:expr, mock: $mock:expr $(,)?) => {{
        #[cfg(target_arch = "wasm32")]
        {
            $wasm
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            $mock
        }
    }};
}
pub(crate) use route;
