//! The moderation feature against the SDK's mock host: no host, no wasm.

use super::*;
use townes_sdk::testing::{Effect, MockHost};
use townes_sdk::{CommandArgument, Member, OptionValue, User};

const MOD: Snowflake = 7;
const ANN: Snowflake = 42;
const LOG: Snowflake = 900;

fn host() -> MockHost {
    let host = MockHost::for_feature::<Moderation>();
    host.add_member(Member::new(User::new(MOD, "mod")));
    host.add_member(Member::new(User::new(ANN, "ann")));
    host
}

fn run(host: &MockHost, name: &str, args: &[(&str, OptionValue)]) -> Result<Reply, Error> {
    let mut invocation = CommandInvocation::new(name, Member::new(User::new(MOD, "mod")), 100);
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();
    Moderation::on_command(&host.context(), invocation)
}

fn sub(host: &MockHost, subcommand: &str, args: &[(&str, OptionValue)]) -> Result<Reply, Error> {
    let mut invocation = CommandInvocation::new("case", Member::new(User::new(MOD, "mod")), 100);
    invocation.subcommand = Some(subcommand.into());
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();
    Moderation::on_command(&host.context(), invocation)
}

fn user() -> (&'static str, OptionValue) {
    ("user", OptionValue::User(ANN))
}

#[test]
fn durations_parse_and_nonsense_is_refused_with_a_hint() {
    assert_eq!(parse_duration("90s"), Ok(90));
    assert_eq!(parse_duration("1h30m"), Ok(5400));
    assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
    assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
    for bad in ["", "10", "h", "1x", "-5m", "0m", "99999999999999999999w"] {
        let error = parse_duration(bad).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidArgument(why) if why.contains("e.g.")),
            "{bad}"
        );
    }
}

#[test]
fn each_action_is_a_numbered_case_posted_to_the_mod_log() {
    let host = host();
    host.set_config(json!({ "log_channel": LOG.to_string() }));
    run(
        &host,
        "kick",
        &[user(), ("reason", OptionValue::Text("spam".into()))],
    )
    .unwrap();
    run(
        &host,
        "timeout",
        &[user(), ("duration", OptionValue::Text("10m".into()))],
    )
    .unwrap();
    let actions = host.moderation_actions();
    assert!(
        matches!(actions[0], Effect::Kicked { user_id: ANN, .. }),
        "{actions:?}"
    );
    assert!(matches!(
        actions[1],
        Effect::TimedOut {
            user_id: ANN,
            seconds: 600,
            ..
        }
    ));
    let first = load_case(1).unwrap();
    assert_eq!(
        (
            first.action.as_str(),
            first.target.as_str(),
            first.moderator.as_deref(),
            first.reason.as_deref()
        ),
        ("kick", "42", Some("7"), Some("spam"))
    );
    assert_eq!(load_case(2).unwrap().duration, Some(600));
    let logged: Vec<_> = host
        .sent_messages()
        .into_iter()
        .filter(|(channel, _)| *channel == LOG)
        .collect();
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[0].1.embeds[0].title.as_deref(), Some("Case #1"));

    sub(
        &host,
        "note",
        &[
            ("number", OptionValue::Integer(1)),
            ("text", OptionValue::Text("appealed".into())),
        ],
    )
    .unwrap();
    assert_eq!(load_case(1).unwrap().notes[0].text, "appealed");
    assert!(matches!(
        sub(&host, "show", &[("number", OptionValue::Integer(9))]),
        Err(Error::NotFound(_))
    ));
    let cases = run(&host, "cases", &[user()]).unwrap();
    let text = cases.body.content.unwrap();
    assert!(
        text.contains("#2 timeout") && text.contains("#1 kick spam"),
        "{text}"
    );
}

#[test]
fn warnings_escalate_at_each_step_and_decay() {
    let host = host();
    host.set_config(json!({
        "decay_days": 30,
        "escalation": [
            { "points": 3, "action": "timeout", "duration": "1h" },
            { "points": 5, "action": "kick" }
        ]
    }));
    run(&host, "warn", &[user()]).unwrap();
    run(&host, "warn", &[user()]).unwrap();
    assert!(
        host.moderation_actions().is_empty(),
        "2 points: nothing yet"
    );
    let third = run(&host, "warn", &[user()]).unwrap();
    assert_eq!(third.body.embeds.len(), 2, "the warning and its escalation");
    assert!(matches!(
        host.moderation_actions()[..],
        [Effect::TimedOut {
            user_id: ANN,
            seconds: 3600,
            ..
        }]
    ));
    run(
        &host,
        "warn",
        &[user(), ("points", OptionValue::Integer(2))],
    )
    .unwrap();
    assert!(matches!(
        host.moderation_actions().last(),
        Some(Effect::Kicked { user_id: ANN, .. })
    ));
    let kick = load_case(6).unwrap();
    assert_eq!(
        (kick.action.as_str(), kick.moderator.as_deref()),
        ("kick", None)
    );
    assert!(kick.reason.unwrap().contains("5 warning points"));

    // Warnings older than the decay no longer count.
    let mut old = load_case(1).unwrap();
    old.at -= 31 * 86_400;
    storage::set(
        &case_key(1),
        &townes_sdk::serde_json::to_string(&old).unwrap(),
    )
    .unwrap();
    let config: Config = config::get_json().unwrap();
    assert_eq!(active_points(&config, ANN).unwrap(), 4);
}

