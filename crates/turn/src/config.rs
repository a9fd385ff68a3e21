//! Settings of a [`TurnServer`](crate::TurnServer) and the client transport type.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::cidr::Cidr;

/// The transport a client message arrived on. TCP and TLS messages are de-framed by the I/O
/// layer (see [`frame_len`](crate::frame_len)); relayed traffic to peers is always UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Whether the transport is a byte stream (ChannelData is padded to 4 bytes on it).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

/// Settings of a [`TurnServer`](crate::TurnServer).
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// REALM of the long-term credential mechanism.
    pub realm: String,
    /// Address told to clients in XOR-RELAYED-ADDRESS (the public address of relay sockets).
    pub relay_ip: IpAddr,
    /// Ports for relayed transport addresses.
    pub relay_ports: RangeInclusive<u16>,
    /// All local STUN/TURN listener addresses; peers may not be any of them.
    pub listen: Vec<SocketAddr>,
    /// The primary STUN address (RFC 5780: the address the others are derived from).
    pub primary: SocketAddr,
    /// RFC 5780 alternate address (other IP and other port). With it, Binding responses carry
    /// OTHER-ADDRESS and RESPONSE-ORIGIN and CHANGE-REQUEST is honoured.
    pub alternate: Option<SocketAddr>,
    /// Shared secret of the TURN REST API scheme (coturn's `use-auth-secret`).
    pub secret: Option<String>,
    /// Static long-term users: (name, password).
    pub users: Vec<(String, String)>,
    /// Peers allowed even if in a range refused by default (e.g. `127.0.0.0/8` in tests).
    pub allow_peers: Vec<Cidr>,
    /// Peers refused even if allowed by default. Wins over `allow_peers`.
    pub deny_peers: Vec<Cidr>,
    /// Exact peer addresses always allowed: the SFU's own media sockets.
    pub own_media: Vec<SocketAddr>,
    /// Allocations one user may hold at once (486 beyond).
    pub max_allocations_per_user: usize,
    /// Allocations one client IP address may hold at once, whatever its users (486 beyond).
    pub max_allocations_per_address: usize,
    /// Allocations the whole server holds at most (508 beyond).
    pub max_allocations: usize,
    /// Relayed bytes per second per allocation, both directions together; `None` for no cap.
    pub max_bandwidth_per_allocation: Option<u64>,
    /// Allocation lifetime when the client asks for less or nothing.
    pub default_lifetime: Duration,
    /// Longest allocation lifetime granted.
    pub max_lifetime: Duration,
    /// How long a nonce stays valid before 438 (Stale Nonce).
    pub nonce_lifetime: Duration,
    /// Failed authentications from one IP within `auth_failure_window` that block it.
    pub max_auth_failures: u32,
    /// Window in which failed authentications are counted.
    pub auth_failure_window: Duration,
    /// How long a blocked IP's TURN requests are dropped silently.
    pub auth_block: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        let primary = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3478);
        Self {
            realm: "stoa".to_owned(),
            relay_ip: primary.ip(),
            relay_ports: 49152..=65535,
            listen: vec![primary],
            primary,
            alternate: None,
            secret: None,
            users: Vec::new(),
            allow_peers: Vec::new(),
            deny_peers: Vec::new(),
            own_media: Vec::new(),
            max_allocations_per_user: 10,
            max_allocations_per_address: 64,
            max_allocations: 4096,
            max_bandwidth_per_allocation: None,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            nonce_lifetime: Duration::from_secs(600),
            max_auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
            auth_block: Duration::from_secs(60),
        }
    }
}

impl TurnConfig {
    /// The four RFC 5780 sockets when an alternate address is configured, in the order
    /// primary IP:primary port, primary IP:alternate port, alternate IP:primary port,
    /// alternate IP:alternate port. The I/O layer binds a UDP socket on each.
    pub fn discovery_sockets(&self) -> Option<[SocketAddr; 4]> {
        let (p, a) = (self.primary, self.alternate?);
        Some([
            p,
            SocketAddr::new(p.ip(), a.port()),
            SocketAddr::new(a.ip(), p.port()),
            a,
        ])
    }
}
