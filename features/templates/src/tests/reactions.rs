//! Reaction roles: setting them up, and each mode's reactions.

use super::*;
use crate::store;
use townes_sdk::Reaction;
use townes_sdk::testing::BOT_USER_ID;

const MESSAGE: Snowflake = 7000;
const CUSTOM: &str = "party_blob:1141250000000000001";

fn setup(host: &MockHost, mode: &str, limit: u8) -> (u16, Value) {
    let result = api(
        host,
        Method::Post,
        "/reaction-roles",
        &[],
        Some(json!({
            "channel_id": ROLES_CHANNEL.to_string(),
            "message_id": MESSAGE.to_string(),
            "mode": mode,
            "limit": limit,
            "pairs": [
                { "emoji": "🔴", "role_id": RED.to_string() },
                { "emoji": "<:party_blob:1141250000000000001>", "role_id": BLUE.to_string() },
                { "emoji": "❤\u{fe0f}", "role_id": GREEN.to_string() }
            ]
        })),
    )
    .unwrap();
    host.clear_effects();
    result
}

fn react(host: &MockHost, user: Snowflake, emoji: &str, added: bool) {
    let reaction = Reaction::new(user, ROLES_CHANNEL, MESSAGE, emoji);
    let event = if added {
        Event::ReactionAdded(reaction)
    } else {
        Event::ReactionRemoved(reaction)
    };
    Templates::on_event(&host.context(), event).unwrap();
}

