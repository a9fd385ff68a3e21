//! The attributes of a client message that the server acts on, gathered in one pass without
//! allocating. RFC 8489 rules: attributes after MESSAGE-INTEGRITY are ignored, only the first
//! of a repeated attribute counts (XOR-PEER-ADDRESS may repeat: see [`peer_addresses`]),
//! unknown comprehension-required attributes are listed for a 420, and malformed values of
//! known attributes are flagged for a 400.

use std::net::SocketAddr;

use crate::stun::{attr, decode_xor_address, Attribute, Message};

/// REQUESTED-TRANSPORT value for UDP, the only relay transport.
pub(crate) const PROTOCOL_UDP: u8 = 17;
/// Address family codes of REQUESTED-ADDRESS-FAMILY and address attributes.
pub(crate) const FAMILY_IPV4: u8 = 0x01;
pub(crate) const FAMILY_IPV6: u8 = 0x02;
/// Most unknown attributes listed in one 420 response.
const MAX_UNKNOWN: usize = 8;
/// Longest USERNAME (RFC 8489 §14.3).
const MAX_USERNAME: usize = 513;
/// Longest REALM and NONCE (RFC 8489 §14.9, §14.10).
const MAX_REALM_OR_NONCE: usize = 763;

/// The family code of an address.
pub(crate) fn family(addr: SocketAddr) -> u8 {
    if addr.is_ipv4() {
        FAMILY_IPV4
    } else {
        FAMILY_IPV6
    }
}

#[derive(Debug, Default)]
pub(crate) struct Attrs<'a> {
    pub username: Option<&'a [u8]>,
    pub realm: Option<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub integrity: bool,
    pub lifetime: Option<u32>,
    pub requested_transport: Option<u8>,
    pub requested_family: Option<u8>,
    pub channel: Option<u16>,
    /// The first XOR-PEER-ADDRESS.
    pub peer: Option<SocketAddr>,
    pub data: Option<&'a [u8]>,
    /// CHANGE-REQUEST flags: (change IP, change port).
    pub change: Option<(bool, bool)>,
    /// EVEN-PORT, with its R bit (reserve the next port too).
    pub even_port: Option<bool>,
    pub reservation_token: Option<[u8; 8]>,
    /// A known attribute had an invalid value.
    pub malformed: bool,
    unknown: [u16; MAX_UNKNOWN],
    unknown_len: usize,
}

impl<'a> Attrs<'a> {
    /// Gathers the attributes of `msg`. CHANGE-REQUEST is understood only if
    /// `knows_change_request` (RFC 5780 is configured).
    pub fn collect(msg: &Message<'a>, knows_change_request: bool) -> Self {
        let mut attrs = Attrs::default();
        for a in covered(msg) {
            attrs.take(a, msg.transaction_id(), knows_change_request);
        }
        attrs.integrity = msg.attributes().any(|a| a.typ == attr::MESSAGE_INTEGRITY);
        attrs
    }

    /// Unknown comprehension-required attribute types.
    pub fn unknown(&self) -> &[u16] {
        &self.unknown[..self.unknown_len]
    }

    fn take(&mut self, a: Attribute<'a>, txid: &[u8; 12], knows_change_request: bool) {
        let v = a.value;
        let ok = match a.typ {
            attr::USERNAME => first(&mut self.username, v, v.len() <= MAX_USERNAME),
            attr::REALM => first(&mut self.realm, v, v.len() <= MAX_REALM_OR_NONCE),
            attr::NONCE => first(&mut self.nonce, v, v.len() <= MAX_REALM_OR_NONCE),
            attr::LIFETIME => first_opt(&mut self.lifetime, word(v)),
            attr::REQUESTED_TRANSPORT => first_opt(&mut self.requested_transport, byte(v)),
            attr::REQUESTED_ADDRESS_FAMILY => first_opt(&mut self.requested_family, byte(v)),
            attr::CHANNEL_NUMBER => first_opt(&mut self.channel, word(v).map(|w| (w >> 16) as u16)),
            attr::XOR_PEER_ADDRESS => first_opt(&mut self.peer, decode_xor_address(v, txid)),
            attr::DATA => first(&mut self.data, v, true),
            attr::CHANGE_REQUEST if knows_change_request => first_opt(
                &mut self.change,
                word(v).map(|w| (w & 0x4 != 0, w & 0x2 != 0)),
            ),
            attr::EVEN_PORT => first_opt(&mut self.even_port, v.first().map(|b| b & 0x80 != 0)),
            attr::RESERVATION_TOKEN => first_opt(&mut self.reservation_token, v.try_into().ok()),
            attr::DONT_FRAGMENT | attr::PRIORITY | attr::USE_CANDIDATE => true,
            t if t < 0x8000 => {
                self.note_unknown(t);
                true
            }
            _ => true,
        };
        self.malformed |= !ok;
    }

