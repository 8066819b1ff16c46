//! The gateway: Discord's v10 JSON protocol over WebSocket.
//!
//! A connection gets HELLO, answers with IDENTIFY (op 2) or RESUME (op 6), and from
//! then on receives dispatches (op 0) with a sequence number per *session*. Sessions
//! outlive connections: dispatches for a disconnected session are kept and replayed
//! when the shard RESUMEs, as Discord does, which is what makes reconnect tests
//! meaningful. A dispatch goes to the session of the shard owning the guild
//! (`(guild_id >> 22) % shard_count`, DMs to shard 0) and only if its intents cover
//! the event.
//!
//! Lock order: callers may hold the world lock while calling into the hub; the hub
//! never takes the world lock while holding its own. Holding the world lock while
//! queueing a dispatch is what keeps READY's guild list and later GUILD_CREATEs
//! consistent with concurrent world changes.

use crate::Simulator;
use crate::payloads::{self, sf};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Gateway intents (<https://discord.com/developers/docs/events/gateway#gateway-intents>).
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_MODERATION: u64 = 1 << 2;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// The ones an application must switch on in the developer portal.
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
}

/// How many dispatches a session keeps for RESUME.
const REPLAY_LOG: usize = 10_000;

/// One event to send.
pub struct Dispatch {
    /// The guild it concerns (decides the shard); `None` for DMs (shard 0).
    pub guild_id: Option<u64>,
    pub t: &'static str,
    pub d: Value,
    /// The intent needed to receive it; 0 = always sent.
    pub intent: u64,
    /// What sessions without MESSAGE_CONTENT get instead (MESSAGE_CREATE/UPDATE).
    pub d_without_content: Option<Value>,
}

/// Resolves once every targeted socket has written the dispatch.
#[must_use = "await `written()` or drop it to not wait"]
pub struct Delivery(Vec<oneshot::Receiver<()>>);

impl Delivery {
    /// Nothing to wait for.
    pub fn none() -> Self {
        Delivery(Vec::new())
    }