#[test]
fn a_temporary_ban_schedules_its_own_end_and_the_job_lifts_it_once() {
    let host = host();
    run(
        &host,
        "ban",
        &[user(), ("duration", OptionValue::Text("7d".into()))],
    )
    .unwrap();
    let job = host
        .effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::JobScheduled {
                id,
                name,
                payload,
                delay_seconds,
            } => Some((id, name, payload, delay_seconds)),
            _ => None,
        })
        .expect("a job");
    assert_eq!(
        (job.1.as_str(), job.2.as_str(), job.3),
        (UNBAN_JOB, "42", 7 * 86_400)
    );
    let job = ScheduledJob::new(job.0, UNBAN_JOB, "42");
    Moderation::on_schedule(&host.context(), job.clone()).unwrap();
    assert!(matches!(
        host.moderation_actions().last(),
        Some(Effect::Unbanned { user_id: ANN, .. })
    ));
    assert_eq!(load_case(2).unwrap().action, "unban");
    // Lifted already (by hand, or a retry): the job ends quietly, no new case.
    Moderation::on_schedule(&host.context(), job).unwrap();
    assert!(load_case(3).is_err());
}

#[test]
fn commands_refuse_bad_input_and_denied_capabilities_without_a_case() {
    let host = host();
    assert!(matches!(
        run(&host, "kick", &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        run(
            &host,
            "timeout",
            &[user(), ("duration", OptionValue::Text("29d".into()))]
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        run(&host, "purge", &[("count", OptionValue::Integer(500))]),
        Err(Error::InvalidArgument(_))
    ));
    host.deny(Capability::Moderation);
    assert_eq!(
        run(&host, "ban", &[user()]).unwrap_err(),
        Error::Denied(Capability::Moderation)
    );
    assert!(load_case(1).is_err(), "no case for what did not happen");
}

#[test]
fn the_cases_routes_answer_from_storage() {
    let host = host();
    run(&host, "warn", &[user()]).unwrap();
    run(&host, "purge", &[("count", OptionValue::Integer(5))]).unwrap();
    let request =
        |route: &str, params: Vec<(String, String)>, query: Vec<(String, String)>| ApiRequest {
            method: townes_sdk::Method::Get,
            route: route.into(),
            params,
            query,
            body: None,
            caller: townes_sdk::ApiCaller {
                user_id: Some(MOD),
                owner: false,
                permissions: 0,
            },
        };
    let all = Moderation::on_api(&host.context(), request("/cases", vec![], vec![])).unwrap();
    let all: townes_sdk::serde_json::Value = townes_sdk::serde_json::from_str(&all.body).unwrap();
    assert_eq!(all["cases"][0]["action"], "purge", "newest first");
    assert_eq!(all["cases"][1]["action"], "warn");
    let ann = Moderation::on_api(
        &host.context(),
        request("/cases", vec![], vec![("user".into(), "42".into())]),
    )
    .unwrap();
    assert!(ann.body.contains("\"warn\"") && !ann.body.contains("purge"));
    let one = Moderation::on_api(
        &host.context(),
        request(
            "/cases/{number}",
            vec![("number".into(), "1".into())],
            vec![],
        ),
    )
    .unwrap();
    assert!(one.body.contains("\"number\":1"));
    assert!(matches!(
        Moderation::on_api(
            &host.context(),
            request(
                "/cases/{number}",
                vec![("number".into(), "9".into())],
                vec![]
            )
        ),
        Err(Error::NotFound(_))
    ));
}

/// Moderation done in Discord's own interface becomes a case of its own,
/// marked external, with the moderator and reason the audit log gave.
#[test]
fn moderation_done_in_discord_becomes_a_case() {
    let host = host();
    host.set_config(json!({ "log_channel": LOG.to_string() }));
    let event = |action, until: Option<String>| ModerationEvent {
        action,
        target_id: ANN,
        moderator_id: Some(MOD),
        reason: Some("spam".into()),
        until,
    };
    Moderation::on_moderation(&host.context(), event(ModerationAction::Ban, None)).unwrap();
    let case = load_case(1).unwrap();
    assert_eq!(
        (case.action.as_str(), case.target.as_str(), case.external),
        ("ban", "42", true)
    );
    assert_eq!(case.moderator.as_deref(), Some("7"));
    assert_eq!(case.reason.as_deref(), Some("spam"));
    // Recorded, not acted on: no ban call from the feature.
    assert!(host.moderation_actions().is_empty());
    let logged = host.sent_messages();
    assert_eq!(logged[0].0, LOG);
    let described = logged[0].1.embeds[0]
        .description
        .clone()
        .unwrap_or_default();
    assert!(described.contains("(in Discord)"), "{described}");

    let in_an_hour = now() + 3600;
    let days = in_an_hour / 86_400;
    let (h, m, s) = (
        in_an_hour % 86_400 / 3600,
        in_an_hour % 3600 / 60,
        in_an_hour % 60,
    );
    // The civil date of `days` since 1970 (inverse of the parser's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let until = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z");
    Moderation::on_moderation(
        &host.context(),
        event(ModerationAction::Timeout, Some(until)),
    )
    .unwrap();
    let timeout = load_case(2).unwrap();
    assert_eq!(timeout.action, "timeout");
    let duration = timeout.duration.unwrap();
    assert!((3595..=3600).contains(&duration), "{duration}");
    assert_eq!(cases_of(ANN).unwrap().len(), 2);
}
