//! Route details the other tests do not reach.

use super::*;

#[test]
fn empty_lists_and_unknown_routes() {
    let host = host();
    let (_, templates) = api(&host, Method::Get, "/templates", &[], None).unwrap();
    assert_eq!(templates, json!({ "templates": [] }));
    let (_, rr) = api(&host, Method::Get, "/reaction-roles", &[], None).unwrap();
    assert_eq!(rr, json!({ "reaction_roles": [] }));
    let request = ApiRequest {
        method: Method::Patch,
        route: "/templates/{id}".into(),
        params: vec![],
        query: vec![],
        body: None,
        caller: ApiCaller {
            user_id: None,
            owner: true,
            permissions: u64::MAX,
        },
    };
    assert!(matches!(
        Templates::on_api(&host.context(), request),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn put_takes_the_id_from_the_path_only() {
    let host = host();
    create_template(&host, json!({ "id": "a", "name": "A", "content": "x" }));
    let body = json!({ "id": "b", "name": "B", "content": "y" });
    let route = Templates::routes()
        .into_iter()
        .find(|r| r.method == Method::Put)
        .unwrap();
    let schema: Value = serde_json::from_str(&route.request_schema.unwrap()).unwrap();
    let problems = schema_problems(&schema, &body);
    assert!(
        problems.len() == 1 && problems[0].contains("'id' was unexpected"),
        "the host refuses an id in the body: {problems:?}"
    );
    let (_, t) = api(
        &host,
        Method::Put,
        "/templates/{id}",
        &[("id", "a")],
        Some(json!({ "name": "B", "content": "y" })),
    )
    .unwrap();
    assert_eq!(t["id"], "a");
    assert!(crate::store::load_template("b").is_err());
}

#[test]
fn ids_in_requests_may_be_integers_and_are_answered_as_strings() {
    let host = host();
    let mut body = roles_template();
    body["buttons"][0]["role_id"] = json!(NEWS);
    let t = create_template(&host, body);
    assert_eq!(t["buttons"][0]["role_id"], "501");
    let (_, sent) = api(
        &host,
        Method::Post,
        "/templates/{id}/send",
        &[("id", "roles")],
        Some(json!({ "channel_id": ROLES_CHANNEL })),
    )
    .unwrap();
    assert_eq!(sent["channel_id"], "301");
    let bad = json!({ "channel_id": "general" });
    let route = Templates::routes()
        .into_iter()
        .find(|r| r.path == "/templates/{id}/send")
        .unwrap();
    let schema: Value = serde_json::from_str(&route.request_schema.unwrap()).unwrap();
    assert!(!schema_problems(&schema, &bad).is_empty());
}
