//! The simulator answers, counts, records, and fails as told.

use serde_json::{Value, json};
use townes_ai_sim::{AiSim, SimConfig};

async fn ask(sim: &AiSim, key: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn answers_deterministically_with_usage_and_records_each_request() {
    let sim = AiSim::start(SimConfig {
        keys: vec!["sk-good-key-1234".into()],
        echo_system: true,
    })
    .await
    .unwrap();
    let body = json!({"model": "m", "max_tokens": 100, "messages": [
        {"role": "system", "content": "Be kind.\nMore."},
        {"role": "user", "content": "hi there"}]});
    let (status, answer) = ask(&sim, "sk-good-key-1234", body.clone()).await;
    assert_eq!(status, 200);
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text, "[system: Be kind.] Answer #1 (model m): hi there");
    assert_eq!(answer["usage"]["prompt_tokens"], 4 + 4 + 2 + 4);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    let seen = sim.requests();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk-good-key-1234")
    );
    assert_eq!(seen[0].system(), "Be kind.\nMore.");

    let (status, answer) = ask(&sim, "sk-wrong-key-9999", body.clone()).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-wrong-key")
    );

    let short = json!({"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "a long question"}]});
    let (_, answer) = ask(&sim, "sk-good-key-1234", short).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    assert_eq!(answer["usage"]["completion_tokens"], 2);

    sim.fail_with(503);
    assert_eq!(ask(&sim, "sk-good-key-1234", body.clone()).await.0, 503);
    sim.succeed();
    assert_eq!(ask(&sim, "sk-good-key-1234", body).await.0, 200);
}
