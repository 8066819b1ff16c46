//! The mock host's semantics.

use super::*;
use crate::{
    ActionRow, Button, CapabilityRequest, ChannelSpec, Command, CommandInvocation, Embed, Event,
    EventKind, Manifest, Message, Reply, User, audit, channels, config, log, members, messages,
    moderation, roles, scheduler, storage,
};

#[test]
fn increment_treats_missing_as_zero_and_rejects_non_integers() {
    let host = MockHost::new();
    assert_eq!(storage::increment("n", 5), Ok(5));
    assert_eq!(storage::increment("n", -2), Ok(3));
    assert_eq!(host.storage_value("n").as_deref(), Some("3"));
    storage::set("s", "abc").unwrap();
    assert!(matches!(
        storage::increment("s", 1),
        Err(Error::InvalidArgument(_))
    ));
    storage::set("max", &i64::MAX.to_string()).unwrap();
    assert!(matches!(
        storage::increment("max", 1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn kv_get_set_delete_and_list_prefix() {
    let _host = MockHost::new();
    assert_eq!(storage::get("a"), Ok(None));
    storage::set("a", "1").unwrap();
    assert_eq!(storage::get("a"), Ok(Some("1".into())));
    assert_eq!(storage::delete("a"), Ok(true));
    assert_eq!(storage::delete("a"), Ok(false));

    for key in ["p:b", "p:a", "q:a", "p:c", "o"] {
        storage::set(key, key).unwrap();
    }
    let keys: Vec<String> = storage::list_prefix("p:", 10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["p:a", "p:b", "p:c"]);
    assert_eq!(storage::list_prefix("p:", 2).unwrap().len(), 2);
    assert_eq!(storage::list_prefix("", 1000).unwrap().len(), 5);
    assert!(storage::list_prefix("p:", 0).is_err());
    assert!(storage::list_prefix("p:", 1001).is_err());
}

#[test]
fn json_helpers_round_trip() {
    let _host = MockHost::new();
    storage::set_json("v", &vec![1, 2, 3]).unwrap();
    assert_eq!(storage::get_json::<Vec<i32>>("v"), Ok(Some(vec![1, 2, 3])));
    assert_eq!(storage::get_json::<Vec<i32>>("missing"), Ok(None));
    storage::set("bad", "{").unwrap();
    assert!(matches!(
        storage::get_json::<Vec<i32>>("bad"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn boards_rank_best_first_with_ties_by_subject() {
    let host = MockHost::new();
    assert_eq!(storage::board_increment("xp", 30, 10), Ok(10));
    assert_eq!(storage::board_increment("xp", 30, 5), Ok(15));
    storage::board_set("xp", 20, 15).unwrap();
    storage::board_set("xp", 10, 7).unwrap();
    storage::board_set("xp", 40, 99).unwrap();

    let top = storage::board_top("xp", 10).unwrap();
    let order: Vec<(u64, i64, u32)> = top.iter().map(|e| (e.subject, e.score, e.rank)).collect();
    assert_eq!(order, [(40, 99, 1), (20, 15, 2), (30, 15, 3), (10, 7, 4)]);
    assert_eq!(storage::board_top("xp", 2).unwrap().len(), 2);
    assert!(storage::board_top("xp", 0).is_err());
    assert!(storage::board_top("xp", 101).is_err());

    let rank = storage::board_rank("xp", 30).unwrap().unwrap();
    assert_eq!((rank.score, rank.rank), (15, 3));
    assert_eq!(storage::board_rank("xp", 5), Ok(None));
    assert_eq!(storage::board_rank("other", 30), Ok(None));

    assert_eq!(storage::board_remove("xp", 40), Ok(true));
    assert_eq!(storage::board_remove("xp", 40), Ok(false));
    assert_eq!(storage::board_rank("xp", 20).unwrap().unwrap().rank, 1);
    assert_eq!(host.board("xp").len(), 3);
    // Boards and keys are separate namespaces.
    assert_eq!(storage::get("xp"), Ok(None));
}

#[test]
fn quota_stops_writes_with_a_typed_error() {
    let host = MockHost::new();
    host.set_storage_quota(100, 3);
    storage::set("a", &"x".repeat(40)).unwrap();
    storage::set("b", &"x".repeat(40)).unwrap();
    assert!(matches!(
        storage::set("c", &"x".repeat(40)),
        Err(Error::QuotaExceeded(_))
    ));
    // Overwriting with a value of the same size still fits.
    storage::set("a", &"y".repeat(40)).unwrap();
    storage::set("c", "1").unwrap();
    assert!(matches!(
        storage::set("d", "1"),
        Err(Error::QuotaExceeded(_))
    ));
    assert!(matches!(
        storage::board_set("b", 1, 1),
        Err(Error::QuotaExceeded(_))
    ));
    // Deleting frees room.
    storage::delete("c").unwrap();
    storage::set("d", "1").unwrap();
}

#[test]
fn deny_and_fail_return_errors_without_effects() {
    let host = MockHost::new();
    host.deny(Capability::Roles);
    assert_eq!(
        roles::add(1, 2, None),
        Err(Error::Denied(Capability::Roles))
    );
    host.fail(Capability::Messages, Error::Unavailable("outage".into()));
    assert_eq!(
        messages::send(1, "hi"),
        Err(Error::Unavailable("outage".into()))
    );
    assert!(host.effects().is_empty());
    host.allow(Capability::Roles);
    host.allow(Capability::Messages);
    roles::add(1, 2, Some("why")).unwrap();
    messages::send(1, "hi").unwrap();
    assert_eq!(host.roles_added(), [(1, 2)]);
    assert_eq!(host.sent_texts(), ["hi"]);
    // Logging is never denied.
    host.deny(Capability::Log);
    log::info("still logged");
    assert_eq!(host.logs(), [(LogLevel::Info, "still logged".to_string())]);
}

#[test]
fn records_every_kind_of_effect() {
    let host = MockHost::new();
    let m = messages::send(
        10,
        MessageBody::text("a").with_embed(Embed::new().title("t")),
    )
    .unwrap();
    messages::edit(10, m, "b").unwrap();
    messages::react(10, m, "👍").unwrap();
    messages::delete(10, m).unwrap();
    members::send_dm(7, "psst").unwrap();
    roles::remove(7, 3, None).unwrap();
    let c = channels::create(&ChannelSpec::text("tickets")).unwrap();
    channels::set_overwrite(c, PermissionOverwrite::role(GUILD_ID, 0, 1024)).unwrap();
    channels::delete(c).unwrap();
    moderation::kick(7, Some("spam")).unwrap();
    moderation::ban(8, 0, None).unwrap();
    moderation::timeout(9, 60, None).unwrap();
    assert_eq!(moderation::purge(10, 50), Ok(50));
    audit::write("warn", "user 7").unwrap();
    log::warn(format!("n={}", 1));
    let job = scheduler::schedule("remind", "{}", 60).unwrap();
    assert_eq!(scheduler::cancel(&job), Ok(true));
    assert_eq!(scheduler::cancel(&job), Ok(false));

    assert_eq!(host.sent_messages().len(), 1);
    assert_eq!(
        host.sent_messages()[0].1.embeds[0].title.as_deref(),
        Some("t")
    );
    assert_eq!(host.edited_messages()[0].2.content.as_deref(), Some("b"));
    assert_eq!(host.reactions(), [(10, m, "👍".to_string())]);
    assert_eq!(host.deleted_messages(), [(10, m)]);
    assert_eq!(host.dms()[0].0, 7);
    assert_eq!(host.roles_removed(), [(7, 3)]);
    assert_eq!(host.channels_created()[0].0, c);
    assert_eq!(host.moderation_actions().len(), 4);
    assert_eq!(
        host.moderation_actions()[0],
        Effect::Kicked {
            user_id: 7,
            reason: Some("spam".into())
        }
    );
    assert_eq!(host.audit_entries(), [("warn".into(), "user 7".into())]);
    assert_eq!(host.logs(), [(LogLevel::Warn, "n=1".to_string())]);
    assert!(host.pending_jobs().is_empty());
    assert_eq!(host.effects().len(), 17);
    assert_eq!(host.take_effects().len(), 17);
    assert!(host.effects().is_empty());
}

#[test]
fn members_roles_and_guild_follow_the_calls() {
    let host = MockHost::new();
    assert!(matches!(members::get(7), Err(Error::NotFound(_))));
    host.add_member(User::new(7, "ann").with_global_name("Ann"));
    assert_eq!(members::get(7).unwrap().display_name(), "Ann");
    assert_eq!(members::guild().unwrap().member_count, 1);
    assert_eq!(members::guild().unwrap().id, host.context().guild_id);

    roles::add(7, 5, None).unwrap();
    roles::add(7, 5, None).unwrap();
    assert_eq!(host.member(7).unwrap().roles, [5]);
    roles::remove(7, 5, None).unwrap();
    assert!(host.member(7).unwrap().roles.is_empty());

    host.block_dms(7);
    assert!(matches!(
        members::send_dm(7, "hi"),
        Err(Error::Unavailable(_))
    ));

    moderation::kick(7, None).unwrap();
    assert!(host.member(7).is_none());

    host.set_guild(GuildInfo::new(55, "Other", 3));
    assert_eq!(host.context().guild_id, 55);
}

#[test]
fn messages_are_checked_against_discord_limits() {
    let _host = MockHost::new();
    assert!(messages::send(1, "x".repeat(2000)).is_ok());
    assert!(matches!(
        messages::send(1, "x".repeat(2001)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(messages::send(1, MessageBody::default()).is_err());
    let body = MessageBody::text("a").with_embed(Embed::new().title("t".repeat(257)));
    assert!(messages::send(1, body).is_err());
    let mut row = ActionRow::new();
    for i in 0..6 {
        row = row.button(Button::primary(format!("b{i}"), "B"));
    }
    assert!(messages::send(1, MessageBody::text("a").with_row(row)).is_err());
    assert!(moderation::purge(1, 0).is_err());
    assert!(moderation::purge(1, 101).is_err());
    assert!(moderation::timeout(1, moderation::MAX_TIMEOUT_SECONDS + 1, None).is_err());
}

#[test]
fn call_budget_returns_quota_exceeded() {
    let host = MockHost::new();
    host.set_call_budget(3);
    let mut n = 0;
    let err = loop {
        match storage::get("x") {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(n, 3);
    assert_eq!(err, Error::QuotaExceeded("host calls".into()));
    host.clear_call_budget();
    assert!(storage::get("x").is_ok());
}

#[test]
fn config_and_scheduler() {
    let host = MockHost::new();
    assert_eq!(config::get().unwrap(), "{}");
    host.set_config(serde_json::json!({"greeting": "Hi"}));
    let v: serde_json::Value = config::get_json().unwrap();
    assert_eq!(v["greeting"], "Hi");
    assert!(config::get_json::<Vec<u8>>().is_err());

    let id = scheduler::schedule("tick", "p", 5).unwrap();
    let jobs = host.pending_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].id.as_str(), jobs[0].payload.as_str()),
        (id.as_str(), "p")
    );
    assert_eq!(host.take_job(&id).unwrap().name, "tick");
    assert!(host.pending_jobs().is_empty());
}

struct Fixture;

impl Feature for Fixture {
    fn describe() -> Manifest {
        Manifest::new("fixture", "0.1.0")
            .command(Command::slash("x", "x"))
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(Capability::Messages, "talk"))
            .capability(CapabilityRequest::optional(Capability::Members, "dm"))
            .config(
                serde_json::json!({"type": "object"}),
                serde_json::json!({"greeting": "Yo"}),
            )
    }

    fn on_event(_ctx: &Context, event: Event) -> Result<(), Error> {
        if let Event::MessageCreated(m) = event {
            messages::send(m.channel_id, format!("echo {}", m.content))?;
        }
        Ok(())
    }
}

crate::export_feature!(Fixture);

#[test]
fn for_feature_uses_default_config_and_denies_unrequested() {
    let host = MockHost::for_feature::<Fixture>();
    assert_eq!(config::get().unwrap(), r#"{"greeting":"Yo"}"#);
    assert_eq!(storage::get("x"), Err(Error::Denied(Capability::Storage)));
    assert!(members::guild().is_ok());
    let ctx = host.context();
    Fixture::on_event(
        &ctx,
        Event::MessageCreated(Message::new(1, 9, User::new(2, "bob"), "hey")),
    )
    .unwrap();
    assert_eq!(host.sent_messages(), [(9, MessageBody::text("echo hey"))]);
    // The default command handler.
    let inv = CommandInvocation::new("nope", User::new(2, "bob"), 9);
    assert_eq!(
        Fixture::on_command(&ctx, inv),
        Err(Error::InvalidArgument("unknown command".into()))
    );
    // The generated Guest impl delegates to Feature.
    let manifest = <Fixture as crate::bindings::Guest>::describe();
    assert_eq!(manifest.id, "fixture");
}

#[test]
fn dropping_uninstalls_and_a_new_host_starts_empty() {
    {
        let _host = MockHost::new();
        storage::set("a", "1").unwrap();
    }
    let result = std::panic::catch_unwind(|| storage::get("a"));
    assert!(result.is_err(), "no mock installed: the call must panic");
    let _host = MockHost::new();
    assert_eq!(storage::get("a"), Ok(None));
}

#[test]
fn builders_make_the_expected_values() {
    let r = Reply::text("hi").ephemeral();
    assert!(r.ephemeral);
    assert_eq!(r.content(), Some("hi"));
    let c = Command::slash_and_prefix("rank", "Show your rank");
    assert!(c.slash && c.prefix);
    let c = Command::prefix("p", "p");
    assert!(!c.slash && c.prefix);
    let req = CapabilityRequest::optional(Capability::Roles, "why");
    assert!(!req.required);
    assert_eq!(Capability::MessageContent.as_str(), "message-content");
    let inv = CommandInvocation::new("k", User::new(1, "a"), 2)
        .with_arg("who", crate::OptionValue::User(9))
        .with_arg("n", crate::OptionValue::Integer(3));
    assert_eq!(inv.user_arg("who"), Some(9));
    assert_eq!(inv.integer_arg("n"), Some(3));
    assert_eq!(inv.text_arg("n"), None);
    let m = Member::new(User::new(1, "user").with_global_name("Global")).with_nick("Nick");
    assert_eq!(m.display_name(), "Nick");
    assert_eq!(m.mention(), "<@1>");
}

#[test]
fn the_mock_refuses_what_the_host_refuses_with_the_same_words() {
    let host = MockHost::new();
    // A board row counts its board name + 8 bytes, as on the host.
    host.set_storage_quota(townes_limits::storage::board_row_bytes("xp"), 10);
    storage::board_set("xp", 1, 5).unwrap();
    assert!(matches!(
        storage::board_set("xp", 2, 5),
        Err(Error::QuotaExceeded(_))
    ));
    assert_eq!(
        storage::set(&"k".repeat(257), "v"),
        Err(Error::InvalidArgument(
            "a key is 257 bytes; 1 to 256 allowed".into()
        ))
    );
    assert!(matches!(
        messages::send(1, MessageBody::default()),
        Err(Error::InvalidArgument(m)) if m.contains("empty")
    ));
    assert!(matches!(
        scheduler::schedule("tick", &"p".repeat(16 * 1024 + 1), 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.effects().is_empty(), "{:?}", host.effects());
}

#[test]
fn invoker_permissions_are_what_the_test_sets() {
    let host = MockHost::new();
    assert_eq!(crate::invocation::invoker_permissions(), 0);
    host.set_invoker_permissions(1 << 13);
    assert_eq!(crate::invocation::invoker_permissions(), 1 << 13);
}

#[test]
fn set_if_writes_only_over_the_expected_value() {
    let host = MockHost::new();
    assert_eq!(storage::set_if("k", None, "1"), Ok(true));
    assert_eq!(storage::set_if("k", None, "2"), Ok(false));
    assert_eq!(storage::set_if("k", Some("0"), "2"), Ok(false));
    assert_eq!(storage::set_if("k", Some("1"), "2"), Ok(true));
    assert_eq!(host.storage_value("k").as_deref(), Some("2"));
}

#[test]
fn history_pages_newest_first_and_hides_content_without_the_grant() {
    use crate::{PastMessage, history};
    let host = MockHost::new();
    for id in 1..=3 {
        host.post_history(
            9,
            PastMessage {
                id,
                author: User::new(7, "ann"),
                avatar: None,
                content: format!("m{id}"),
                timestamp: "2026-12-07T00:00:00Z".into(),
                edited_timestamp: None,
                embeds: vec![],
                attachments: vec![],
            },
        );
    }
    let page = history::read(9, None, 2).unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(history::read(9, Some(2), 100).unwrap()[0].content, "m1");
    assert!(history::read(9, None, 0).is_err());
    host.deny(Capability::MessageContent);
    assert!(history::read(9, None, 1).unwrap()[0].content.is_empty());
    host.deny(Capability::Messages);
    assert_eq!(
        history::read(9, None, 1).unwrap_err(),
        Error::Denied(Capability::Messages)
    );
}

#[test]
fn an_unban_lifts_a_ban_once() {
    let host = MockHost::new();
    moderation::ban(8, 0, Some("spam")).unwrap();
    moderation::unban(8, Some("served")).unwrap();
    assert!(matches!(
        moderation::unban(8, None),
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        host.moderation_actions().last(),
        Some(&Effect::Unbanned {
            user_id: 8,
            reason: Some("served".into())
        })
    );
}

#[test]
fn update_json_edits_a_record_in_place_and_leaves_a_missing_one_alone() {
    use crate::storage;
    let host = MockHost::new();
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Counter {
        n: u32,
    }
    assert_eq!(
        storage::update_json::<Counter>("c", |c| {
            c.n += 1;
            Ok(())
        }),
        Ok(None)
    );
    assert_eq!(
        host.storage_value("c"),
        None,
        "nothing written for a missing record"
    );
    storage::set_json("c", &Counter { n: 1 }).unwrap();
    let updated = storage::update_json::<Counter>("c", |c| {
        c.n += 1;
        Ok(())
    });
    assert_eq!(updated, Ok(Some(Counter { n: 2 })));
    assert_eq!(host.storage_value("c").as_deref(), Some(r#"{"n":2}"#));
    // The change's error is returned with nothing written.
    let refused = storage::update_json::<Counter>("c", |_| Err(Error::invalid("no")));
    assert_eq!(refused, Err(Error::invalid("no")));
    assert_eq!(host.storage_value("c").as_deref(), Some(r#"{"n":2}"#));
    storage::set("c", "not json").unwrap();
    assert!(matches!(
        storage::update_json::<Counter>("c", |_| Ok(())),
        Err(Error::InvalidArgument(_))
    ));
}

/// A write that lands between the read and the write makes the swap read
/// again and compute on top of it: neither write is lost.
#[test]
fn compare_and_swap_computes_again_after_losing_a_race() {
    use crate::storage;
    let host = MockHost::new();
    storage::set("k", "a").unwrap();
    let mut calls = 0;
    let written = storage::compare_and_swap("k", |old| {
        calls += 1;
        if calls == 1 {
            // Another invocation writes first.
            host.set_storage_value("k", "b");
        }
        Ok(Some(format!("{}+", old.unwrap_or_default())))
    });
    assert_eq!(written, Ok(Some("b+".to_string())));
    assert_eq!(calls, 2);
    assert_eq!(host.storage_value("k").as_deref(), Some("b+"));
    // Always losing gives up with `Unavailable`.
    let mut n = 0;
    let endless = storage::compare_and_swap("k", |_| {
        n += 1;
        host.set_storage_value("k", &n.to_string());
        Ok(Some("mine".into()))
    });
    assert!(matches!(endless, Err(Error::Unavailable(_))), "{endless:?}");
}

#[test]
fn routes_are_checked_against_their_schemas_and_examples() {
    use super::{route_problems, schema_problems};
    use crate::{Route, json};
    let schema =
        json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    assert!(schema_problems(&schema, &json!({"id": "1"})).is_empty());
    assert_eq!(schema_problems(&schema, &json!({"id": 1})).len(), 1);
    let good = Route::get("/things", "listThings", "Things").response(json!({
        "type": "object", "examples": [{"n": 1}],
        "properties": {"n": {"type": "integer"}}
    }));
    let bad = Route::get("/other", "listOther", "Other").response(json!({
        "type": "object", "examples": [{"n": "one"}],
        "properties": {"n": {"type": "integer"}}
    }));
    assert!(route_problems(&[good]).is_empty());
    let problems = route_problems(&[bad]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("response example 0"), "{problems:?}");
}
