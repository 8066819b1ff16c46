//! The AI concierge: answers `/ask` (and `!ask`) and messages that mention the
//! bot with the guild's model (`ai`, approved per guild), in the persona,
//! tone and language its admins set, from the knowledge base they keep on the
//! dashboard, remembering the last few exchanges of each channel.
//!
//! Members are not trusted: their questions go to the model as questions,
//! under a system prompt that tells it so; answers are posted with mass
//! mentions defused; each member gets a daily number of questions, and the
//! host's token caps apply on top. Every refusal is told to the member in
//! words (the limit reached, AI not approved, the model unreachable).

mod ask;
mod config;
mod knowledge;
mod memory;
mod prompt;
#[cfg(test)]
mod tests;

pub use config::{AnswerLength, Config};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, Context, Error, Event, EventKind, Feature, Manifest, Reply, Route, serde_json,
};

pub struct Concierge;

impl Feature for Concierge {
    fn describe() -> Manifest {
        Manifest::new("ai", "0.1.0")
            .name("AI concierge")
            .description(
                "Answers /ask and mentions with the server's AI model, in the tone you set, \
                 from a knowledge base you keep",
            )
            .command(
                Command::slash_and_prefix("ask", "Ask the concierge a question").option(
                    CommandOption::text("question", "What you want to know").required(),
                ),
            )
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps the knowledge base, each channel's last exchanges and members' daily questions",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Messages,
                "answers messages that mention the bot",
            ))
            .capability(CapabilityRequest::optional(
                Capability::MessageContent,
                "reads the question in a message that mentions the bot",
            ))
            .config(
                config::schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "ask" => ask::command(&invocation),
            _ => Err(Error::InvalidArgument("unknown command".into())),
        }
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::MessageCreated(message) => ask::mention(ctx, &message),
            _ => Ok(()),
        }
    }

    fn routes() -> Vec<Route> {
        knowledge::routes()
    }

    fn on_api(_ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        knowledge::handle(request)
    }
}

townes_sdk::export_feature!(Concierge);
