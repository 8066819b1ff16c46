//! The `ai` capability and the AI concierge (`features/ai`) through the real
//! runtime against a fake OpenAI-compatible server (`ai-sim`), on both
//! backends: a question answered in the admins' tone profile from their
//! knowledge base, tokens metered into `/usage/{guildId}/daily`, the plan's
//! cap refusing with the member told why, a guild's own key used for that
//! guild only, and that key never leaking into logs, API answers, exports
//! or error texts.

mod common;

use common::harness::{GUILD_A, GUILD_B, Harness, limits, reply_text};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use townes::ai::AiConfig;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::capabilities::Effect;
use townes::grants::Approval;
use townes::live::Live;
use townes::marketplace::{Marketplace, Publisher};
use townes::runtime::{Outcome, Plan, Plans};
use townes::store::export::ExportScope;
use townes::wit::{CommandArgument, OptionValue};
use townes_ai_sim::{AiSim, SimConfig};

const OPERATOR_KEY: &str = "sk-operator-0123456789";
const TENANT_KEY: &str = "sk-tenant-SECRET-7d1e9c44b2a0";
const WRONG_TENANT_KEY: &str = "sk-tenant-WRONG-55aa66bb77cc";
const PLAN_CAP: u64 = 1_500;

/// Every log line of the test, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn ask(h: &Harness, guild: u64, question: &str) -> Outcome {
    h.command(
        guild,
        "ai",
        "ask",
        vec![CommandArgument {
            name: "question".into(),
            value: OptionValue::Text(question.into()),
        }],
    )
    .await
}

struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
    server: ApiServer,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

