//! STUN Binding (RFC 8489) and NAT behaviour discovery (RFC 5780): with an alternate address
//! configured, the server has four UDP sockets (two IPs × two ports); responses carry
//! OTHER-ADDRESS and RESPONSE-ORIGIN, and CHANGE-REQUEST picks the socket a response leaves
//! from. Binding needs no authentication.

use std::net::SocketAddr;

use super::requests::unknown_list;
use super::{sign, ClientAction, TurnServer};
use crate::allocation::FiveTuple;
use crate::config::Transport;
use crate::request::Attrs;
use crate::stun::{attr, Class, Message, Writer};

/// Which of the four discovery sockets an address is: alternate IP or not, alternate port or
/// not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Role {
    alt_ip: bool,
    alt_port: bool,
}

impl TurnServer {
    pub(super) fn binding<'a>(
        &mut self,
        tuple: FiveTuple,
        msg: &Message<'_>,
        out: &mut [u8],
    ) -> ClientAction<'a> {
        let role = self.role(tuple.local);
        let attrs = Attrs::collect(msg, self.config.alternate.is_some());
        let (change_ip, change_port) = attrs.change.unwrap_or((false, false));
        let change = change_ip || change_port;
        let txid = msg.transaction_id();
        let refused = !attrs.unknown().is_empty()
            || attrs.malformed
            || (change && (tuple.transport != Transport::Udp || role.is_none()));
        if refused {
            let mut w = Writer::new(out, msg.method(), Class::Error, txid);
            if attrs.unknown().is_empty() {
                w.error_code(400);
            } else {
                let (list, len) = unknown_list(attrs.unknown());
                w.error_code(420)
                    .attribute(attr::UNKNOWN_ATTRIBUTES, &list[..len]);
            }
            return self.reply(tuple.local, sign(w, None));
        }
        let from = role.map_or(tuple.local, |r| {
            self.discovery_socket(Role {
                alt_ip: r.alt_ip ^ change_ip,
                alt_port: r.alt_port ^ change_port,
            })
        });
        let mut w = Writer::new(out, msg.method(), Class::Success, txid);
        w.xor_address(attr::XOR_MAPPED_ADDRESS, tuple.client);
        if let Some(r) = role {
            let other = self.discovery_socket(Role {
                alt_ip: !r.alt_ip,
                alt_port: !r.alt_port,
            });
            w.address(attr::OTHER_ADDRESS, other);
            w.address(attr::RESPONSE_ORIGIN, from);
        }
        self.stats.binding_requests += 1;
        self.reply(from, sign(w, None))
    }

    /// The discovery role of a local address, if an alternate is configured and the address
    /// is one of the four sockets.
    fn role(&self, local: SocketAddr) -> Option<Role> {
        let (p, a) = (self.config.primary, self.config.alternate?);
        let ip = local.ip().to_canonical();
        let alt_ip = match () {
            _ if ip == p.ip().to_canonical() => false,
            _ if ip == a.ip().to_canonical() => true,
            _ => return None,
        };
        let alt_port = match local.port() {
            port if port == p.port() => false,
            port if port == a.port() => true,
            _ => return None,
        };
        Some(Role { alt_ip, alt_port })
    }

    fn discovery_socket(&self, role: Role) -> SocketAddr {
        let p = self.config.primary;
        let a = self.config.alternate.unwrap_or(p);
        let ip = if role.alt_ip { a.ip() } else { p.ip() };
        let port = if role.alt_port { a.port() } else { p.port() };
        SocketAddr::new(ip, port)
    }
}
