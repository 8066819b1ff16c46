//! `hostile`: a misbehaving feature for the host's test suite. Not shipped.
//!
//! Its behaviour is a contract the host tests rely on:
//! slash commands `loop`, `alloc`, `recurse`, `panic` never return normally;
//! `kick`, `role`, `fill`, `spam` report the typed error a capability returned
//! (formatted like a derived `Debug`, e.g. `Denied(Moderation)`); `oversized`
//! replies past Discord's limit; `ok` replies `ok`. Every message-created event
//! is echoed as `echo:[<content>]` in the same channel (except the bot's own).
//! `schedule` schedules job `ping` (payload: the channel id) due at once and
//! replies `schedule: <job id>` or the error; the job posts `job:ping` in that
//! channel. `migrate` stores the version it migrated from under `migrated-from`.
//!
//! Attacks on the host's limits: `random-big` asks WASI for 8 MiB of random
//! bytes at once and `random-loop` for 64 KiB forever (both never return
//! normally); `log-flood` logs a 12 MiB line 46 times and replies
//! `log-flood: done`; `calls-flood` calls storage a million times ignoring
//! every error and replies `calls-flood: <successes> ok`; `handles` opens WASI
//! stream handles without closing them (never returns normally);
//! `audit-flood` writes audit entries until refused and replies
//! `audit-flood: <n> then <error>`.
//!
//! `kick-ten` kicks its `user` ten times and replies with the last outcome
//! (`kick-ten: ok` or the error), for the breaker's count of refused requests.
//!
//! Scope probes: `purge` purges 5 messages in its `channel` and `overwrite`
//! allows the permission bits `allow` to the invoker in its `channel`; both
//! reply `<name>: ok` or the error.

use std::hint::black_box;

use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, CommandOption, Context, Error,
    Event, EventKind, Feature, Manifest, MessageBody, OptionValue, PermissionOverwrite, Reply,
    ScheduledJob, audit, channels, log, messages, moderation, roles, scheduler, storage,
};

/// The feature.
pub struct Hostile;

/// The Debug form a derived impl would print (`Denied(Moderation)`,
/// `QuotaExceeded("storage bytes")`); the generated Debug prints
/// `Error::Denied(Capability::Moderation)` instead.
pub fn short(error: &Error) -> String {
    match error {
        Error::Denied(cap) => format!("Denied({})", capability_name(*cap)),
        Error::QuotaExceeded(s) => format!("QuotaExceeded({s:?})"),
        Error::NotFound(s) => format!("NotFound({s:?})"),
        Error::InvalidArgument(s) => format!("InvalidArgument({s:?})"),
        Error::Unavailable(s) => format!("Unavailable({s:?})"),
    }
}

fn capability_name(cap: Capability) -> &'static str {
    match cap {
        Capability::Messages => "Messages",
        Capability::MessageContent => "MessageContent",
        Capability::Members => "Members",
        Capability::Roles => "Roles",
        Capability::Channels => "Channels",
        Capability::Moderation => "Moderation",
        Capability::Storage => "Storage",
        Capability::Config => "Config",
        Capability::Scheduler => "Scheduler",
        Capability::Audit => "Audit",
        Capability::Log => "Log",
    }
}

fn outcome(what: &str, result: Result<(), Error>) -> Reply {
    match result {
        Ok(()) => Reply::text(format!("{what}: ok")),
        Err(e) => Reply::text(format!("{what}: {}", short(&e))),
    }
}

/// Spins until the host interrupts it.
fn spin() -> ! {
    let mut i = 0u64;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB chunks until the host kills it.
fn hog() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for i in (0..CHUNK).step_by(4096) {
            chunk[i] = 1;
        }
        held.push(black_box(chunk));
        black_box(&held);
    }
}

/// Unbounded, non-tail recursion with a stack frame the optimiser must keep.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(black_box(frame)[(depth % 32) as usize])
}

#[cfg(target_arch = "wasm32")]
fn random_bytes(len: u64) -> Vec<u8> {
    wasip2::random::random::get_random_bytes(len)
}

#[cfg(target_arch = "wasm32")]
fn stdout_handle() -> impl Sized {
    wasip2::cli::stdout::get_stdout()
}

// Natively (the crate's own unit tests) there is no WASI to attack.
#[cfg(not(target_arch = "wasm32"))]
fn random_bytes(len: u64) -> Vec<u8> {
    vec![0; len as usize]
}

#[cfg(not(target_arch = "wasm32"))]
fn stdout_handle() -> impl Sized {}

fn first_user(inv: &CommandInvocation) -> Option<u64> {
    inv.arguments.iter().find_map(|a| a.value.as_user())
}