#[tokio::test]
async fn the_concierge_answers_in_tone_meters_caps_and_keeps_tenant_keys_secret() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    for (label, store, _guard) in common::each_backend().await {
        let sim = AiSim::start(SimConfig {
            keys: vec![OPERATOR_KEY.into(), TENANT_KEY.into()],
            echo_system: false,
        })
        .await
        .unwrap();
        let plan = Plan {
            ai_tokens_per_day: Some(PLAN_CAP),
            ai_model: Some("sim-small".into()),
            ..Plan::new(limits())
        };
        let plans = Plans::from_json(&json!({ "free": plan }).to_string()).unwrap();
        let h = Harness::with_config(store.clone(), limits(), |c| {
            c.plans = plans;
            c.bot_user_id = 9;
            c.ai = AiConfig {
                key_secret: Some("an-operator-secret-of-forty-characters!!".into()),
                ..AiConfig::endpoint(sim.base_url(), Some(OPERATOR_KEY), "sim-default")
            };
        })
        .await;
        let market = Marketplace::new(&h.runtime, "test");
        let (_, manifest) = market
            .install(&common::component("ai"), &Publisher::Platform)
            .await
            .unwrap();
        for guild in [GUILD_A, GUILD_B] {
            let approval = Approval {
                ai: true,
                ..Approval::everything_requested(&manifest.capabilities)
            };
            market.enable(guild, "ai", None, approval).await.unwrap();
            market
                .set_config(
                    guild,
                    "ai",
                    json!({
                        "persona": "Pip, the Lantern Cafe's barista",
                        "tone": "playful and brief",
                        "language": "French",
                        "avoid_topics": ["politics", "medical advice"],
                        "answer_length": "short"
                    }),
                )
                .await
                .unwrap();
        }
        let tenant = store.create_tenant(7, Some("Olivia")).await.unwrap();
        for guild in [GUILD_A, GUILD_B] {
            store
                .set_guild_tenant(guild, Some(&tenant.id))
                .await
                .unwrap();
        }
        let (_, key) = townes::api::auth::issue_api_key(&store, &tenant.id, "test", "test".into())
            .await
            .unwrap();
        let server = ApiServer::start(
            ApiState::new(
                ApiConfig::local(),
                ApiParts::new(h.runtime.clone(), Live::local()),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        let api = Api {
            base: format!("http://{}", server.addr),
            key,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            server,
        };

        // The admins fill the knowledge base through the feature's own route.
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/api/guild/{GUILD_A}/features/ai/api/knowledge"),
                Some(json!({"title": "Opening hours", "body": "We open at 8 and close at 18, every day but Monday."})),
            )
            .await;
        assert_eq!(status, 201, "{label}: {body}");

        // The admins give members room, so the plan's cap is the one reached.
        for guild in [GUILD_A, GUILD_B] {
            let (status, body) = api
                .call(
                    Method::PUT,
                    &format!("/api/guild/{guild}/ai/caps"),
                    Some(json!({"daily_tokens": null, "member_daily_tokens": 100_000})),
                )
                .await;
            assert_eq!(status, 200, "{label}: {body}");
            assert!(
                body.contains(&format!(r#""plan_daily_tokens":{PLAN_CAP}"#)),
                "{label}: {body}"
            );
        }

        // 1. A question, answered with the tone profile and the knowledge base.
        let outcome = ask(&h, GUILD_A, "When do you open?").await;
        let text = reply_text(&outcome);
        assert!(
            text.contains("(model sim-small): When do you open?"),
            "{label}: {text}"
        );
        let seen = sim.requests();
        assert_eq!(seen.len(), 1, "{label}");
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some(&*format!("Bearer {OPERATOR_KEY}"))
        );
        let system = seen[0].system();
        for part in [
            "Pip, the Lantern Cafe's barista",
            "playful and brief",
            "French",
            "politics; medical advice",
            "Opening hours",
            "We open at 8 and close at 18",
            "Answer in one to three sentences.",
        ] {
            assert!(
                system.contains(part),
                "{label}: `{part}` missing from {system}"
            );
        }
        assert_eq!(seen[0].body["model"], "sim-small");
        // `short` asks 150; the host may lower it to what the caps leave.
        let max_tokens = seen[0].body["max_tokens"].as_u64().unwrap();
        assert!((16..=150).contains(&max_tokens), "{label}: {max_tokens}");
        let answered = outcome
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::AiAnswered {
                    prompt_tokens,
                    completion_tokens,
                    own_key: false,
                    ..
                } => Some(u64::from(*prompt_tokens + *completion_tokens)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{label}: {:?}", outcome.effects));

        // 2. Metered: the day's usage shows the tokens.
        let (status, usage) = api
            .call(Method::GET, &format!("/usage/{GUILD_A}/daily"), None)
            .await;
        assert_eq!(status, 200, "{label}: {usage}");
        let usage: Value = serde_json::from_str(&usage).unwrap();
        assert_eq!(usage[0]["ai_tokens"], answered, "{label}: {usage}");

        // 3. The plan's cap refuses, and the member is told which cap and when
        //    it resets; nothing past the cap was spent.
        let mut refusal = None;
        for n in 0..12 {
            let outcome = ask(
                &h,
                GUILD_A,
                &format!("Question {n}: what is on the menu today?"),
            )
            .await;
            let text = reply_text(&outcome);
            if text.contains("daily AI limit") {
                refusal = Some((text, outcome.effects));
                break;
            }
        }
        let (told, effects) = refusal.unwrap_or_else(|| panic!("{label}: the cap never refused"));
        assert!(
            told.contains(&format!("the plan's daily AI limit of {PLAN_CAP} tokens")),
            "{label}: {told}"
        );
        assert!(told.contains("resets at 00:00 UTC"), "{label}: {told}");
        assert!(
            effects.iter().any(|e| matches!(e, Effect::Refused { call: "ai.chat", error } if error.starts_with("quota-exceeded"))),
            "{label}: {effects:?}"
        );
        let today = chrono::Utc::now().date_naive();
        let used = store.usage(GUILD_A, today, today).await.unwrap()[0].ai_tokens;
        assert!(
            used <= PLAN_CAP,
            "{label}: {used} tokens spent past a cap of {PLAN_CAP}"
        );
        let calls_before = sim.requests().len();

        // 4. Guild B's own key: through the API, used for B only.
        let key_path = format!("/api/guild/{GUILD_B}/ai/key");
        let (status, body) = api.call(Method::GET, &key_path, None).await;
        assert_eq!(
            (status, body.contains(r#""set":false"#)),
            (200, true),
            "{label}: {body}"
        );
        let (status, body) = api
            .call(Method::PUT, &key_path, Some(json!({ "key": TENANT_KEY })))
            .await;
        assert_eq!(status, 200, "{label}: {body}");
        assert!(
            body.contains(r#""set":true"#) && body.contains("api-key:"),
            "{label}: {body}"
        );
        let mut answers = Vec::new();
        answers.push(api.call(Method::GET, &key_path, None).await.1);
        let text = reply_text(&ask(&h, GUILD_B, "Do you have oat milk?").await);
        assert!(text.contains("Do you have oat milk?"), "{label}: {text}");
        let seen = sim.requests();
        assert_eq!(seen.len(), calls_before + 1, "{label}");
        assert_eq!(
            seen[calls_before].authorization.as_deref(),
            Some(&*format!("Bearer {TENANT_KEY}"))
        );
        // Guild A, still on the operator's key, is still over its plan's cap.
        let text = reply_text(&ask(&h, GUILD_A, "Still there?").await);
        assert!(text.contains("daily AI limit"), "{label}: {text}");
        assert_eq!(sim.requests().len(), calls_before + 1, "{label}");
        // B's own-key tokens are shown, and not billed.
        let own = store.ai_own_key_tokens(GUILD_B, today).await.unwrap();
        assert!(own > 0, "{label}");
        assert_eq!(
            store.tenant_ai_tokens(&tenant.id, today).await.unwrap(),
            used,
            "{label}"
        );

        // 5. A key the provider refuses: the member hears the model is not
        //    answering; the provider's error text (which quotes the key) goes
        //    nowhere.
        let (status, _) = api
            .call(
                Method::PUT,
                &key_path,
                Some(json!({ "key": WRONG_TENANT_KEY })),
            )
            .await;
        assert_eq!(status, 200, "{label}");
        let failed = ask(&h, GUILD_B, "Are you open on Monday?").await;
        let text = reply_text(&failed);
        assert!(
            text.contains("isn't answering right now"),
            "{label}: {text}"
        );
        let refused = format!("{:?}", failed.effects);
        assert!(
            refused.contains("refused the API key"),
            "{label}: {refused}"
        );

        // Answers that might carry it: the key's view, the guild's features,
        // caps, an invalid key's error, the export's rows.
        answers.push(api.call(Method::GET, &key_path, None).await.1);
        answers.push(
            api.call(Method::GET, &format!("/api/guild/{GUILD_B}/features"), None)
                .await
                .1,
        );
        answers.push(
            api.call(Method::GET, &format!("/api/guild/{GUILD_B}/ai/caps"), None)
                .await
                .1,
        );
        answers.push(
            api.call(
                Method::PUT,
                &key_path,
                Some(json!({ "key": format!("{TENANT_KEY} with spaces") })),
            )
            .await
            .1,
        );
        let rows = store
            .export_rows(&ExportScope::Tenant(tenant.id.clone()), |_, _| {})
            .await
            .unwrap()
            .unwrap();
        answers.push(serde_json::to_string(&rows).unwrap());
        answers.push(refused);
        answers.push(text);
        answers.push(format!("{:?}", store.guild_ai(GUILD_B).await.unwrap()));
        answers.push(format!("{:?}", h.runtime.ai()));
        let logged = logs.text();
        assert!(
            logged.contains("an AI call failed"),
            "{label}: the failure is logged"
        );
        answers.push(logged);
        for (i, answer) in answers.iter().enumerate() {
            for secret in [
                TENANT_KEY,
                WRONG_TENANT_KEY,
                OPERATOR_KEY,
                "SECRET-7d1e",
                "WRONG-55aa",
            ] {
                assert!(
                    !answer.contains(secret),
                    "{label}: answer {i} leaks {secret}: {answer}"
                );
            }
        }
        // Removed: calls go through the operator's key again.
        let (status, _) = api.call(Method::DELETE, &key_path, None).await;
        assert_eq!(status, 204, "{label}");
        assert!(
            store.guild_ai(GUILD_B).await.unwrap().key_sealed.is_none(),
            "{label}"
        );
        api.server.shutdown().await.unwrap();
        sim.shutdown();
    }
}

#[tokio::test]
async fn without_an_endpoint_ai_is_unavailable_with_a_clear_word_and_the_rest_runs() {
    let (_, store, _guard) = common::sqlite().await;
    let h = Harness::new(store, limits()).await;
    let market = Marketplace::new(&h.runtime, "test");
    let (_, manifest) = market
        .install(&common::component("ai"), &Publisher::Platform)
        .await
        .unwrap();
    let approval = Approval {
        ai: true,
        ..Approval::everything_requested(&manifest.capabilities)
    };
    market.enable(GUILD_A, "ai", None, approval).await.unwrap();
    let outcome = ask(&h, GUILD_A, "hello?").await;
    assert!(reply_text(&outcome).contains("isn't answering right now"));
    assert!(
        format!("{:?}", outcome.effects).contains("no AI model is configured on this platform"),
        "{:?}",
        outcome.effects
    );
    // Not approved: denied, and the member is told how to switch it on.
    market
        .enable(
            GUILD_B,
            "ai",
            None,
            Approval::everything_requested(&manifest.capabilities),
        )
        .await
        .unwrap();
    let outcome = ask(&h, GUILD_B, "hello?").await;
    assert!(reply_text(&outcome).contains("isn't switched on here yet"));
    assert!(format!("{:?}", outcome.effects).contains("denied(ai)"));
}

/// A message mentioning the bot is answered in its channel: with message
/// content approved the question goes to the model (here: none configured,
/// so the member is told it isn't answering), without it the member is
/// pointed to `/ask`; a message that does not mention the bot, or a bot's,
/// gets nothing.
#[tokio::test]
async fn a_mention_of_the_bot_is_answered_in_its_channel() {
    const BOT: u64 = 990;
    let (_, store, _guard) = common::sqlite().await;
    let h = Harness::with_config(store, limits(), |c| c.bot_user_id = BOT).await;
    let market = Marketplace::new(&h.runtime, "test");
    let (_, manifest) = market
        .install(&common::component("ai"), &Publisher::Platform)
        .await
        .unwrap();
    let mut approval = Approval {
        ai: true,
        ..Approval::everything_requested(&manifest.capabilities)
    };
    assert!(
        approval
            .capabilities
            .contains(townes::wit::Capability::MessageContent),
        "the concierge asks for message content"
    );
    market
        .enable(GUILD_A, "ai", None, approval.clone())
        .await
        .unwrap();
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    let said = |content: &str, mentions: Vec<u64>, bot: bool| {
        let mut author = ada.user.clone();
        author.bot = bot;
        townes::wit::Event::MessageCreated(townes::wit::Message {
            id: 78,
            channel_id: GUILD_A + 1,
            author,
            content: content.into(),
            mentions,
            timestamp: "2026-11-23T00:00:00Z".into(),
        })
    };
    let sent = async |event: townes::wit::Event| {
        h.runtime
            .dispatch_event(GUILD_A, &event)
            .await
            .unwrap()
            .iter()
            .flat_map(|o| common::sent_texts(&o.effects))
            .collect::<Vec<_>>()
    };

    let answered = sent(said(&format!("<@{BOT}> what's new?"), vec![BOT], false)).await;
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert!(
        answered[0].contains("isn't answering right now"),
        "{answered:?}"
    );
    assert!(sent(said("what's new?", vec![], false)).await.is_empty());
    assert!(
        sent(said(&format!("<@{BOT}> hi"), vec![BOT], true))
            .await
            .is_empty()
    );

    // Without message content the host hands over no text: pointed to /ask.
    approval.capabilities = approval
        .capabilities
        .iter()
        .filter(|c| *c != townes::wit::Capability::MessageContent)
        .collect();
    market.enable(GUILD_A, "ai", None, approval).await.unwrap();
    let pointed = sent(said(&format!("<@{BOT}> what's new?"), vec![BOT], false)).await;
    assert_eq!(pointed.len(), 1, "{pointed:?}");
    assert!(pointed[0].contains("use `/ask` instead"), "{pointed:?}");
}
