//! The `http` capability against a local TLS server (issue 17's SSRF tests).
//!
//! The server is reached through [`Outbound::for_tests`]: names resolve from
//! a table (no real DNS), the client trusts only the test's certificate
//! authority, and the server's own loopback socket is the one non-public
//! address that may be reached, through the server's own names only. Every
//! other name in the table points at an address the production checks must
//! refuse; the server counts every request
//! it receives, so a refused request is shown never to have left.
//!
//! Most tests call the capability directly ([`Cap`] over [`HttpCtx`]); the
//! last ones run the `fetcher` guest through the runtime (built by `cargo
//! xtask build-guests`).

mod common;

use common::harness::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use townes::capabilities::http::{HttpCtx, Outbound, TestNetwork, USER_AGENT};
use townes::capabilities::rates::Rates;
use townes::capabilities::{Calls, Cap, Effect};
use townes::grants::{Approval, CapabilitySet, Grant, Quota};
use townes::marketplace::Marketplace;
use townes::runtime::Limits;
use townes::store::Scope;
use townes::wit::townes::feature::http::{Host, HttpError, Method, Request, Response};
use townes::wit::{CommandArgument, OptionValue};

/// Names the server's certificate covers and the table resolves to it.
const SERVED: [&str; 3] = ["api.test", "other.test", "second.test"];

