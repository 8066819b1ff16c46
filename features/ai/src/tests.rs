//! The concierge against the SDK's mock host: the tone profile and knowledge
//! base in the system prompt, memory, the member's daily limit, and the words
//! for each refusal.

use crate::Concierge;
use crate::knowledge;
use townes_sdk::ai::{AiError, ChatRole};
use townes_sdk::testing::MockHost;
use townes_sdk::{
    ApiCaller, ApiRequest, CommandInvocation, Feature, Member, Method, OptionValue, User, json,
};

fn ask(host: &MockHost, user: u64, question: &str) -> String {
    let inv = CommandInvocation::new("ask", Member::new(User::new(user, "ann")), 77)
        .with_arg("question", OptionValue::Text(question.into()));
    let reply = Concierge::on_command(&host.context(), inv).unwrap();
    reply.body.content.unwrap_or_default()
}

fn api(method: Method, route: &str, params: &[(&str, &str)], body: Option<&str>) -> ApiRequest {
    ApiRequest {
        method,
        route: route.into(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        query: vec![],
        body: body.map(str::to_string),
        caller: ApiCaller {
            user_id: Some(1),
            owner: true,
            permissions: u64::MAX,
        },
    }
}

#[test]
fn the_tone_profile_and_knowledge_base_make_the_system_prompt() {
    let host = MockHost::for_feature::<Concierge>();
    host.set_config(json!({
        "persona": "Pip the barista",
        "tone": "playful",
        "language": "French",
        "avoid_topics": ["politics"],
        "answer_length": "short"
    }));
    let added = Concierge::on_api(
        &host.context(),
        api(
            Method::Post,
            "/knowledge",
            &[],
            Some(r#"{"title": "Opening hours", "body": "We open at 8."}"#),
        ),
    )
    .unwrap();
    assert_eq!(added.status, 201);
    let answer = ask(&host, 5, "When do you open?");
    assert_eq!(answer, "mock answer: When do you open?");
    let request = &host.ai_requests()[0];
    assert_eq!(request.member_id, Some(5));
    assert_eq!(request.max_tokens, 150);
    let system = &request.messages[0];
    assert_eq!(system.role, ChatRole::System);
    for part in [
        "Pip the barista",
        "playful",
        "French",
        "politics",
        "Opening hours",
        "We open at 8.",
    ] {
        assert!(
            system.content.contains(part),
            "{part} missing: {}",
            system.content
        );
    }
    // The follow-up carries the last exchange.
    ask(&host, 5, "And on Sundays?");
    let roles: Vec<ChatRole> = host.ai_requests()[1]
        .messages
        .iter()
        .map(|m| m.role)
        .collect();
    assert_eq!(
        roles,
        [
            ChatRole::System,
            ChatRole::User,
            ChatRole::Assistant,
            ChatRole::User
        ]
    );
}

#[test]
fn a_member_past_the_daily_limit_is_told_so_without_a_call() {
    let host = MockHost::for_feature::<Concierge>();
    host.set_config(json!({"questions_per_member_per_day": 2}));
    ask(&host, 5, "one");
    ask(&host, 5, "two");
    let third = ask(&host, 5, "three");
    assert!(third.contains("You've asked 2 questions today"), "{third}");
    assert_eq!(host.ai_requests().len(), 2);
    // Another member still may.
    assert!(ask(&host, 6, "mine").starts_with("mock answer"));
}

#[test]
fn refusals_are_told_in_words_and_mass_mentions_are_defused() {
    let host = MockHost::for_feature::<Concierge>();
    host.queue_ai(Err(AiError::QuotaExceeded(
        "the plan's daily AI limit of 10 tokens is used up".into(),
    )));
    let told = ask(&host, 5, "hi");
    assert!(
        told.contains("the plan's daily AI limit of 10 tokens"),
        "{told}"
    );
    host.queue_ai(Err(AiError::Unavailable("timeout".into())));
    assert!(ask(&host, 5, "hi").contains("isn't answering right now"));
    host.queue_ai(Ok(townes_sdk::ai::ChatAnswer {
        content: "Hey @everyone, ping <@123>!".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        truncated: false,
    }));
    let defused = ask(&host, 5, "say hi to all");
    assert!(
        !defused.contains("@everyone") && !defused.contains("<@1"),
        "{defused}"
    );
    host.deny_ai();
    assert!(ask(&host, 5, "hi").contains("isn't switched on here yet"));
}

#[test]
fn the_knowledge_base_is_validated_and_editable() {
    let host = MockHost::for_feature::<Concierge>();
    let ctx = host.context();
    let long = format!(
        r#"{{"title": "t", "body": "{}"}}"#,
        "x".repeat(knowledge::MAX_BODY + 1)
    );
    assert!(Concierge::on_api(&ctx, api(Method::Post, "/knowledge", &[], Some(&long))).is_err());
    Concierge::on_api(
        &ctx,
        api(
            Method::Post,
            "/knowledge",
            &[],
            Some(r#"{"title": "a", "body": "b"}"#),
        ),
    )
    .unwrap();
    let updated = Concierge::on_api(
        &ctx,
        api(
            Method::Put,
            "/knowledge/{id}",
            &[("id", "1")],
            Some(r#"{"title": "A", "body": "B"}"#),
        ),
    )
    .unwrap();
    assert!(updated.body.contains(r#""title":"A""#), "{}", updated.body);
    assert_eq!(knowledge::all().unwrap().len(), 1);
    Concierge::on_api(
        &ctx,
        api(Method::Delete, "/knowledge/{id}", &[("id", "1")], None),
    )
    .unwrap();
    assert!(knowledge::all().unwrap().is_empty());
}
