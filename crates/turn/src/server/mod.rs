//! [`TurnServer`]: the state machine that owns allocations, relay ports, events, timers and
//! counters, and sorts client input into Binding (`binding`), authenticated TURN requests
//! (`requests`) and relayed data (`relay`).

mod binding;
mod relay;
mod requests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::allocation::{Allocation, FiveTuple};
use crate::auth::{Credentials, Key, Nonces};
use crate::channel;
use crate::config::{Transport, TurnConfig};
use crate::limit::AuthLimiter;
use crate::policy::PeerPolicy;
use crate::quota::Quotas;
use crate::stun::{method, Class, Message, Writer};

/// What to do with a client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction<'a> {
    /// Nothing to send (the message was an indication, or was dropped and counted).
    None,
    /// Send `out[..len]` to the client over the same transport. For UDP, send it from the local
    /// socket `from` (RFC 5780 CHANGE-REQUEST may pick another of the four discovery sockets);
    /// for TCP/TLS, `from` is the listener and the reply goes on the client's connection.
    Reply { from: SocketAddr, len: usize },
    /// Send `payload` (borrowed from the input) from the relay socket on `relay_port` to
    /// `peer`.
    ToPeer {
        relay_port: u16,
        peer: SocketAddr,
        payload: &'a [u8],
    },
}

/// A message for a client: send `out[..len]` over `transport` from the listener `local` to
/// `client` (on TCP/TLS, on the connection between those two addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToClient {
    pub transport: Transport,
    pub local: SocketAddr,
    pub client: SocketAddr,
    pub len: usize,
}

/// Work for the I/O layer, drained with [`TurnServer::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Bind a UDP relay socket on this port now, before sending the reply that caused it; on
    /// failure call [`TurnServer::relay_bind_failed`].
    BindRelay { port: u16 },
    /// The allocation on this port is gone (deleted, expired, connection closed): close it.
    ReleaseRelay { port: u16 },
}

/// Gauges and counters. Gauges count entries held, including permissions and channels that
/// have lapsed but not been swept by [`TurnServer::handle_timeout`] yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnStats {
    pub allocations: usize,
    pub permissions: usize,
    /// Channels bound, including those in their 5-minute cooldown.
    pub channels: usize,
    /// Binding requests answered.
    pub binding_requests: u64,
    pub packets_to_peers: u64,
    pub bytes_to_peers: u64,
    pub packets_to_clients: u64,
    pub bytes_to_clients: u64,
    /// Requests with an unknown user, a wrong password or an expired REST username.
    pub auth_failures: u64,
    /// Times a source IP got blocked for failing authentication too often.
    pub auth_blocks: u64,
    /// TURN requests dropped silently because their source IP is blocked.
    pub dropped_auth_blocked: u64,
    /// Input that is neither valid STUN nor ChannelData, or unexpected (responses, unknown
    /// indications).
    pub dropped_malformed: u64,
    /// Relayed data without an allocation, channel or permission.
    pub dropped_unauthorized: u64,
    /// Relayed data over an allocation's bandwidth cap.
    pub dropped_bandwidth: u64,
    /// Output that did not fit the caller's buffer.
    pub dropped_too_large: u64,
    /// Requests refused with 403 because a peer is not allowed.
    pub forbidden_peers: u64,
    /// Allocate requests refused with 486 (a user's or a client address's quota).
    pub quota_refusals: u64,
    /// Relay sockets the I/O layer could not bind.
    pub relay_bind_failures: u64,
}

/// How often the core tries another port when the I/O layer cannot bind a relay socket.
const MAX_BIND_ATTEMPTS: u8 = 3;

/// The I/O-free STUN/TURN server. See the crate documentation for the driver loop.
#[derive(Debug)]
pub struct TurnServer {
    config: TurnConfig,
    policy: PeerPolicy,
    credentials: Credentials,
    nonces: Nonces,
    limiter: AuthLimiter,
    rng: StdRng,
    allocations: BTreeMap<FiveTuple, Allocation>,
    by_port: BTreeMap<u16, FiveTuple>,
    /// Ports reserved by EVEN-PORT's R bit: token → (port, expiry).
    reservations: BTreeMap<[u8; 8], (u16, Instant)>,
    quotas: Quotas,
    events: VecDeque<Event>,
    next_timeout: Option<Instant>,
    stats: TurnStats,
}

