//! The one HTTP client every invocation's `http` calls share, and what keeps
//! them from hurting the host or each other: the checked resolver that pins
//! connections to public addresses, the platform-wide and per-guild caps on
//! requests in flight, the time cap and the size cap on answers.

use super::address::is_public;
use super::{CONNECT_TIMEOUT, RESOLVE_TIMEOUT, TIMEOUT, USER_AGENT};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight at once on the whole host: with answers capped at
/// [`super::MAX_RESPONSE_BYTES`], what buffers for them is bounded too.
pub const MAX_IN_FLIGHT: usize = 64;
/// Requests in flight at once for one guild.
pub const MAX_IN_FLIGHT_PER_GUILD: u32 = 4;
/// How long a request waits for one of the host's [`MAX_IN_FLIGHT`] slots.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);
/// Idle connections kept per host name; idle ones close after a while.
const IDLE_PER_HOST: usize = 4;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Addresses of one name tried at most.
const MAX_ADDRESSES: usize = 8;

/// Outbound requests for `http`: built once per runtime, the client itself
/// only on first use (a runtime whose features never call `http` never pays
/// for loading the root certificates).
pub struct Outbound {
    client: OnceLock<Result<reqwest::Client, String>>,
    timeout: Duration,
    /// Set only by [`Outbound::for_tests`].
    network: Option<Arc<Network>>,
    slots: Arc<Semaphore>,
    per_guild: Arc<Mutex<HashMap<u64, u32>>>,
}

/// What a test network changes (see [`Outbound::for_tests`]).
struct Network {
    /// The test server's names and its socket address: the one non-public
    /// address that may be reached, and only through these names.
    server: Option<(Vec<String>, SocketAddr)>,
    /// Every other name resolves from this table only (never from DNS), and
    /// is checked as in production.
    hosts: HashMap<String, Vec<SocketAddr>>,
    /// PEM of the only certificate authority a test client trusts.
    root_pem: String,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound::new()
    }
}

impl Outbound {
    /// The production client: system DNS, the public web's root
    /// certificates, every check.
    pub fn new() -> Outbound {
        Outbound::with(TIMEOUT, None)
    }

    fn with(timeout: Duration, network: Option<Network>) -> Outbound {
        Outbound {
            client: OnceLock::new(),
            timeout,
            network: network.map(Arc::new),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            per_guild: Arc::default(),
        }
    }

    /// The whole time one `send` may take, redirects and reading included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| self.build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(&self) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            // Redirects are followed by `http` itself, each target checked.
            .redirect(reqwest::redirect::Policy::none())
            // No proxy from the environment, no cookie jar, no Referer.
            .no_proxy()
            .referer(false)
            .user_agent(USER_AGENT)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .dns_resolver(Arc::new(CheckedResolver {
                network: self.network.clone(),
            }));
        if let Some(network) = &self.network {
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(network.root_pem.as_bytes())?);
        }
        builder.build()
    }

    /// A slot for one request of `guild_id`: `None` when the guild has
    /// [`MAX_IN_FLIGHT_PER_GUILD`] in flight; `Some(Err)` when the host's
    /// slots stayed full for [`SLOT_WAIT`].
    pub(super) async fn admit(&self, guild_id: u64) -> Result<Admitted, Busy> {
        let guild = GuildSlot::take(&self.per_guild, guild_id).ok_or(Busy::Guild)?;
        let host = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Host)?
            .map_err(|_| Busy::Host)?;
        Ok(Admitted {
            _host: host,
            _guild: guild,
        })
    }

    /// The shared client, built on first use.
    pub(super) fn shared_client(&self) -> Result<reqwest::Client, String> {
        self.client().cloned()
    }
}

/// Why a request was not admitted.
#[derive(Debug)]
pub(super) enum Busy {
    Guild,
    Host,
}

/// One admitted request's slots, released on drop.
pub(super) struct Admitted {
    _host: OwnedSemaphorePermit,
    _guild: GuildSlot,
}

struct GuildSlot {
    map: Arc<Mutex<HashMap<u64, u32>>>,
    guild_id: u64,
}

impl GuildSlot {
    fn take(map: &Arc<Mutex<HashMap<u64, u32>>>, guild_id: u64) -> Option<GuildSlot> {
        let mut in_flight = map.lock().unwrap_or_else(PoisonError::into_inner);
        let count = in_flight.entry(guild_id).or_insert(0);
        if *count >= MAX_IN_FLIGHT_PER_GUILD {
            return None;
        }
        *count += 1;
        Some(GuildSlot {
            map: map.clone(),
            guild_id,
        })
    }
}

impl Drop for GuildSlot {
    fn drop(&mut self) {
        let mut in_flight = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&self.guild_id) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.guild_id);
            }
        }
    }
}

/// A name resolved to an address that is not public: the connection is never
/// attempted.
#[derive(Debug)]
pub(super) struct Blocked(pub String);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// A name that did not resolve.
#[derive(Debug)]
pub(super) struct NotResolved(pub String);

impl fmt::Display for NotResolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotResolved {}

