//! Helpers shared by the integration tests: a started simulator and plain HTTP.
#![allow(dead_code)]

use serde_json::Value;
use townes_discord_sim::{GuildSetup, SimConfig, Simulator};

pub struct World {
    pub sim: Simulator,
    pub owner: u64,
    pub alice: u64,
    pub g: GuildSetup,
}

pub async fn world() -> World {
    world_with(SimConfig::default()).await
}

pub async fn world_with(config: SimConfig) -> World {
    let sim = Simulator::start(config).await.expect("start simulator");
    let owner = sim.create_user("owner");
    let alice = sim.create_user("alice");
    let g = sim.create_guild("Test Guild", owner);
    sim.member_join(g.guild_id, alice).await;
    World {
        sim,
        owner,
        alice,
        g,
    }
}

/// A REST client speaking to the simulator as the bot.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(sim: &Simulator) -> Self {
        Self {
            base: format!("{}/api/v10", sim.base_url()),
            token: sim.token(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_with(
            method,
            path,
            body,
            Some(&format!("Bot {}", self.token)),
            &[],
        )
        .await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A bare gateway client: what a shard does, frame by frame.
pub struct Gw {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

pub const ALL_INTENTS: u64 =
    (1 << 0) | (1 << 1) | (1 << 2) | (1 << 9) | (1 << 10) | (1 << 12) | (1 << 15);

impl Gw {
    /// Connects and reads HELLO; returns the client and the heartbeat interval.
    pub async fn connect(sim: &Simulator) -> (Gw, u64) {
        let url = format!(
            "{}/gateway?v=10&encoding=json",
            sim.base_url().replace("http", "ws")
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut gw = Gw { ws };
        let hello = gw.recv().await;
        assert_eq!(hello["op"], 10, "{hello}");
        let interval = hello["d"]["heartbeat_interval"].as_u64().unwrap();
        (gw, interval)
    }

    pub async fn send(&mut self, v: Value) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(v.to_string()))
            .await
            .expect("ws send");
    }

    pub async fn identify(&mut self, token: &str, intents: u64, shard: [u32; 2]) {
        self.send(serde_json::json!({
            "op": 2,
            "d": {
                "token": token, "intents": intents, "shard": shard, "compress": true,
                "large_threshold": 250,
                "properties": {"os": "linux", "browser": "test", "device": "test"},
            }
        }))
        .await;
    }

    /// The next text frame as JSON (panics after 5 s or on close).
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(std::time::Duration::from_secs(5)).await {
            Frame::Json(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next dispatch, skipping heartbeat ACKs.
    pub async fn dispatch(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["op"] == 0 {
                return v;
            }
        }
    }

    pub async fn next_frame(&mut self, timeout: std::time::Duration) -> Frame {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return Frame::Timeout,
                Ok(None) => return Frame::Closed(None),
                Ok(Some(Err(_))) => return Frame::Closed(None),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Frame::Json(serde_json::from_str(&t).expect("json frame"));
                }
                Ok(Some(Ok(Message::Close(c)))) => {
                    return Frame::Closed(c.map(|c| (u16::from(c.code), c.reason.to_string())));
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<(u16, String)>),
    Timeout,
}