/// A request the server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    addr: SocketAddr,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Endless answers whose client went away (a write failed).
    abandoned: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Server {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let names: Vec<String> = SERVED.iter().map(|s| s.to_string()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(leaf.der().to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let (s, a) = (seen.clone(), abandoned.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, seen, abandoned) = (acceptor.clone(), s.clone(), a.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, seen, abandoned).await;
                    }
                });
            }
        });
        Server {
            addr,
            ca_pem,
            seen,
            abandoned,
        }
    }

    /// The names besides the server's that the test network resolves: each
    /// to addresses the checks must refuse (`loop.test` to the server's own
    /// socket, which only the server's own names may reach).
    fn hosts(&self) -> HashMap<String, Vec<SocketAddr>> {
        let mut hosts = HashMap::new();
        let port = self.addr.port();
        for (name, addrs) in [
            ("loop.test", vec![format!("127.0.0.1:{port}")]),
            ("loop-other-port.test", vec!["127.0.0.1:443".to_string()]),
            ("loop2.test", vec![format!("127.0.0.2:{port}")]),
            ("meta.test", vec!["169.254.169.254:443".to_string()]),
            ("private.test", vec!["10.1.2.3:443".to_string()]),
            ("cgnat.test", vec!["100.100.100.200:443".to_string()]),
            ("v6loop.test", vec![format!("[::1]:{port}")]),
            ("mapped.test", vec![format!("[::ffff:127.0.0.1]:{port}")]),
            (
                "mapped-meta.test",
                vec!["[::ffff:169.254.169.254]:443".into()],
            ),
            ("nat64.test", vec!["[64:ff9b::a9fe:a9fe]:443".to_string()]),
            ("ula.test", vec!["[fd00:ec2::254]:443".to_string()]),
            ("unspecified.test", vec!["0.0.0.0:443".to_string()]),
            // One public address and one private: refused whole.
            (
                "mixed.test",
                vec!["93.184.216.34:443".into(), "192.168.1.1:443".into()],
            ),
        ] {
            hosts.insert(
                name.to_string(),
                addrs.iter().map(|a| a.parse().unwrap()).collect(),
            );
        }
        hosts
    }

    fn outbound(&self, timeout: Duration) -> Outbound {
        Outbound::for_tests(TestNetwork {
            root_pem: self.ca_pem.clone(),
            server: Some((SERVED.map(String::from).to_vec(), self.addr)),
            hosts: self.hosts(),
            timeout,
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// HTTP/1.1, keep-alive, one request after another on a connection.
async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    seen: Arc<Mutex<Vec<Seen>>>,
    abandoned: Arc<AtomicUsize>,
) {
    let (reader, mut writer) = tokio::io::split(tls);
    let mut reader = BufReader::new(reader);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let request = Seen {
            method,
            path: path.clone(),
            headers,
            body,
        };
        seen.lock().unwrap().push(request.clone());
        let respond = |status: &str, extra: &str, body: &[u8]| {
            let mut answer = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}\r\n",
                body.len()
            )
            .into_bytes();
            answer.extend_from_slice(body);
            answer
        };
        let answer = match path.as_str() {
            "/hello" => respond(
                "200 OK",
                "content-type: text/plain\r\nset-cookie: session=secret\r\nx-test: yes\r\n",
                b"hello",
            ),
            "/echo" => respond("200 OK", "", &request.body),
            "/to-private" => respond("302 Found", "location: https://private.test/hello\r\n", b""),
            "/to-meta" => respond("301 Moved", "location: https://meta.test/hello\r\n", b""),
            "/to-other" => respond("302 Found", "location: https://other.test/hello\r\n", b""),
            "/to-http" => respond("302 Found", "location: http://api.test/hello\r\n", b""),
            "/to-ip" => respond("302 Found", "location: https://127.0.0.1/hello\r\n", b""),
            "/to-second" => respond(
                "307 Temporary",
                "location: https://second.test/echo\r\n",
                b"",
            ),
            "/see-other" => respond("303 See Other", "location: /echo\r\n", b""),
            "/loop" => respond("302 Found", "location: /loop\r\n", b""),
            "/big" => {
                // Declares 2 MiB; the client must not wait for them.
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 2097152\r\n\r\n";
                let _ = writer.write_all(head.as_bytes()).await;
                let _ = writer.write_all(&[b'x'; 1024]).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/endless" => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if writer.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = [b'x'; 64 * 1024];
                loop {
                    let sent = async {
                        writer.write_all(b"10000\r\n").await?;
                        writer.write_all(&chunk).await?;
                        writer.write_all(b"\r\n").await?;
                        writer.flush().await
                    };
                    if sent.await.is_err() {
                        abandoned.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/drip" => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
                let _ = writer.write_all(head.as_bytes()).await;
                for _ in 0..100_000 {
                    if writer.write_all(b"x").await.is_err() || writer.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return;
            }
            wait if wait.starts_with("/wait/") => {
                let ms: u64 = wait["/wait/".len()..].parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                respond("200 OK", "", b"late")
            }
            _ => respond("404 Not Found", "", b"no such path"),
        };
        if writer.write_all(&answer).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

/// One invocation's worth of `http` calls: its record and its context.
struct Invocation {
    calls: Calls,
    ctx: HttpCtx,
}

const GUILD: u64 = 1000;

fn grant(hosts: &[&str]) -> Grant {
    let approval = Approval {
        http_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Approval::default()
    };
    Grant::effective(
        &[],
        &approval,
        CapabilitySet::all(),
        Quota {
            max_bytes: 1 << 20,
            max_rows: 100,
        },
    )
}

impl Invocation {
    fn new(outbound: &Arc<Outbound>, rates: &Arc<Rates>, hosts: &[&str]) -> Invocation {
        Invocation {
            calls: Calls::new(grant(hosts), 1_000),
            ctx: HttpCtx::new(
                Scope::new(GUILD, "fetcher"),
                outbound.clone(),
                rates.clone(),
            ),
        }
    }

    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        Cap::new(&mut self.calls, &mut self.ctx).send(request).await
    }

    async fn get(&mut self, url: &str) -> Result<Response, HttpError> {
        self.send(get(url)).await
    }

    fn refusals(&self) -> Vec<String> {
        self.calls
            .effects()
            .iter()
            .filter_map(|e| match e {
                Effect::Refused { call, error } => Some(format!("{call}: {error}")),
                _ => None,
            })
            .collect()
    }
}

fn get(url: &str) -> Request {
    Request {
        method: Method::Get,
        url: url.into(),
        headers: Vec::new(),
        body: None,
    }
}

/// A server, a client for it with `timeout`, and an invocation approved for `hosts`.
async fn setup(hosts: &[&str], timeout: Duration) -> (Server, Invocation) {
    let server = Server::start().await;
    let outbound = Arc::new(server.outbound(timeout));
    let invocation = Invocation::new(&outbound, &Arc::default(), hosts);
    (server, invocation)
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_get_reaches_an_approved_host_with_the_platform_agent_and_no_cookies() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    let request = Request {
        headers: vec![("X-Api-Key".into(), "k1".into())],
        ..get("https://api.test/hello")
    };
    let answer = inv.send(request).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"hello");
    assert!(answer.headers.contains(&("x-test".into(), "yes".into())));
    assert!(
        !answer.headers.iter().any(|(n, _)| n == "set-cookie"),
        "cookies are not passed on: {:?}",
        answer.headers
    );
    // The cookie the first answer set is never sent back.
    inv.get("https://api.test/hello").await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("x-api-key"), Some("k1"));
    assert_eq!(seen[0].header("user-agent"), Some(USER_AGENT));
    assert!(
        seen.iter().all(|s| s.header("cookie").is_none()),
        "{seen:?}"
    );
    assert!(seen.iter().all(|s| s.header("authorization").is_none()));
    assert_eq!(
        inv.calls.effects()[0],
        Effect::HttpRequested {
            method: "GET",
            host: "api.test".into(),
            status: 200,
            bytes: 5,
        }
    );
}

#[tokio::test]
async fn a_post_sends_its_body_and_headers() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    let request = Request {
        method: Method::Post,
        url: "https://api.test/echo".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), "Bearer t".into()),
        ],
        body: Some(br#"{"a":1}"#.to_vec()),
    };
    let answer = inv.send(request).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"{"a":1}"#);
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("authorization"), Some("Bearer t"));
}