    fn note_unknown(&mut self, typ: u16) {
        if self.unknown_len < MAX_UNKNOWN && !self.unknown().contains(&typ) {
            self.unknown[self.unknown_len] = typ;
            self.unknown_len += 1;
        }
    }
}

/// Stores `value` in an empty slot if `valid`; a later duplicate is ignored. Returns `valid`.
fn first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8], valid: bool) -> bool {
    if valid && slot.is_none() {
        *slot = Some(value);
    }
    valid
}

/// Stores a decoded value in an empty slot; returns whether it decoded.
fn first_opt<T>(slot: &mut Option<T>, decoded: Option<T>) -> bool {
    let ok = decoded.is_some();
    if slot.is_none() {
        *slot = decoded;
    }
    ok
}

/// A 4-byte value as a big-endian word.
fn word(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

/// The first byte of a 4-byte value (protocol number, address family).
fn byte(v: &[u8]) -> Option<u8> {
    word(v).map(|w| (w >> 24) as u8)
}

/// The attributes that count: those before MESSAGE-INTEGRITY.
fn covered<'a>(msg: &Message<'a>) -> impl Iterator<Item = Attribute<'a>> {
    msg.attributes()
        .take_while(|a| a.typ != attr::MESSAGE_INTEGRITY)
}

/// Every well-formed XOR-PEER-ADDRESS before MESSAGE-INTEGRITY, in order.
pub(crate) fn peer_addresses<'a>(msg: &Message<'a>) -> impl Iterator<Item = SocketAddr> + 'a {
    let txid = msg.transaction_id();
    covered(msg)
        .filter(|a| a.typ == attr::XOR_PEER_ADDRESS)
        .filter_map(move |a| decode_xor_address(a.value, txid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{method, Class, Writer};

    fn build(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, method::ALLOCATE, Class::Request, &[3; 12]);
        f(&mut w);
        let n = w.finish().unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn collects_known_attributes() {
        let peer: SocketAddr = "8.8.8.8:53".parse().unwrap();
        let bytes = build(|w| {
            w.attribute(attr::USERNAME, b"alice")
                .u32(attr::REQUESTED_TRANSPORT, 17 << 24)
                .u32(attr::LIFETIME, 1200)
                .u32(attr::CHANNEL_NUMBER, 0x4001 << 16)
                .xor_address(attr::XOR_PEER_ADDRESS, peer)
                .xor_address(attr::XOR_PEER_ADDRESS, "9.9.9.9:1".parse().unwrap())
                .attribute(attr::DONT_FRAGMENT, b"")
                .integrity(b"k")
                .u32(attr::LIFETIME, 7);
        });
        let msg = Message::parse(&bytes).unwrap();
        let a = Attrs::collect(&msg, false);
        assert_eq!(a.username, Some(&b"alice"[..]));
        assert_eq!(a.requested_transport, Some(PROTOCOL_UDP));
        assert_eq!(
            a.lifetime,
            Some(1200),
            "attributes after MESSAGE-INTEGRITY are ignored"
        );
        assert_eq!(a.channel, Some(0x4001));
        assert_eq!(a.peer, Some(peer));
        assert!(a.integrity && !a.malformed && a.unknown().is_empty());
        assert_eq!(peer_addresses(&msg).count(), 2);
    }

    #[test]
    fn flags_unknown_and_malformed() {
        let bytes = build(|w| {
            w.attribute(0x7777, b"")
                .attribute(0xC001, b"optional")
                .attribute(attr::LIFETIME, &[1, 2])
                .u32(attr::CHANGE_REQUEST, 0x6);
        });
        let msg = Message::parse(&bytes).unwrap();
        let a = Attrs::collect(&msg, false);
        assert_eq!(a.unknown(), &[0x7777, attr::CHANGE_REQUEST]);
        assert!(a.malformed);
        let a = Attrs::collect(&msg, true);
        assert_eq!(a.change, Some((true, true)));
    }
}