#[test]
fn setting_reaction_roles_reacts_with_each_emoji_and_stores_them() {
    let host = host();
    host.clear_effects();
    let (status, record) = api(
        &host,
        Method::Post,
        "/reaction-roles",
        &[],
        Some(json!({
            "channel_id": ROLES_CHANNEL.to_string(),
            "message_id": MESSAGE.to_string(),
            "pairs": [
                { "emoji": "🔴", "role_id": RED.to_string() },
                { "emoji": "<:party_blob:1141250000000000001>", "role_id": BLUE }
            ]
        })),
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(record["mode"], "normal", "the default");
    assert_eq!(record["limit"], 0);
    assert_eq!(
        record["pairs"][1],
        json!({ "emoji": CUSTOM, "role_id": "522" })
    );
    assert_eq!(
        host.reactions(),
        [
            (ROLES_CHANNEL, MESSAGE, "🔴".to_string()),
            (ROLES_CHANNEL, MESSAGE, CUSTOM.to_string())
        ]
    );
    assert_eq!(
        host.audit_entries(),
        [(
            "reaction_roles.set".to_string(),
            "2 reaction roles (normal, limit 0) on message 7000".to_string()
        )]
    );
    let (status, replaced) = setup(&host, "verify", 1);
    assert_eq!(status, 200, "a second set replaces");
    assert_eq!(replaced["mode"], "verify");
    let (_, list) = api(&host, Method::Get, "/reaction-roles", &[], None).unwrap();
    assert_eq!(list["reaction_roles"], json!([replaced]));

    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/reaction-roles/{message_id}",
        &[("message_id", "7000")],
        None,
    )
    .unwrap();
    assert_eq!(deleted, replaced);
    assert!(matches!(
        api(
            &host,
            Method::Delete,
            "/reaction-roles/{message_id}",
            &[("message_id", "7000")],
            None
        ),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        api(
            &host,
            Method::Delete,
            "/reaction-roles/{message_id}",
            &[("message_id", "x")],
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
    react(&host, ANN, "🔴", true);
    assert!(host.roles_added().is_empty(), "no record, no roles");
    let audits: Vec<String> = host.audit_entries().into_iter().map(|(a, _)| a).collect();
    assert_eq!(audits, ["reaction_roles.deleted"]);
}

#[test]
fn bad_reaction_role_setups_are_refused_with_what_would_work() {
    let host = host();
    let post = |pairs: Value, limit: u8| {
        let body = json!({
            "channel_id": "301", "message_id": "7000", "limit": limit, "pairs": pairs
        });
        match api_unchecked(&host, Method::Post, "/reaction-roles", &[], Some(body)) {
            Err(Error::InvalidArgument(why)) => why,
            other => panic!("{other:?}"),
        }
    };
    let pair =
        |emoji: &str, role: Snowflake| json!({ "emoji": emoji, "role_id": role.to_string() });
    let many: Vec<Value> = (0..21).map(|i| pair(&format!("e{i}"), 800 + i)).collect();
    assert!(post(json!(many), 0).contains("give 1 to 20"));
    assert!(post(json!([]), 0).contains("give 1 to 20"));
    assert!(post(json!([pair("🔴", RED), pair("🔴", BLUE)]), 0).contains("used twice"));
    assert!(post(json!([pair("a:1", RED), pair("<:b:1>", BLUE)]), 0).contains("used twice"));
    assert!(post(json!([pair("🔴", RED), pair("🔵", RED)]), 0).contains("role 521 is used twice"));
    assert!(post(json!([pair("🔴", RED)]), 2).contains("use 0 (no limit) to 1"));
    assert!(post(json!([pair("🔴", GUILD_ID)]), 0).contains("`@everyone`"));
    assert!(host.reactions().is_empty());

    host.fail(Capability::Messages, Error::NotFound("message 7000".into()));
    assert!(matches!(
        api(
            &host,
            Method::Post,
            "/reaction-roles",
            &[],
            Some(json!({ "channel_id": "301", "message_id": "7000", "pairs": [pair("🔴", RED)] }))
        ),
        Err(Error::NotFound(_))
    ));
    assert!(host.storage_value(&store::rr_key(MESSAGE)).is_none());

    host.allow(Capability::Messages);
    host.set_config(json!({ "max_reaction_role_messages": 1 }));
    setup(&host, "normal", 0);
    let body = json!({ "channel_id": "301", "message_id": "7001", "pairs": [pair("🔴", RED)] });
    match api(&host, Method::Post, "/reaction-roles", &[], Some(body)) {
        Err(Error::InvalidArgument(why)) => assert!(why.contains("`max_reaction_role_messages`")),
        other => panic!("{other:?}"),
    }
    setup(&host, "unique", 0); // replacing is not a new message
}

#[test]
fn normal_mode_adds_on_react_and_removes_on_unreact() {
    let host = host();
    setup(&host, "normal", 0);
    react(&host, ANN, "🔴", true);
    react(&host, ANN, CUSTOM, true);
    react(&host, ANN, "❤", true); // without the variation selector
    assert_eq!(roles_of(&host, ANN), [RED, BLUE, GREEN]);
    react(&host, ANN, "🔴", false);
    assert_eq!(roles_of(&host, ANN), [BLUE, GREEN]);
    react(&host, ANN, "🟣", true); // not one of the message's emoji
    react(&host, BOB, "🔴", false); // never had it: nothing to take
    assert_eq!(host.roles_added().len(), 3);
    assert_eq!(host.roles_removed(), [(ANN, RED)]);
}

#[test]
fn the_per_message_limit_caps_the_roles_a_member_holds() {
    let host = host();
    setup(&host, "normal", 2);
    react(&host, ANN, "🔴", true);
    react(&host, ANN, CUSTOM, true);
    react(&host, ANN, "❤️", true);
    assert_eq!(
        roles_of(&host, ANN),
        [RED, BLUE],
        "the third is past the limit"
    );
    react(&host, ANN, "🔴", false);
    react(&host, ANN, "❤️", true);
    assert_eq!(roles_of(&host, ANN), [BLUE, GREEN]);
    // Re-reacting to a role already held is no new role.
    react(&host, ANN, CUSTOM, true);
    assert_eq!(roles_of(&host, ANN), [BLUE, GREEN]);
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("its limit"))
    );
}

#[test]
fn unique_mode_swaps_the_role() {
    let host = host();
    setup(&host, "unique", 0);
    react(&host, ANN, "🔴", true);
    assert_eq!(roles_of(&host, ANN), [RED]);
    react(&host, ANN, CUSTOM, true);
    assert_eq!(roles_of(&host, ANN), [BLUE], "red swapped for blue");
    // Their red reaction is still there (the feature cannot remove it);
    // taking it back later takes nothing.
    react(&host, ANN, "🔴", false);
    assert_eq!(roles_of(&host, ANN), [BLUE]);
    assert_eq!(host.roles_removed(), [(ANN, RED)]);
    react(&host, ANN, CUSTOM, false);
    assert_eq!(roles_of(&host, ANN), Vec::<Snowflake>::new());
}

#[test]
fn verify_mode_only_adds() {
    let host = host();
    setup(&host, "verify", 0);
    react(&host, ANN, "🔴", true);
    react(&host, ANN, "🔴", false);
    assert_eq!(roles_of(&host, ANN), [RED]);
    assert!(host.roles_removed().is_empty());
}

#[test]
fn bots_and_the_bot_itself_are_ignored() {
    let host = host();
    setup(&host, "normal", 0);
    react(&host, BOT_USER_ID, "🔴", true);
    react(&host, BOT, "🔴", true);
    react(&host, BOT, "🔴", false);
    assert!(host.effects().is_empty(), "{:?}", host.effects());
    // Someone who left the server gets nothing either.
    react(&host, 4242, "🔴", true);
    assert!(host.roles_added().is_empty());
}

#[test]
fn without_members_the_feature_counts_what_it_gave() {
    let host = host();
    setup(&host, "normal", 1);
    host.deny(Capability::Members);
    react(&host, ANN, "🔴", true);
    react(&host, ANN, CUSTOM, true);
    assert_eq!(host.roles_added(), [(ANN, RED)], "the limit holds");
    assert_eq!(
        host.storage_value(&store::held_key(MESSAGE, ANN))
            .as_deref(),
        Some(r#"["521"]"#)
    );
    react(&host, ANN, "🔴", false);
    assert_eq!(host.roles_removed(), [(ANN, RED)]);
    assert!(host.storage_value(&store::held_key(MESSAGE, ANN)).is_none());
    react(&host, ANN, CUSTOM, true);
    assert_eq!(host.roles_added(), [(ANN, RED), (ANN, BLUE)]);
    api(
        &host,
        Method::Delete,
        "/reaction-roles/{message_id}",
        &[("message_id", "7000")],
        None,
    )
    .unwrap();
    assert!(
        host.storage_entries().is_empty(),
        "deleting forgets the counts: {:?}",
        host.storage_entries()
    );
}

#[test]
fn a_role_the_bot_may_not_give_is_logged_not_fatal() {
    let host = host();
    setup(&host, "normal", 0);
    host.fail(Capability::Roles, Error::Denied(Capability::Roles));
    react(&host, ANN, "🔴", true);
    assert!(roles_of(&host, ANN).is_empty());
    assert!(host.storage_value(&store::held_key(MESSAGE, ANN)).is_none());
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("not given"))
    );
}