#[tokio::test]
async fn a_grant_for_one_host_refuses_another() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    for url in [
        "https://other.test/hello",
        "https://api.test.other.test/hello",
        "https://127.0.0.1/hello",
    ] {
        match inv.get(url).await {
            Err(HttpError::Denied(why)) => assert!(why.contains("not a host"), "{why}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(server.seen().is_empty());
    let refusals = inv.refusals();
    assert!(
        refusals[0].starts_with("http.send: denied(http): other.test"),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn a_feature_with_no_approved_host_is_denied() {
    let (server, mut inv) = setup(&[], TIMEOUT).await;
    assert!(matches!(
        inv.get("https://api.test/hello").await,
        Err(HttpError::Denied(_))
    ));
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn approved_names_resolving_to_non_public_addresses_are_refused() {
    let names = [
        "loop.test",
        "loop-other-port.test",
        "loop2.test",
        "meta.test",
        "private.test",
        "cgnat.test",
        "v6loop.test",
        "mapped.test",
        "mapped-meta.test",
        "nat64.test",
        "ula.test",
        "unspecified.test",
        "mixed.test",
    ];
    let server = Server::start().await;
    let outbound = Arc::new(server.outbound(TIMEOUT));
    for name in names {
        // One invocation each: more than 8 would hit the per-invocation cap.
        let mut inv = Invocation::new(&outbound, &Arc::default(), &names);
        match inv.get(&format!("https://{name}/hello")).await {
            Err(HttpError::BlockedAddress(why)) => {
                assert!(
                    why.contains(name) && why.contains("not a public address"),
                    "{why}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Refused before connecting, `loop.test` (the server's own socket) too.
    assert!(
        server.seen().is_empty(),
        "a refused request reached the server"
    );
}

#[tokio::test]
async fn without_the_test_exception_the_server_itself_is_refused() {
    let server = Server::start().await;
    let mut hosts = server.hosts();
    hosts.insert("api.test".into(), vec![server.addr]);
    let outbound = Arc::new(Outbound::for_tests(TestNetwork {
        root_pem: server.ca_pem.clone(),
        server: None,
        hosts,
        timeout: TIMEOUT,
    }));
    let mut inv = Invocation::new(&outbound, &Arc::default(), &["api.test"]);
    match inv.get("https://api.test/hello").await {
        Err(HttpError::BlockedAddress(why)) => assert!(why.contains("127.0.0.1"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused() {
    // Both names approved: what refuses is the address check on the redirect.
    let (server, mut inv) = setup(&["api.test", "private.test", "meta.test"], TIMEOUT).await;
    for path in ["/to-private", "/to-meta"] {
        match inv.get(&format!("https://api.test{path}")).await {
            Err(HttpError::BlockedAddress(why)) => assert!(why.contains("not a public"), "{why}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert_eq!(
        server.seen().len(),
        2,
        "only the first hops reached the server"
    );
}

#[tokio::test]
async fn a_redirect_to_an_unapproved_host_or_elsewhere_is_refused() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    match inv.get("https://api.test/to-other").await {
        Err(HttpError::Denied(why)) => {
            assert!(why.starts_with("redirected to other.test"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    match inv.get("https://api.test/to-ip").await {
        Err(HttpError::Denied(why)) => assert!(why.contains("127.0.0.1"), "{why}"),
        other => panic!("{other:?}"),
    }
    match inv.get("https://api.test/to-http").await {
        Err(HttpError::InvalidArgument(why)) => assert!(why.contains("https"), "{why}"),
        other => panic!("{other:?}"),
    }
    let paths: Vec<_> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/to-other", "/to-ip", "/to-http"]);
}

#[tokio::test]
async fn redirects_to_approved_hosts_are_followed_up_to_a_cap() {
    let (server, mut inv) = setup(&["api.test", "second.test"], TIMEOUT).await;
    // 307 keeps the method and body; the credentials stay with their host.
    let request = Request {
        method: Method::Post,
        url: "https://api.test/to-second".into(),
        headers: vec![("authorization".into(), "Bearer t".into())],
        body: Some(b"payload".to_vec()),
    };
    let answer = inv.send(request).await.unwrap();
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"payload"[..])
    );
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), Some("Bearer t"));
    assert_eq!(seen[1].path, "/echo");
    assert_eq!(seen[1].header("host"), Some("second.test"));
    assert_eq!(seen[1].header("authorization"), None);
    // 303 turns a POST into a GET without a body.
    let request = Request {
        method: Method::Post,
        url: "https://api.test/see-other".into(),
        headers: Vec::new(),
        body: Some(b"payload".to_vec()),
    };
    assert_eq!(inv.send(request).await.unwrap().body, b"");
    assert_eq!(server.seen().last().unwrap().method, "GET");
    // A loop stops after 3 redirects: 4 requests.
    let before = server.seen().len();
    match inv.get("https://api.test/loop").await {
        Err(HttpError::Unavailable(why)) => assert!(why.contains("redirects"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.seen().len() - before, 4);
}

#[tokio::test]
async fn an_oversize_answer_is_cut() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    let started = Instant::now();
    assert!(matches!(
        inv.get("https://api.test/big").await,
        Err(HttpError::TooLarge(_))
    ));
    // An endless answer is read up to the cap only: the call fails, and the
    // server sees the connection closed instead of read on.
    assert!(matches!(
        inv.get("https://api.test/endless").await,
        Err(HttpError::TooLarge(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.abandoned.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the endless answer was still read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_answer_is_cut_at_the_time_cap() {
    let cap = Duration::from_millis(800);
    let (_server, mut inv) = setup(&["api.test"], cap).await;
    for path in ["/slow", "/drip"] {
        let started = Instant::now();
        assert!(
            matches!(
                inv.get(&format!("https://api.test{path}")).await,
                Err(HttpError::Timeout)
            ),
            "{path}"
        );
        let took = started.elapsed();
        assert!(took >= cap && took < cap * 3, "{path}: {took:?}");
    }
    assert!(inv.refusals().iter().all(|r| r.ends_with("timeout")));
}

#[tokio::test]
async fn plain_http_other_ports_and_user_info_are_refused() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    for url in [
        "http://api.test/hello",
        "https://api.test:8443/hello",
        "https://api.test:80/hello",
        "https://user:pw@api.test/hello",
        "api.test/hello",
    ] {
        assert!(
            matches!(inv.get(url).await, Err(HttpError::InvalidArgument(_))),
            "{url}"
        );
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn forbidden_headers_are_refused() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    for (name, value) in [
        ("Cookie", "session=x"),
        ("Host", "internal.example"),
        ("Proxy-Authorization", "Basic x"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "0"),
        ("Connection", "close"),
        ("x-smuggle", "a\r\nhost: evil"),
    ] {
        let request = Request {
            headers: vec![(name.into(), value.into())],
            ..get("https://api.test/hello")
        };
        assert!(
            matches!(inv.send(request).await, Err(HttpError::InvalidArgument(_))),
            "{name}"
        );
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn requests_per_invocation_and_per_minute_are_capped() {
    let server = Server::start().await;
    let outbound = Arc::new(server.outbound(TIMEOUT));
    let rates = Arc::new(Rates::default());
    let mut inv = Invocation::new(&outbound, &rates, &["api.test"]);
    for _ in 0..8 {
        inv.get("https://api.test/hello").await.unwrap();
    }
    match inv.get("https://api.test/hello").await {
        Err(HttpError::QuotaExceeded(why)) => assert!(why.contains("8 per invocation"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Later invocations of the same feature in the guild share 60 a minute.
    let mut made = 8;
    let refused = loop {
        let mut next = Invocation::new(&outbound, &rates, &["api.test"]);
        let mut refused = None;
        for _ in 0..8 {
            match next.get("https://api.test/hello").await {
                Ok(_) => made += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = refused {
            break e;
        }
    };
    assert_eq!(made, 60);
    assert!(matches!(refused, HttpError::QuotaExceeded(why) if why.contains("per minute")));
    assert_eq!(server.seen().len(), 60);
}

#[tokio::test]
async fn a_read_only_guild_is_refused() {
    let (server, mut inv) = setup(&["api.test"], TIMEOUT).await;
    inv.calls.set_read_only();
    match inv.get("https://api.test/hello").await {
        Err(HttpError::Unavailable(why)) => assert!(why.contains("read-only"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(server.seen().is_empty());
}

// Through the runtime: the `fetcher` guest.

async fn fetcher(server: &Server, limits: Limits, hosts: &[&str]) -> (Harness, common::Guard) {
    let (_, store, guard) = common::sqlite().await;
    let outbound = server.outbound(TIMEOUT);
    let mut h = Harness::new(store, limits).await;
    let runtime = Arc::into_inner(h.runtime).expect("the only handle");
    h.runtime = Arc::new(runtime.with_http(outbound));
    let (version, _) = h
        .runtime
        .install(&common::component("fetcher"))
        .await
        .unwrap();
    // Importing `http` is the request, recorded at install for the dashboard.
    let imports = h
        .runtime
        .requested_imports(&version.feature_id, &version.version)
        .await
        .unwrap();
    assert_eq!(imports, ["http"]);
    let approval = Approval {
        http_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Approval::default()
    };
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, &version.feature_id, None, approval)
        .await
        .unwrap();
    (h, guard)
}

fn fetch(url: &str, times: i64) -> Vec<CommandArgument> {
    vec![
        CommandArgument {
            name: "url".into(),
            value: OptionValue::Text(url.into()),
        },
        CommandArgument {
            name: "times".into(),
            value: OptionValue::Integer(times),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_fetches_and_the_wait_does_not_count_against_its_wall_clock() {
    let server = Server::start().await;
    let limits = Limits {
        wall_ms: 1_000,
        ..limits()
    };
    let (h, _guard) = fetcher(&server, limits, &["api.test"]).await;
    // The answer takes 1.5 s, longer than the whole wall budget.
    let outcome = h
        .command(
            GUILD_A,
            "fetcher",
            "fetch",
            fetch("https://api.test/wait/1500", 1),
        )
        .await;
    assert_eq!(reply_text(&outcome), "200 late");
    assert!(outcome.elapsed >= Duration::from_millis(1_500));
    assert_eq!(
        outcome.effects,
        [Effect::HttpRequested {
            method: "GET",
            host: "api.test".into(),
            status: 200,
            bytes: 4,
        }]
    );
    // A host the admin did not approve is denied.
    let outcome = h
        .command(
            GUILD_A,
            "fetcher",
            "fetch",
            fetch("https://other.test/hello", 1),
        )
        .await;
    assert!(reply_text(&outcome).starts_with("#0: denied: other.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_is_held_to_its_requests_per_invocation_and_its_grant() {
    let server = Server::start().await;
    let (h, _guard) = fetcher(&server, limits(), &["api.test"]).await;
    let outcome = h
        .command(
            GUILD_A,
            "fetcher",
            "fetch",
            fetch("https://api.test/hello", 9),
        )
        .await;
    assert!(
        reply_text(&outcome).starts_with("#8: quota-exceeded"),
        "{outcome:?}"
    );
    assert_eq!(server.seen().len(), 8);
    let outcome = h
        .command(
            GUILD_A,
            "fetcher",
            "fetch",
            fetch("https://loop.test/hello", 1),
        )
        .await;
    assert!(reply_text(&outcome).starts_with("#0: denied"));
    // Not enabled in guild B at all.
    let outcome = h
        .command(
            GUILD_B,
            "fetcher",
            "fetch",
            fetch("https://api.test/hello", 1),
        )
        .await;
    assert!(outcome.result.is_err(), "{outcome:?}");
}