fn role_arg(inv: &CommandInvocation) -> Option<u64> {
    match inv.arg("role")? {
        OptionValue::Role(id) | OptionValue::User(id) | OptionValue::Channel(id) => Some(*id),
        OptionValue::Integer(i) => u64::try_from(*i).ok(),
        OptionValue::Text(s) => s.parse().ok(),
        _ => None,
    }
}

impl Feature for Hostile {
    fn describe() -> Manifest {
        let mut m = Manifest::new("hostile", "0.1.0")
            .name("Hostile")
            .description("Misbehaves on purpose; for the host's tests.")
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(Capability::Messages, "echo"))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "fill, spam",
            ))
            .capability(CapabilityRequest::optional(Capability::Roles, "role"))
            .capability(CapabilityRequest::optional(Capability::Moderation, "kick"))
            .capability(CapabilityRequest::optional(
                Capability::MessageContent,
                "echo",
            ))
            .capability(CapabilityRequest::optional(Capability::Members, "nothing"))
            .capability(CapabilityRequest::optional(
                Capability::Scheduler,
                "schedule",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Audit,
                "audit-flood",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Channels,
                "overwrite",
            ));
        for (name, description) in [
            ("loop", "Spin forever"),
            ("alloc", "Allocate until killed"),
            ("recurse", "Recurse without end"),
            ("panic", "Panic"),
            ("fill", "Write 1 KiB values until storage refuses"),
            ("spam", "Call storage until refused"),
            ("oversized", "Reply with 5000 characters"),
            ("ok", "Reply ok"),
            ("schedule", "Schedule a job that posts here"),
            ("random-big", "Ask WASI for 8 MiB of random bytes"),
            ("random-loop", "Ask WASI for random bytes forever"),
            ("log-flood", "Log huge lines"),
            ("log-forever", "Log huge lines until stopped"),
            ("send", "Send a message here"),
            ("calls-flood", "Call storage 20,000 times"),
            ("handles", "Open WASI handles forever"),
            ("audit-flood", "Write audit entries until refused"),
        ] {
            m = m.command(Command::slash(name, description));
        }
        m.command(
            Command::slash("kick", "Kick someone (default: yourself)")
                .option(CommandOption::user("user", "Who")),
        )
        .command(
            Command::slash("role", "Give yourself a role")
                .option(CommandOption::role("role", "Which").required()),
        )
        .command(
            Command::slash("kick-ten", "Kick someone ten times")
                .option(CommandOption::user("user", "Who").required()),
        )
        .command(
            Command::slash("purge", "Purge 5 messages")
                .option(CommandOption::channel("channel", "Where").required()),
        )
        .command(
            Command::slash("overwrite", "Allow yourself permissions in a channel")
                .option(CommandOption::channel("channel", "Where").required())
                .option(CommandOption::integer("allow", "Permission bits").required()),
        )
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        if let Event::MessageCreated(message) = event {
            // Never echo our own echoes.
            if message.author.id == ctx.bot_user_id {
                return Ok(());
            }
            let body = MessageBody::text(format!("echo:[{}]", message.content));
            messages::send(message.channel_id, body)?;
        }
        Ok(())
    }

    fn on_command(_ctx: &Context, inv: CommandInvocation) -> Result<Reply, Error> {
        let invoker = inv.invoker.user.id;
        let reply = match inv.name.as_str() {
            "loop" => spin(),
            "alloc" => hog(),
            "recurse" => Reply::text(format!("recurse: {}", recurse(0))),
            "panic" => panic!("hostile panic"),
            "kick" => {
                let target = first_user(&inv).unwrap_or(invoker);
                outcome("kick", moderation::kick(target, None))
            }
            "role" => match role_arg(&inv) {
                Some(role) => outcome("role", roles::add(invoker, role, None)),
                None => Reply::text("role: missing role argument"),
            },
            "fill" => {
                let value = "v".repeat(1024);
                let mut i = 0u64;
                loop {
                    if let Err(e) = storage::set(&format!("fill-{i}"), &value) {
                        break Reply::text(format!("fill: stopped at {i} with {}", short(&e)));
                    }
                    i += 1;
                }
            }
            "spam" => {
                let mut n = 0u32;
                let mut failure = None;
                while n < 1_000_000 {
                    match storage::get("x") {
                        Ok(_) => n += 1,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                match failure {
                    Some(e) => Reply::text(format!("spam: {n} calls then {}", short(&e))),
                    None => Reply::text("spam: no error"),
                }
            }
            "oversized" => Reply::text("x".repeat(5000)),
            "kick-ten" => {
                let target = first_user(&inv).unwrap_or(invoker);
                let mut last = Ok(());
                for _ in 0..10 {
                    last = moderation::kick(target, None);
                }
                outcome("kick-ten", last)
            }
            "purge" => {
                let channel = inv.channel_arg("channel").unwrap_or_default();
                outcome("purge", moderation::purge(channel, 5).map(|_| ()))
            }
            "overwrite" => {
                let channel = inv.channel_arg("channel").unwrap_or_default();
                let allow = inv.integer_arg("allow").unwrap_or_default() as u64;
                let overwrite = PermissionOverwrite::member(invoker, allow, 0);
                outcome("overwrite", channels::set_overwrite(channel, overwrite))
            }
            "random-big" => {
                let bytes = random_bytes(8 << 20);
                Reply::text(format!("random-big: got {}", bytes.len()))
            }
            "random-loop" => loop {
                black_box(random_bytes(64 << 10));
            },
            "log-flood" => {
                let line = "x".repeat(12 << 20);
                for _ in 0..46 {
                    log::info(&line);
                }
                Reply::text("log-flood: done")
            }
            "send" => outcome(
                "send",
                messages::send(inv.channel_id, MessageBody::text("hi")).map(|_| ()),
            ),
            "log-forever" => {
                // Nearly all the time is the host's: copying each argument out.
                let line = "x".repeat(12 << 20);
                loop {
                    log::info(&line);
                }
            }
            "calls-flood" => {
                let ok = (0..20_000).filter(|_| storage::get("x").is_ok()).count();
                Reply::text(format!("calls-flood: {ok} ok"))
            }
            "handles" => {
                let mut held = Vec::new();
                loop {
                    held.push(stdout_handle());
                    black_box(&held);
                }
            }
            "audit-flood" => {
                let mut n = 0u32;
                loop {
                    if let Err(e) = audit::write("flood", "x") {
                        break Reply::text(format!("audit-flood: {n} then {}", short(&e)));
                    }
                    n += 1;
                }
            }
            "ok" => Reply::text("ok"),
            "schedule" => match scheduler::schedule("ping", &inv.channel_id.to_string(), 0) {
                Ok(id) => Reply::text(format!("schedule: {id}")),
                Err(e) => Reply::text(format!("schedule: {}", short(&e))),
            },
            _ => return Err(Error::InvalidArgument("unknown command".into())),
        };
        Ok(reply)
    }

    fn on_schedule(_ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        let channel = job
            .payload
            .parse()
            .map_err(|_| Error::InvalidArgument("payload is not a channel id".into()))?;
        messages::send(channel, MessageBody::text(format!("job:{}", job.name)))?;
        Ok(())
    }

    fn migrate(_ctx: &Context, from_version: &str) -> Result<(), Error> {
        storage::set("migrated-from", from_version)
    }
}

townes_sdk::export_feature!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;
    use townes_sdk::{Member, Message, User, testing::MockHost};

    fn run(host: &MockHost, inv: CommandInvocation) -> String {
        let reply = Hostile::on_command(&host.context(), inv).unwrap();
        reply.content().unwrap_or_default().to_string()
    }

    fn cmd(name: &str) -> CommandInvocation {
        CommandInvocation::new(name, Member::new(User::new(7, "eve")), 42)
    }

    #[test]
    fn capability_outcomes_are_reported() {
        let host = MockHost::for_feature::<Hostile>();
        assert_eq!(run(&host, cmd("ok")), "ok");
        assert_eq!(run(&host, cmd("kick")), "kick: ok");
        host.deny(Capability::Moderation);
        assert_eq!(run(&host, cmd("kick")), "kick: Denied(Moderation)");
        let role = cmd("role").with_arg("role", OptionValue::Role(5));
        assert_eq!(run(&host, role.clone()), "role: ok");
        host.deny(Capability::Roles);
        assert_eq!(run(&host, role), "role: Denied(Roles)");
        assert_eq!(run(&host, cmd("oversized")).len(), 5000);
    }

    #[test]
    fn fill_and_spam_stop_at_the_first_error() {
        let host = MockHost::for_feature::<Hostile>();
        host.set_storage_quota(10 * 1024, 1000);
        assert!(run(&host, cmd("fill")).starts_with("fill: stopped at 9 with QuotaExceeded("));
        host.set_call_budget(100);
        assert_eq!(
            run(&host, cmd("spam")),
            r#"spam: 100 calls then QuotaExceeded("host calls")"#
        );
    }

    #[test]
    fn echoes_messages_but_not_its_own() {
        let host = MockHost::for_feature::<Hostile>();
        let ctx = host.context();
        let msg = Message::new(1, 9, User::new(7, "eve"), "hi");
        Hostile::on_event(&ctx, Event::MessageCreated(msg)).unwrap();
        let own = Message::new(2, 9, User::new(ctx.bot_user_id, "bot").as_bot(), "x");
        Hostile::on_event(&ctx, Event::MessageCreated(own)).unwrap();
        assert_eq!(host.sent_texts(), ["echo:[hi]"]);
    }
}
