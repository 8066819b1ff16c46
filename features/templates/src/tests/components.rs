//! Role buttons and role menus on sent template messages, and forged ids.

use super::*;
use townes_sdk::testing::Effect;

fn click(host: &MockHost, custom_id: &str, by: Snowflake, message: Option<Snowflake>) -> Reply {
    let mut interaction = ComponentInteraction::button(custom_id, now(host, by), ROLES_CHANNEL);
    interaction.message_id = message;
    Templates::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} clicking {custom_id}: {e:?}"))
}

fn choose(
    host: &MockHost,
    custom_id: &str,
    values: &[Snowflake],
    by: Snowflake,
    message: Snowflake,
) -> Reply {
    let interaction = ComponentInteraction::select(
        custom_id,
        values.iter().map(|v| v.to_string()),
        now(host, by),
        ROLES_CHANNEL,
    )
    .on_message(message);
    Templates::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} choosing in {custom_id}: {e:?}"))
}

fn role_effects(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::RoleAdded { .. } | Effect::RoleRemoved { .. }))
        .count()
}

#[test]
fn a_role_button_toggles_its_role() {
    let host = host();
    let message = sent_roles_message(&host);
    let reply = click(&host, "role:501", ANN, Some(message));
    assert_eq!(text_of(&reply), "Added <@&501>");
    assert_eq!(roles_of(&host, ANN), [NEWS]);
    let reply = click(&host, "role:502", ANN, Some(message));
    assert_eq!(text_of(&reply), "Added <@&502>");
    let reply = click(&host, "role:501", ANN, Some(message));
    assert_eq!(text_of(&reply), "Removed <@&501>");
    assert_eq!(roles_of(&host, ANN), [EVENTS]);
    assert_eq!(roles_of(&host, BOB), Vec::<Snowflake>::new());
    assert_eq!(
        host.effects()[0],
        Effect::RoleAdded {
            user_id: ANN,
            role_id: NEWS,
            reason: Some("role button".into())
        }
    );
}

#[test]
fn a_role_menu_sets_exactly_the_chosen_roles_among_its_own() {
    let host = host();
    let message = sent_roles_message(&host);
    host.add_member(member(ANN).with_role(CHESS).with_role(MODERATOR));

    let reply = choose(&host, "roles:roles", &[MINECRAFT], ANN, message);
    assert_eq!(text_of(&reply), "Added <@&511>\nRemoved <@&512>");
    assert_eq!(
        roles_of(&host, ANN),
        [MINECRAFT, MODERATOR],
        "other roles stay"
    );

    let reply = choose(&host, "roles:roles", &[MINECRAFT, CHESS], ANN, message);
    assert_eq!(text_of(&reply), "Added <@&512>");
    assert_eq!(roles_of(&host, ANN), [MINECRAFT, CHESS, MODERATOR]);

    host.clear_effects();
    let reply = choose(&host, "roles:roles", &[CHESS, MINECRAFT], ANN, message);
    assert_eq!(text_of(&reply), "Your roles already match your choice.");
    assert_eq!(role_effects(&host), 0);

    let reply = choose(&host, "roles:roles", &[], ANN, message);
    assert_eq!(text_of(&reply), "Removed <@&511>, <@&512>");
    assert_eq!(roles_of(&host, ANN), [MODERATOR]);
}

#[test]
fn forged_custom_ids_are_refused() {
    let host = host();
    let message = sent_roles_message(&host);
    host.add_member(member(ANN).with_role(MINECRAFT));

    // A button naming a role the message does not offer.
    let reply = click(&host, "role:600", ANN, Some(message));
    assert_eq!(text_of(&reply), "That role is not offered on this message.");
    // A menu role offered as a button is not a button role.
    let reply = click(&host, "role:511", ANN, Some(message));
    assert_eq!(text_of(&reply), "That role is not offered on this message.");
    // An offered role on a message the feature did not send, or on none.
    for on in [Some(message + 1), None] {
        let reply = click(&host, "role:501", ANN, on);
        assert!(text_of(&reply).starts_with("This button is not on a role message I made"));
    }
    // A menu choosing a role it does not offer: nothing changes at all.
    let reply = choose(&host, "roles:roles", &[CHESS, MODERATOR], ANN, message);
    assert_eq!(text_of(&reply), "That role is not offered on this message.");
    let reply = choose(&host, "roles:roles", &[], ANN, message + 1);
    assert!(text_of(&reply).starts_with("This button is not on a role message I made"));
    // Another template's menu id on this message.
    create_template(
        &host,
        json!({ "id": "mods", "name": "Mods", "select": { "options": [{ "role_id": "600", "label": "Mod" }] } }),
    );
    let reply = choose(&host, "roles:mods", &[MODERATOR], ANN, message);
    assert!(text_of(&reply).starts_with("This button is not on a role message I made"));

    assert_eq!(role_effects(&host), 0);
    assert_eq!(roles_of(&host, ANN), [MINECRAFT]);
}

#[test]
fn clicks_outlive_the_template_and_keep_its_roles_as_sent() {
    let host = host();
    let message = sent_roles_message(&host);
    let mut changed = roles_template();
    changed.as_object_mut().unwrap().remove("id");
    changed["buttons"] = json!([{ "kind": "role", "label": "Mod", "role_id": "600" }]);
    api(
        &host,
        Method::Put,
        "/templates/{id}",
        &[("id", "roles")],
        Some(changed),
    )
    .unwrap();
    let reply = click(&host, "role:600", ANN, Some(message));
    assert_eq!(text_of(&reply), "That role is not offered on this message.");
    api(
        &host,
        Method::Delete,
        "/templates/{id}",
        &[("id", "roles")],
        None,
    )
    .unwrap();
    let reply = click(&host, "role:501", ANN, Some(message));
    assert_eq!(text_of(&reply), "Added <@&501>");
}

#[test]
fn a_role_the_bot_may_not_give_is_answered_politely() {
    let host = host();
    let message = sent_roles_message(&host);
    host.fail(Capability::Roles, Error::Denied(Capability::Roles));
    let reply = click(&host, "role:501", ANN, Some(message));
    assert!(
        text_of(&reply).starts_with("I may not manage <@&501>"),
        "{reply:?}"
    );
    host.fail(Capability::Roles, Error::NotFound("role 511".into()));
    let reply = choose(&host, "roles:roles", &[MINECRAFT], ANN, message);
    assert_eq!(text_of(&reply), "<@&511> no longer exists.");
    host.fail(
        Capability::Roles,
        Error::Unavailable("discord is down".into()),
    );
    let interaction =
        ComponentInteraction::button("role:501", member(ANN), ROLES_CHANNEL).on_message(message);
    assert_eq!(
        Templates::on_component(&host.context(), interaction),
        Err(Error::Unavailable("discord is down".into()))
    );
}