    pub async fn written(self) {
        for rx in self.0 {
            // A socket that dies first drops the sender: nothing more to wait for
            // (the session keeps the dispatch for RESUME).
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

enum Out {
    Text(String, Option<oneshot::Sender<()>>),
    /// The frames queued before this one are written: the session is ready.
    MarkReady(String),
    Close(u16, &'static str),
    /// Close the TCP connection without a close frame.
    Drop,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    session: Option<String>,
}

struct Session {
    shard_id: u32,
    shard_count: u32,
    intents: u64,
    seq: u64,
    log: VecDeque<(u64, String)>,
    conn: Option<u64>,
    ready: bool,
}

impl Session {
    fn owns(&self, guild_id: Option<u64>) -> bool {
        let shard = guild_id.map_or(0, |g| (g >> 22) % u64::from(self.shard_count.max(1)));
        shard == u64::from(self.shard_id)
    }

    /// Appends a dispatch to the session's log and returns the frame.
    fn sequence(&mut self, t: &str, d: &Value) -> String {
        self.seq += 1;
        let frame = json!({ "op": 0, "s": self.seq, "t": t, "d": d }).to_string();
        self.log.push_back((self.seq, frame.clone()));
        if self.log.len() > REPLAY_LOG {
            self.log.pop_front();
        }
        frame
    }
}

#[derive(Default)]
struct HubState {
    next_conn: u64,
    conns: HashMap<u64, Conn>,
    sessions: HashMap<String, Session>,
    identifies: u32,
    resumes: u32,
    heartbeats: u32,
}

pub struct Hub {
    state: Mutex<HubState>,
    /// Woken when sessions become ready or go away.
    pub changed: Notify,
    url: String,
}

impl Hub {
    pub fn new(url: String) -> Self {
        Self {
            state: Mutex::new(HubState::default()),
            changed: Notify::new(),
            url,
        }
    }

    /// `ws://127.0.0.1:PORT/gateway`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().expect("gateway hub")
    }

    /// Sequences the event into every session that should get it and queues it on
    /// their sockets.
    pub fn dispatch(&self, ev: Dispatch) -> Delivery {
        let mut acks = Vec::new();
        let mut st = self.lock();
        let HubState {
            sessions, conns, ..
        } = &mut *st;
        for s in sessions.values_mut() {
            if !s.owns(ev.guild_id) || (ev.intent != 0 && s.intents & ev.intent == 0) {
                continue;
            }
            let d = match &ev.d_without_content {
                Some(alt) if s.intents & intents::MESSAGE_CONTENT == 0 => alt,
                _ => &ev.d,
            };
            let frame = s.sequence(ev.t, d);
            if let Some(conn) = s.conn.and_then(|c| conns.get(&c)) {
                let (tx, rx) = oneshot::channel();
                if conn.tx.send(Out::Text(frame, Some(tx))).is_ok() {
                    acks.push(rx);
                }
            }
        }
        Delivery(acks)
    }

    pub fn stats(&self) -> crate::GatewayStats {
        let st = self.lock();
        let mut sessions: Vec<(u32, u64)> = st
            .sessions
            .values()
            .filter(|s| s.ready && s.conn.is_some())
            .map(|s| (s.shard_id, s.intents))
            .collect();
        sessions.sort_unstable();
        let mut ready: Vec<u32> = sessions.iter().map(|(shard, _)| *shard).collect();
        ready.dedup();
        crate::GatewayStats {
            identifies: st.identifies,
            resumes: st.resumes,
            heartbeats: st.heartbeats,
            ready_shards: ready,
            ready_intents: sessions.into_iter().map(|(_, intents)| intents).collect(),
        }
    }

    fn register(&self, tx: mpsc::UnboundedSender<Out>) -> u64 {
        let mut st = self.lock();
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.insert(id, Conn { tx, session: None });
        id
    }

    fn unregister(&self, conn_id: u64) {
        {
            let mut st = self.lock();
            if let Some(c) = st.conns.remove(&conn_id)
                && let Some(sid) = c.session
                && let Some(s) = st.sessions.get_mut(&sid)
                && s.conn == Some(conn_id)
            {
                s.conn = None;
                s.ready = false;
            }
        }
        self.changed.notify_waiters();
    }

    fn mark_ready(&self, conn_id: u64, session_id: &str) {
        {
            let mut st = self.lock();
            if let Some(s) = st.sessions.get_mut(session_id)
                && s.conn == Some(conn_id)
            {
                s.ready = true;
            }
        }
        self.changed.notify_waiters();
    }

    fn send(&self, conn_id: u64, out: Out) {
        if let Some(c) = self.lock().conns.get(&conn_id) {
            let _ = c.tx.send(out);
        }
    }

    /// Sends a non-dispatch frame to every connection with a session; resolves once
    /// written.
    async fn broadcast(&self, frame: &str, then: impl Fn(&mut HubState, u64)) {
        let mut acks = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<u64> = st
                .conns
                .iter()
                .filter(|(_, c)| c.session.is_some())
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                let (tx, rx) = oneshot::channel();
                if st.conns[&id]
                    .tx
                    .send(Out::Text(frame.to_string(), Some(tx)))
                    .is_ok()
                {
                    acks.push(rx);
                }
                then(&mut st, id);
            }
        }
        self.changed.notify_waiters();
        Delivery(acks).written().await;
    }

    /// op 7 to every shard.
    pub async fn reconnect_all(&self) {
        let frame = json!({ "op": 7, "d": null, "s": null, "t": null }).to_string();
        self.broadcast(&frame, |_, _| {}).await;
    }

    /// op 9 to every shard; non-resumable sessions are forgotten.
    pub async fn invalidate_all(&self, resumable: bool) {
        let frame = json!({ "op": 9, "d": resumable, "s": null, "t": null }).to_string();
        self.broadcast(&frame, |st, conn| {
            if resumable {
                return;
            }
            if let Some(sid) = st.conns.get_mut(&conn).and_then(|c| c.session.take()) {
                st.sessions.remove(&sid);
            }
        })
        .await;
    }

    /// Drops every socket abruptly and waits (briefly) until they are gone.
    pub async fn drop_all(&self) {
        let ids: Vec<u64> = {
            let st = self.lock();
            for c in st.conns.values() {
                let _ = c.tx.send(Out::Drop);
            }
            st.conns.keys().copied().collect()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !ids.iter().any(|id| self.lock().conns.contains_key(id)) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    /// Closes every socket with 1001 (the simulator is going away).
    pub fn close_all(&self) {
        for c in self.lock().conns.values() {
            let _ = c.tx.send(Out::Close(1001, "Simulator shutting down"));
        }
    }
}

/// Serves one gateway connection until it closes.
pub async fn serve(sim: Simulator, mut socket: WebSocket) {
    let hub = &sim.0.gateway;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = hub.register(tx);
    let hello = json!({
        "op": 10,
        "d": { "heartbeat_interval": sim.0.config.heartbeat_interval_ms, "_trace": ["[\"townes-discord-sim\"]"] },
        "s": null,
        "t": null,
    });
    let mut stop = sim.0.shutdown.subscribe();
    if !*stop.borrow()
        && socket
            .send(Message::Text(hello.to_string().into()))
            .await
            .is_ok()
    {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => handle(&sim, conn_id, text.as_str()),
                    Some(Ok(Message::Binary(_))) => {
                        // We speak JSON text only (no ETF, no compressed payloads from clients).
                        hub.send(conn_id, Out::Close(4002, "Decode error"));
                    }
                    Some(Ok(Message::Close(frame))) => {
                        // Complete the closing handshake, as Discord does: a client
                        // that closes waits for our close frame.
                        let _ = socket.send(Message::Close(frame)).await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                out = rx.recv() => match out {
                    Some(Out::Text(frame, ack)) => {
                        if socket.send(Message::Text(frame.into())).await.is_err() {
                            break;
                        }
                        if let Some(ack) = ack {
                            let _ = ack.send(());
                        }
                    }
                    Some(Out::MarkReady(session)) => hub.mark_ready(conn_id, &session),
                    Some(Out::Close(code, reason)) => {
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = socket.send(Message::Close(Some(frame))).await;
                        break;
                    }
                    Some(Out::Drop) | None => break,
                },
                _ = stop.changed() => {
                    let frame = CloseFrame { code: 1001, reason: "Simulator shutting down".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
    }
    hub.unregister(conn_id);
}

/// Handles one client payload. Replies are queued on the connection, after anything
/// already queued, so ordering is preserved.
fn handle(sim: &Simulator, conn_id: u64, text: &str) {
    let hub = &sim.0.gateway;
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        hub.send(conn_id, Out::Close(4002, "Decode error"));
        return;
    };
    let has_session = hub
        .lock()
        .conns
        .get(&conn_id)
        .is_some_and(|c| c.session.is_some());
    match payload.get("op").and_then(Value::as_u64) {
        Some(1) => {
            hub.lock().heartbeats += 1;
            let ack = json!({ "op": 11, "d": null, "s": null, "t": null }).to_string();
            hub.send(conn_id, Out::Text(ack, None));
        }
        Some(2) if has_session => hub.send(conn_id, Out::Close(4005, "Already authenticated")),
        Some(2) => identify(sim, conn_id, &payload["d"]),
        Some(6) => resume(sim, conn_id, &payload["d"]),
        Some(3 | 4) if has_session => {} // presence / voice state updates: accepted, ignored
        Some(8) if has_session => request_members(sim, conn_id, &payload["d"]),
        Some(_) if !has_session => hub.send(conn_id, Out::Close(4003, "Not authenticated")),
        _ => hub.send(conn_id, Out::Close(4001, "Unknown opcode")),
    }
}

fn token_ok(sim: &Simulator, d: &Value) -> bool {
    let token = d.get("token").and_then(Value::as_str).unwrap_or("");
    token.strip_prefix("Bot ").unwrap_or(token) == sim.0.config.token
}

fn identify(sim: &Simulator, conn_id: u64, d: &Value) {
    let hub = &sim.0.gateway;
    if !token_ok(sim, d) {
        hub.send(conn_id, Out::Close(4004, "Authentication failed"));
        return;
    }
    let (shard_id, shard_count) = match d.get("shard").and_then(Value::as_array) {
        None => (0, 1),
        Some(a) => (
            a.first().and_then(Value::as_u64).unwrap_or(0),
            a.get(1).and_then(Value::as_u64).unwrap_or(0),
        ),
    };
    if shard_count == 0 || shard_id >= shard_count {
        hub.send(conn_id, Out::Close(4010, "Invalid shard"));
        return;
    }
    let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
        hub.send(conn_id, Out::Close(4013, "Invalid intent(s)"));
        return;
    };
    let cfg = &sim.0.config;
    if intents & intents::PRIVILEGED & !cfg.privileged_intents != 0 {
        hub.send(conn_id, Out::Close(4014, "Disallowed intent(s)"));
        return;
    }
    let (shard_id, shard_count) = (shard_id as u32, shard_count as u32);
    let session_id = crate::ids::random_hex(16);

    // World lock first, then the hub (see the module docs).
    let world = sim.world();
    let mut st = hub.lock();
    st.identifies += 1;
    // A new IDENTIFY replaces older sessions of the same shard.
    st.sessions
        .retain(|_, s| !(s.shard_id == shard_id && s.shard_count == shard_count));
    let mut session = Session {
        shard_id,
        shard_count,
        intents,
        seq: 0,
        log: VecDeque::new(),
        conn: Some(conn_id),
        ready: false,
    };
    let guilds: Vec<u64> = world
        .bot_guilds(cfg.bot_user_id)
        .into_iter()
        .filter(|g| session.owns(Some(*g)))
        .collect();
    let bot = world
        .users
        .get(&cfg.bot_user_id)
        .map(payloads::user)
        .unwrap_or(Value::Null);
    let mut user = bot;
    payloads::merge(
        &mut user,
        json!({ "verified": true, "mfa_enabled": false, "email": null, "flags": 0 }),
    );
    let ready = json!({
        "v": 10,
        "user": user,
        "user_settings": {},
        "guilds": guilds.iter().map(|g| json!({ "id": sf(*g), "unavailable": true })).collect::<Vec<_>>(),
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["local"],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": hub.url(),
        "shard": [shard_id, shard_count],
        "application": { "id": sf(cfg.application_id), "flags": crate::APPLICATION_FLAGS },
        "auth": {},
        "_trace": ["[\"townes-discord-sim\"]"],
    });
    let mut frames = vec![session.sequence("READY", &ready)];
    for g in &guilds {
        if let Some(guild) = world.guilds.get(g) {
            let d = payloads::guild(&world, guild, true);
            frames.push(session.sequence("GUILD_CREATE", &d));
        }
    }
    st.sessions.insert(session_id.clone(), session);
    if let Some(c) = st.conns.get_mut(&conn_id) {
        c.session = Some(session_id.clone());
        for f in frames {
            let _ = c.tx.send(Out::Text(f, None));
        }
        let _ = c.tx.send(Out::MarkReady(session_id));
    }
}

fn resume(sim: &Simulator, conn_id: u64, d: &Value) {
    let hub = &sim.0.gateway;
    if !token_ok(sim, d) {
        hub.send(conn_id, Out::Close(4004, "Authentication failed"));
        return;
    }
    let session_id = d
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let after = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let mut st = hub.lock();
    let HubState {
        sessions,
        conns,
        resumes,
        ..
    } = &mut *st;
    let Some(session) = sessions.get_mut(&session_id) else {
        let invalid = json!({ "op": 9, "d": false, "s": null, "t": null }).to_string();
        if let Some(c) = conns.get(&conn_id) {
            let _ = c.tx.send(Out::Text(invalid, None));
        }
        return;
    };
    if after > session.seq {
        // A sequence from the future cannot be resumed.
        let invalid = json!({ "op": 9, "d": false, "s": null, "t": null }).to_string();
        if let Some(c) = conns.get(&conn_id) {
            let _ = c.tx.send(Out::Text(invalid, None));
        }
        return;
    }
    *resumes += 1;
    // Detach the old socket, if the client has not closed it yet.
    if let Some(old) = session.conn.replace(conn_id)
        && old != conn_id
        && let Some(c) = conns.get_mut(&old)
    {
        c.session = None;
        let _ = c.tx.send(Out::Drop);
    }
    session.ready = false;
    let mut frames: Vec<String> = session
        .log
        .iter()
        .filter(|(s, _)| *s > after)
        .map(|(_, f)| f.clone())
        .collect();
    frames.push(session.sequence(
        "RESUMED",
        &json!({ "_trace": ["[\"townes-discord-sim\"]"] }),
    ));
    if let Some(c) = conns.get_mut(&conn_id) {
        c.session = Some(session_id.clone());
        for f in frames {
            let _ = c.tx.send(Out::Text(f, None));
        }
        let _ = c.tx.send(Out::MarkReady(session_id));
    }
}

/// op 8: answers GUILD_MEMBERS_CHUNK with every member (one chunk).
fn request_members(sim: &Simulator, conn_id: u64, d: &Value) {
    let Some(guild_id) = d.get("guild_id").and_then(crate::messages::snowflake_value) else {
        return;
    };
    let world = sim.world();
    let Some(g) = world.guilds.get(&guild_id) else {
        return;
    };
    let members: Vec<Value> = g
        .members
        .values()
        .map(|m| payloads::member(&world, g, m, true))
        .collect();
    let mut chunk = json!({
        "guild_id": sf(guild_id),
        "members": members,
        "chunk_index": 0,
        "chunk_count": 1,
        "not_found": [],
    });
    if let Some(nonce) = d.get("nonce") {
        chunk["nonce"] = nonce.clone();
    }
    let hub = &sim.0.gateway;
    let mut st = hub.lock();
    let HubState {
        sessions, conns, ..
    } = &mut *st;
    if let Some(sid) = conns.get(&conn_id).and_then(|c| c.session.clone())
        && let Some(s) = sessions.get_mut(&sid)
    {
        let frame = s.sequence("GUILD_MEMBERS_CHUNK", &chunk);
        if let Some(c) = conns.get(&conn_id) {
            let _ = c.tx.send(Out::Text(frame, None));
        }
    }
}
