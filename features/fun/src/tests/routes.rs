//! The dashboard routes, each answer checked against its declared schema.

use super::*;
use crate::routes::{poll_example, poll_schema};

#[test]
fn routes_are_declared_with_camel_case_ids_and_schemas_with_an_example() {
    let routes = Fun::routes();
    let declared: Vec<(Method, &str, &str)> = routes
        .iter()
        .map(|r| (r.method, r.path.as_str(), r.operation_id.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            (Method::Get, "/polls", "listPolls"),
            (Method::Get, "/polls/{id}", "getPoll")
        ]
    );
    for route in &routes {
        assert!(!route.summary.is_empty());
        assert!(route.request_schema.is_none());
        let schema: Value = serde_json::from_str(&route.response_schema).unwrap();
        assert_eq!(schema["type"], "object");
        let examples = schema["examples"].as_array().expect("examples");
        assert_eq!(examples.len(), 1, "{}", route.path);
        assert_eq!(
            schema_problems(&schema, &examples[0]),
            Vec::<String>::new(),
            "the example of {} fits its schema",
            route.path
        );
    }
    let example = poll_example();
    assert!(example["channel_id"].is_string() && example["creator"].is_string());
}

#[test]
fn polls_are_listed_newest_first_with_their_counts() {
    let host = host();
    start_poll(&host, "Lunch?", "Pizza | Pasta | Salad", &[]);
    start_poll(&host, "Film night?", "Friday | Saturday", &[]);
    click(&host, "vote:1:1", BOB);
    click(&host, "vote:1:1", CAT);
    click(&host, "vote:2:0", BOB);
    click(&host, "end:2", ANN);

    let all = api(&host, "/polls", None).unwrap();
    let polls = all["polls"].as_array().unwrap();
    let numbers: Vec<u64> = polls
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "newest first");
    let lunch = &polls[1];
    assert_eq!(lunch["question"], "Lunch?");
    assert_eq!(
        lunch["options"],
        json!([
            { "label": "Pizza", "votes": 0 },
            { "label": "Pasta", "votes": 2 },
            { "label": "Salad", "votes": 0 }
        ])
    );
    assert_eq!(lunch["voters"], 2);
    assert_eq!(lunch["leading"], json!([1]));
    assert_eq!(lunch["closed"], false);
    assert_eq!(lunch["channel_id"], CHANNEL.to_string());
    assert_eq!(lunch["creator"], ANN.to_string());
    let film = &polls[0];
    assert_eq!(film["closed"], true);
    assert_eq!(film["closed_by"], ANN.to_string());
    assert!(film["closed_at"].is_u64());
}

#[test]
fn one_poll_by_its_number_and_the_errors_for_others() {
    let host = host();
    assert_eq!(api(&host, "/polls", None).unwrap(), json!({ "polls": [] }));
    start_poll(
        &host,
        "Best season?",
        "Spring; Summer; Autumn; Winter",
        &[("multi", OptionValue::Boolean(true))],
    );
    click(&host, "vote:1:0", BOB);
    click(&host, "vote:1:1", BOB);
    let one = api(&host, "/polls/{id}", Some("1")).unwrap();
    assert_eq!(one["number"], 1);
    assert_eq!(one["multi"], true);
    assert_eq!(one["voters"], 1);
    assert_eq!(one["leading"], json!([0, 1]));
    assert_eq!(
        one["message_id"],
        poll(1).message_id.unwrap().to_string(),
        "ids as decimal strings"
    );
    assert!(one.get("job").is_none(), "the job id stays inside");
    assert!(matches!(
        api(&host, "/polls/{id}", Some("9")),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        api(&host, "/polls/{id}", Some("first")),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        schema_problems(&poll_schema(), &json!({ "number": 1 })).len(),
        13,
        "the schema does hold the answer to account"
    );
}