impl TurnServer {
    /// A server with no allocations. `seed` drives all randomness (relay ports, nonce key,
    /// indication transaction IDs); give it real entropy in production.
    pub fn new(config: TurnConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let nonce_key: [u8; 32] = rng.random();
        Self {
            policy: PeerPolicy::new(&config),
            credentials: Credentials::new(&config.realm, &config.users, config.secret.as_deref()),
            nonces: Nonces::new(nonce_key, config.nonce_lifetime),
            limiter: AuthLimiter::new(
                config.max_auth_failures,
                config.auth_failure_window,
                config.auth_block,
            ),
            rng,
            allocations: BTreeMap::new(),
            by_port: BTreeMap::new(),
            reservations: BTreeMap::new(),
            quotas: Quotas::default(),
            events: VecDeque::new(),
            next_timeout: None,
            stats: TurnStats::default(),
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// A datagram (or one de-framed TCP/TLS message) from `client` on the listener `local`.
    /// `unix_secs` is the wall-clock time, for REST API username expiry. Replies are written
    /// to `out` (give it at least 1500 bytes; a relayed payload is borrowed from `data`).
    #[allow(clippy::too_many_arguments)]
    pub fn handle_client<'a>(
        &mut self,
        now: Instant,
        unix_secs: u64,
        transport: Transport,
        local: SocketAddr,
        client: SocketAddr,
        data: &'a [u8],
        out: &mut [u8],
    ) -> ClientAction<'a> {
        let tuple = FiveTuple {
            transport,
            client,
            local,
        };
        match data.first() {
            Some(&b) if channel::is_channel_data(b) => self.channel_data(now, tuple, data),
            _ => match Message::parse(data) {
                Ok(msg) => self.stun(now, unix_secs, tuple, msg, out),
                Err(_) => self.malformed(),
            },
        }
    }