/// The client's only resolver: it resolves the name, refuses it when any
/// address is not public, and hands the client exactly the addresses it
/// checked. The check and the connection use the same answer, so a name that
/// answers with a public address to a check and a private one to the connect
/// (DNS rebinding) has no window; every new connection, a redirect's
/// included, comes through here.
struct CheckedResolver {
    network: Option<Arc<Network>>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let network = self.network.clone();
        Box::pin(async move {
            let addresses = match &network {
                Some(network) => {
                    if let Some((names, server)) = &network.server
                        && names.contains(&host)
                    {
                        return Ok(Box::new(std::iter::once(*server)) as Addrs);
                    }
                    network.hosts.get(&host).cloned().ok_or_else(|| {
                        NotResolved(format!("`{host}` is not in the test network's table"))
                    })?
                }
                None => {
                    let lookup = tokio::net::lookup_host((host.as_str(), 443));
                    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                        Ok(Ok(found)) => found.take(MAX_ADDRESSES * 4).collect(),
                        Ok(Err(e)) => {
                            return Err(
                                NotResolved(format!("`{host}` did not resolve: {e}")).into()
                            );
                        }
                        Err(_) => {
                            return Err(NotResolved(format!(
                                "`{host}` did not resolve within {RESOLVE_TIMEOUT:?}"
                            ))
                            .into());
                        }
                    }
                }
            };
            let addresses = checked(&host, addresses)?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// `addresses` when every one is public, else why not.
/// One private address among public ones refuses the name: which one a
/// connection would use is not the feature's to pick.
fn checked(
    host: &str,
    addresses: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    if addresses.is_empty() {
        return Err(NotResolved(format!("`{host}` has no address")).into());
    }
    if let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Blocked(format!(
            "`{host}` resolves to {}, which is not a public address",
            bad.ip()
        ))
        .into());
    }
    Ok(addresses.into_iter().take(MAX_ADDRESSES).collect())
}

/// What [`Outbound::for_tests`] sets up: a network of names the test chose.
#[cfg(any(test, feature = "test-network"))]
pub struct TestNetwork {
    /// PEM of the only certificate authority the client trusts.
    pub root_pem: String,
    /// The test server: its names, and its socket address (loopback, on an
    /// ephemeral port), the one non-public address that may be reached, and
    /// only through those names. `None`: no exception at all.
    pub server: Option<(Vec<String>, SocketAddr)>,
    /// Every other name the client can resolve, and its addresses, checked
    /// as in production. Other names fail to resolve; nothing asks DNS.
    pub hosts: HashMap<String, Vec<SocketAddr>>,
    /// The whole-request time cap, shorter than production's so the tests
    /// of slow answers are quick.
    pub timeout: Duration,
}

#[cfg(any(test, feature = "test-network"))]
impl Outbound {
    /// A client for tests only. It exists only when this crate is compiled
    /// for its own tests (cargo feature `test-network`, which only the
    /// crate's dev-dependency on itself enables), and no setting of the
    /// binary reaches it.
    pub fn for_tests(network: TestNetwork) -> Outbound {
        Outbound::with(
            network.timeout,
            Some(Network {
                server: network.server,
                hosts: network.hosts,
                root_pem: network.root_pem,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_private_address_refuses_the_name() {
        let public = addr("93.184.216.34:443");
        assert!(checked("a.example", vec![public]).is_ok());
        for private in ["10.0.0.1:443", "[::1]:443", "[::ffff:127.0.0.1]:443"] {
            let error = checked("a.example", vec![public, addr(private)]).unwrap_err();
            assert!(error.downcast_ref::<Blocked>().is_some(), "{private}");
        }
        assert!(
            checked("a.example", vec![])
                .unwrap_err()
                .downcast_ref::<NotResolved>()
                .is_some()
        );
    }

    #[tokio::test]
    async fn the_test_server_is_reachable_through_its_names_only() {
        let server = addr("127.0.0.1:40001");
        let resolver = CheckedResolver {
            network: Some(Arc::new(Network {
                server: Some((vec!["api.test".into()], server)),
                hosts: HashMap::from([
                    ("same.test".to_string(), vec![server]),
                    ("public.test".to_string(), vec![addr("8.8.8.8:443")]),
                ]),
                root_pem: String::new(),
            })),
        };
        let resolve = |name: &str| resolver.resolve(name.parse().unwrap());
        let found: Vec<_> = resolve("api.test").await.unwrap().collect();
        assert_eq!(found, [server]);
        let error = resolve("same.test").await.err().unwrap();
        assert!(error.downcast_ref::<Blocked>().is_some());
        assert!(resolve("public.test").await.is_ok());
        let error = resolve("unknown.test").await.err().unwrap();
        assert!(error.downcast_ref::<NotResolved>().is_some());
    }

    #[tokio::test]
    async fn a_guild_has_at_most_its_share_in_flight() {
        let outbound = Outbound::new();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT_PER_GUILD {
            held.push(outbound.admit(1).await.unwrap());
        }
        assert!(matches!(outbound.admit(1).await, Err(Busy::Guild)));
        assert!(outbound.admit(2).await.is_ok(), "another guild was held up");
        held.pop();
        assert!(outbound.admit(1).await.is_ok());
        drop(held);
        assert!(outbound.per_guild.lock().unwrap().len() <= 1);
    }
}
