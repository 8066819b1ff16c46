//! `fetcher`: `/fetch url [times]` sends `GET url` `times` times (default 1)
//! through `http` and answers `<status> <body>` of the last answer, or the
//! error of the first failure. Imports `http` and nothing else. Not shipped.

use townes_sdk::http::{self, HttpError};
use townes_sdk::{
    Command, CommandInvocation, CommandOption, Context, Error, Feature, Manifest, Reply,
};

pub struct Fetcher;

impl Feature for Fetcher {
    fn describe() -> Manifest {
        Manifest::new("fetcher", "0.1.0")
            .name("Fetcher")
            .description("Fetches a URL (a test guest)")
            .command(
                Command::slash("fetch", "Fetch a URL")
                    .option(CommandOption::text("url", "The URL").required())
                    .option(CommandOption::integer("times", "How often")),
            )
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        let url = invocation
            .text_arg("url")
            .ok_or_else(|| Error::invalid("url is required"))?
            .to_string();
        let times = invocation.integer_arg("times").unwrap_or(1).max(1);
        let mut last = String::new();
        for i in 0..times {
            match http::get(&url) {
                Ok(answer) => last = format!("{} {}", answer.status, answer.text()),
                Err(e) => return Ok(Reply::text(format!("#{i}: {}", describe(&e)))),
            }
        }
        Ok(Reply::text(last))
    }
}

fn describe(error: &HttpError) -> String {
    match error {
        HttpError::Denied(s) => format!("denied: {s}"),
        HttpError::BlockedAddress(s) => format!("blocked-address: {s}"),
        HttpError::InvalidArgument(s) => format!("invalid-argument: {s}"),
        HttpError::TooLarge(s) => format!("too-large: {s}"),
        HttpError::Timeout => "timeout".into(),
        HttpError::QuotaExceeded(s) => format!("quota-exceeded: {s}"),
        HttpError::Unavailable(s) => format!("unavailable: {s}"),
    }
}

townes_sdk::export_feature!(Fetcher);
