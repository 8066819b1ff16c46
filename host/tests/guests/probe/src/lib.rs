//! `probe`: answers each join, message and command with exactly one Discord
//! write, so the scale-out tests can count that nothing was lost or done
//! twice: a join posts `welcome <user>` in the configured channel, a message
//! schedules a job that posts `job <message>` in its channel, `/ping`
//! answers `pong`. Not shipped.

use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, Context, Error, Event, EventKind,
    Feature, Manifest, Reply, ScheduledJob, Snowflake, config, json, messages, scheduler,
    snowflake,
};

pub struct Probe;

#[derive(serde::Deserialize)]
struct Config {
    #[serde(deserialize_with = "snowflake::de_opt")]
    channel: Option<Snowflake>,
}

const JOB: &str = "answer";

impl Feature for Probe {
    fn describe() -> Manifest {
        Manifest::new("probe", "0.1.0")
            .name("Probe")
            .description("One Discord write per join, message and command")
            .command(Command::slash("ping", "Answers pong"))
            .event(EventKind::MemberJoined)
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(Capability::Messages, "answers"))
            .capability(CapabilityRequest::required(
                Capability::Scheduler,
                "answers messages later",
            ))
            .config(
                json!({
                    "type": "object",
                    "properties": { "channel": snowflake::nullable_schema() },
                    "additionalProperties": false
                }),
                json!({ "channel": null }),
            )
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "ping" => Ok(Reply::text("pong")),
            _ => Err(Error::invalid("unknown command")),
        }
    }

    fn on_event(_ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::MemberJoined(member) => {
                let config: Config = config::get_json()?;
                if let Some(channel) = config.channel {
                    messages::send(channel, format!("welcome {}", member.user.id))?;
                }
            }
            Event::MessageCreated(message) => {
                let payload = format!("{} {}", message.channel_id, message.id);
                scheduler::schedule(JOB, &payload, 0)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_schedule(_ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        if job.name != JOB {
            return Ok(());
        }
        let (channel, message) = job
            .payload
            .split_once(' ')
            .ok_or_else(|| Error::invalid("payload: <channel> <message>"))?;
        let channel: Snowflake = channel
            .parse()
            .map_err(|_| Error::invalid("payload: the channel is not a snowflake"))?;
        messages::send(channel, format!("job {message}"))?;
        Ok(())
    }
}

townes_sdk::export_feature!(Probe);