/// What Discord shows on the message now: `who` reacted with each emoji.
fn reacting(host: &MockHost, who: &[(&str, &[Snowflake])]) {
    for (emoji, users) in who {
        host.set_reactions(MESSAGE, emoji, users);
    }
}

fn catch_up(host: &MockHost) {
    Templates::on_guild_ready(&host.context()).unwrap();
}

#[test]
fn reactions_made_and_taken_back_while_away_are_reconciled_on_return() {
    let host = host();
    setup(&host, "normal", 0);
    react(&host, ANN, "🔴", true);
    react(&host, BOB, CUSTOM, true);
    host.clear_effects();
    // While the platform was away: Ann took her reaction back, Bob added one
    // and the bot's own reactions are still there.
    reacting(
        &host,
        &[
            ("🔴", &[BOT_USER_ID]),
            (CUSTOM, &[BOT_USER_ID, BOB]),
            ("❤\u{fe0f}", &[BOT_USER_ID, BOB]),
        ],
    );
    catch_up(&host);
    assert_eq!(roles_of(&host, ANN), Vec::<Snowflake>::new());
    assert_eq!(roles_of(&host, BOB), [BLUE, GREEN]);
    assert_eq!(host.roles_removed(), [(ANN, RED)]);
    assert_eq!(host.roles_added(), [(BOB, GREEN)]);
    assert!(host.storage_value(&store::held_key(MESSAGE, ANN)).is_none());
    // Nothing changed since: catching up again changes nothing.
    host.clear_effects();
    catch_up(&host);
    assert!(host.roles_added().is_empty() && host.roles_removed().is_empty());
}

#[test]
fn reconciling_keeps_each_modes_rules() {
    // unique: two reactions left after a swap keep the role held.
    let unique = host();
    setup(&unique, "unique", 0);
    react(&unique, ANN, "🔴", true);
    react(&unique, ANN, CUSTOM, true);
    unique.clear_effects();
    reacting(&unique, &[("🔴", &[ANN]), (CUSTOM, &[ANN])]);
    catch_up(&unique);
    assert_eq!(roles_of(&unique, ANN), [BLUE]);
    assert!(unique.roles_added().is_empty() && unique.roles_removed().is_empty());
    drop(unique);

    // verify: a reaction taken back while away takes nothing; the limit holds.
    let verify = host();
    setup(&verify, "verify", 1);
    react(&verify, ANN, "🔴", true);
    verify.clear_effects();
    reacting(&verify, &[(CUSTOM, &[ANN, BOB]), ("❤\u{fe0f}", &[BOB])]);
    catch_up(&verify);
    assert_eq!(roles_of(&verify, ANN), [RED], "kept, and at its limit");
    assert_eq!(roles_of(&verify, BOB), [BLUE], "one role: the limit");
}

#[test]
fn reconciling_stops_cleanly_when_the_call_budget_runs_out() {
    let host = host();
    setup(&host, "normal", 0);
    let many: Vec<Snowflake> = (0..10).map(|i| ANN + i).collect();
    reacting(&host, &[("🔴", &many)]);
    host.set_call_budget(8);
    catch_up(&host);
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("the rest on the next start")),
        "{:?}",
        host.logs()
    );
}
