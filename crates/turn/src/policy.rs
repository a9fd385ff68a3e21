//! Which peers a client may relay to. By default the relay refuses addresses that reach
//! inside the server's network (loopback, private, CGNAT, link-local, ULA, multicast,
//! reserved) and the server itself; the configuration can allow exact media sockets, allow
//! ranges, and deny ranges.
//!
//! Decision order: the SFU's own media sockets are allowed; the TURN server's own listeners,
//! relay ports and port 0 are refused; then deny ranges refuse, allow ranges allow; then the
//! default ranges and the server's own IPs are refused; everything else is allowed.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use crate::cidr::Cidr;
use crate::config::TurnConfig;

/// Ranges refused by default: not reachable publicly, or reaching the server's own networks.
const DEFAULT_DENY: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// The relay's peer filter.
#[derive(Debug, Clone)]
pub(crate) struct PeerPolicy {
    own_media: Vec<SocketAddr>,
    own_sockets: Vec<SocketAddr>,
    own_ips: Vec<IpAddr>,
    relay: (IpAddr, RangeInclusive<u16>),
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    default_deny: Vec<Cidr>,
}

impl PeerPolicy {
    pub fn new(config: &TurnConfig) -> Self {
        let mut own_sockets: Vec<SocketAddr> = config.listen.clone();
        own_sockets.push(config.primary);
        own_sockets.extend(config.discovery_sockets().into_iter().flatten());
        let mut own_ips: Vec<IpAddr> = own_sockets.iter().map(|s| s.ip().to_canonical()).collect();
        own_ips.push(config.relay_ip.to_canonical());
        Self {
            own_media: config.own_media.iter().map(|&s| canonical(s)).collect(),
            own_sockets: own_sockets.into_iter().map(canonical).collect(),
            own_ips,
            relay: (config.relay_ip.to_canonical(), config.relay_ports.clone()),
            allow: config.allow_peers.clone(),
            deny: config.deny_peers.clone(),
            default_deny: DEFAULT_DENY.iter().filter_map(|s| s.parse().ok()).collect(),
        }
    }

    /// Whether a client may relay to `peer`.
    pub fn allows(&self, peer: SocketAddr) -> bool {
        let peer = canonical(peer);
        if self.own_media.contains(&peer) {
            return true;
        }
        if self.is_self(peer) {
            return false;
        }
        let ip = peer.ip();
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        if self.allow.iter().any(|c| c.contains(ip)) {
            return true;
        }
        !self.default_denied(ip)
    }

    /// The server's own listeners and relay ports (relaying to them would loop), and port 0.
    fn is_self(&self, peer: SocketAddr) -> bool {
        let (relay_ip, relay_ports) = &self.relay;
        peer.port() == 0
            || self.own_sockets.contains(&peer)
            || (peer.ip() == *relay_ip && relay_ports.contains(&peer.port()))
    }

    fn default_denied(&self, ip: IpAddr) -> bool {
        let embedded = embedded_ipv4(ip);
        let denied = |ip: IpAddr| {
            ip.is_unspecified()
                || ip.is_multicast()
                || self.own_ips.contains(&ip)
                || self.default_deny.iter().any(|c| c.contains(ip))
        };
        denied(ip) || embedded.is_some_and(denied)
    }
}

/// The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_ipv4(ip: IpAddr) -> Option<IpAddr> {
    let IpAddr::V6(v6) = ip else { return None };
    let o = v6.octets();
    match v6.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(IpAddr::from([o[12], o[13], o[14], o[15]])),
        [0x2002, ..] => Some(IpAddr::from([o[2], o[3], o[4], o[5]])),
        _ => None,
    }
}

/// The address with an IPv4-mapped IPv6 IP turned into IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn policy(edit: impl FnOnce(&mut TurnConfig)) -> PeerPolicy {
        let mut config = TurnConfig {
            relay_ip: "198.51.100.1".parse().unwrap(),
            primary: addr("203.0.113.5:3478"),
            listen: vec![addr("203.0.113.5:3478"), addr("203.0.113.5:443")],
            ..TurnConfig::default()
        };
        edit(&mut config);
        PeerPolicy::new(&config)
    }

    #[test]
    fn default_refuses_internal_ranges() {
        let p = policy(|_| {});
        for peer in [
            "127.0.0.1:5000",
            "10.1.2.3:5000",
            "172.20.0.1:5000",
            "192.168.1.1:5000",
            "100.64.0.1:5000",
            "169.254.1.1:5000",
            "224.0.0.1:5000",
            "255.255.255.255:5000",
            "0.0.0.0:5000",
            "[::1]:5000",
            "[::]:5000",
            "[fd00::1]:5000",
            "[fe80::1]:5000",
            "[ff02::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "[64:ff9b::a00:1]:5000",
            "[2002:c0a8:101::1]:5000",
            "8.8.8.8:0",
        ] {
            assert!(!p.allows(addr(peer)), "{peer}");
        }
        assert!(p.allows(addr("8.8.8.8:5000")));
        assert!(p.allows(addr("[2a00:1450::1]:5000")));
    }

    #[test]
    fn refuses_the_server_itself() {
        let p = policy(|_| {});
        // Listener IP on any port, relay ports on the relay IP.
        assert!(!p.allows(addr("203.0.113.5:9999")));
        assert!(!p.allows(addr("198.51.100.1:50000")));
        // Even when its range is allowed, a listener or relay port stays refused.
        let p = policy(|c| c.allow_peers = vec!["0.0.0.0/0".parse().unwrap()]);
        assert!(p.allows(addr("203.0.113.5:9999")));
        assert!(!p.allows(addr("203.0.113.5:3478")));
        assert!(!p.allows(addr("198.51.100.1:50000")));
        assert!(p.allows(addr("198.51.100.1:1000")));
    }

    #[test]
    fn own_media_is_allowed_exactly() {
        let p = policy(|c| c.own_media = vec![addr("203.0.113.5:8801"), addr("10.0.0.2:8801")]);
        assert!(p.allows(addr("203.0.113.5:8801")));
        assert!(p.allows(addr("10.0.0.2:8801")));
        assert!(!p.allows(addr("10.0.0.2:8802")));
    }

    #[test]
    fn allow_and_deny_ranges() {
        let p = policy(|c| {
            c.allow_peers = vec!["127.0.0.0/8".parse().unwrap()];
            c.deny_peers = vec![
                "127.0.0.9/32".parse().unwrap(),
                "8.8.0.0/16".parse().unwrap(),
            ];
        });
        assert!(p.allows(addr("127.0.0.1:4000")));
        assert!(!p.allows(addr("127.0.0.9:4000")));
        assert!(!p.allows(addr("8.8.8.8:53")));
        assert!(p.allows(addr("9.9.9.9:53")));
    }
}