    fn stun<'a>(
        &mut self,
        now: Instant,
        unix_secs: u64,
        tuple: FiveTuple,
        msg: Message<'a>,
        out: &mut [u8],
    ) -> ClientAction<'a> {
        match (msg.class(), msg.method()) {
            (Class::Request, method::BINDING) => self.binding(tuple, &msg, out),
            (Class::Request, _) => self.turn_request(now, unix_secs, tuple, &msg, out),
            (Class::Indication, method::SEND) => self.send_indication(now, tuple, &msg),
            (Class::Indication, method::BINDING) => ClientAction::None,
            _ => self.malformed(),
        }
    }

    /// The relay socket for `port` could not be bound. Call it while draining events, before
    /// sending the reply that asked for the bind. The core either moves the allocation to
    /// another port (queuing a new [`Event::BindRelay`]) and writes a new success response, or
    /// frees it and writes a 508 error; send the returned message instead of the first reply.
    pub fn relay_bind_failed(&mut self, port: u16, out: &mut [u8]) -> Option<ToClient> {
        let tuple = *self.by_port.get(&port)?;
        let mut alloc = self.allocations.remove(&tuple)?;
        self.stats.relay_bind_failures += 1;
        alloc.bind_failures += 1;
        // Picked while the failed port is still taken, so it is not picked again.
        let new_port = (alloc.bind_failures < MAX_BIND_ATTEMPTS)
            .then(|| self.pick_port(false, false))
            .flatten();
        self.by_port.remove(&port);
        let len = match new_port {
            Some(port) => {
                alloc.relay_port = port;
                self.by_port.insert(port, tuple);
                self.events.push_back(Event::BindRelay { port });
                let len = self.allocate_success(tuple, &alloc, &alloc.txid, out);
                self.allocations.insert(tuple, alloc);
                len
            }
            None => {
                self.quotas.release(&alloc.username, tuple.client.ip());
                let mut w = Writer::new(out, method::ALLOCATE, Class::Error, &alloc.txid);
                w.error_code(508);
                sign(w, Some(&alloc.key))
            }
        };
        let Some(len) = len else {
            self.stats.dropped_too_large += 1;
            return None;
        };
        Some(ToClient {
            transport: tuple.transport,
            local: tuple.local,
            client: tuple.client,
            len,
        })
    }

    /// The client's TCP/TLS connection closed: its allocation, if any, is deleted (RFC 8656
    /// §7) and an [`Event::ReleaseRelay`] queued.
    pub fn client_closed(&mut self, transport: Transport, local: SocketAddr, client: SocketAddr) {
        self.delete_allocation(FiveTuple {
            transport,
            client,
            local,
        });
    }

    /// Expires allocations, permissions, channels and rate-limit entries due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_timeout.is_none_or(|t| now < t) {
            return;
        }
        let (events, by_port, quotas) = (&mut self.events, &mut self.by_port, &mut self.quotas);
        self.allocations.retain(|tuple, a| {
            if now < a.expires {
                a.expire(now);
                return true;
            }
            by_port.remove(&a.relay_port);
            quotas.release(&a.username, tuple.client.ip());
            events.push_back(Event::ReleaseRelay { port: a.relay_port });
            false
        });
        self.limiter.expire(now);
        self.reservations.retain(|_, (_, expires)| now < *expires);
        let allocations = self.allocations.values().map(Allocation::next_deadline);
        let reservations = self.reservations.values().map(|(_, expires)| *expires);
        self.next_timeout = allocations
            .chain(reservations)
            .chain(self.limiter.next_deadline())
            .min();
    }

    /// When [`TurnServer::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// The next event for the I/O layer; drain after every input, before sending replies.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Gauges and counters.
    pub fn stats(&self) -> TurnStats {
        let allocs = self.allocations.values();
        TurnStats {
            allocations: self.allocations.len(),
            permissions: allocs.clone().map(Allocation::permission_count).sum(),
            channels: allocs.map(Allocation::channel_count).sum(),
            ..self.stats.clone()
        }
    }

    /// Makes sure [`TurnServer::handle_timeout`] runs by `at`.
    fn schedule(&mut self, at: Instant) {
        self.next_timeout = Some(self.next_timeout.map_or(at, |t| t.min(at)));
    }

    /// A free relay port, starting the search at a random one.
    /// A free relay port; even when the client sent EVEN-PORT, and with the next port free as
    /// well when it asked to reserve it (RFC 8656 §7.2).
    fn pick_port(&mut self, even: bool, pair: bool) -> Option<u16> {
        let (lo, hi) = (
            *self.config.relay_ports.start(),
            *self.config.relay_ports.end(),
        );
        if lo > hi {
            return None;
        }
        let size = u32::from(hi - lo) + 1;
        let start = self.rng.random_range(0..size);
        (0..size)
            .map(|i| lo + ((start + i) % size) as u16)
            .find(|p| {
                let free = |p: u16| {
                    p != 0
                        && !self.by_port.contains_key(&p)
                        && !self.reservations.values().any(|r| r.0 == p)
                };
                free(*p) && (!even || p % 2 == 0) && (!pair || (*p < hi && free(p + 1)))
            })
    }

    fn delete_allocation(&mut self, tuple: FiveTuple) {
        if let Some(alloc) = self.allocations.remove(&tuple) {
            self.by_port.remove(&alloc.relay_port);
            self.quotas.release(&alloc.username, tuple.client.ip());
            self.events.push_back(Event::ReleaseRelay {
                port: alloc.relay_port,
            });
        }
    }

    fn malformed<'a>(&mut self) -> ClientAction<'a> {
        self.stats.dropped_malformed += 1;
        ClientAction::None
    }

    /// A reply from `from` if it was written, else a drop counted as too large.
    fn reply<'a>(&mut self, from: SocketAddr, len: Option<usize>) -> ClientAction<'a> {
        match len {
            Some(len) => ClientAction::Reply { from, len },
            None => {
                self.stats.dropped_too_large += 1;
                ClientAction::None
            }
        }
    }
}

/// Finishes a response: MESSAGE-INTEGRITY if there is a key, then FINGERPRINT.
fn sign(mut w: Writer<'_>, key: Option<&Key>) -> Option<usize> {
    if let Some(key) = key {
        w.integrity(key);
    }
    w.fingerprint();
    w.finish()
}
