//! STUN message codec (RFC 8489): a borrowed, validated view of a message, its attributes,
//! MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT checks, and a writer that builds messages in a
//! caller's buffer. Nothing here allocates, and [`Message::parse`] accepts any bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The fixed magic cookie in every STUN header.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Length of a MESSAGE-INTEGRITY attribute (header and HMAC-SHA1).
const INTEGRITY_LEN: usize = 24;
/// Length of a FINGERPRINT attribute (header and CRC-32).
const FINGERPRINT_LEN: usize = 8;
/// FINGERPRINT is the CRC-32 of the message XOR this value.
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// STUN and TURN methods (RFC 8489, RFC 8656).
pub mod method {
    pub const BINDING: u16 = 0x001;
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
    pub const SEND: u16 = 0x006;
    pub const DATA: u16 = 0x007;
    pub const CREATE_PERMISSION: u16 = 0x008;
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types (RFC 8489, RFC 8656, RFC 5780).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const CHANGE_REQUEST: u16 = 0x0003;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    pub const OTHER_ADDRESS: u16 = 0x802C;
}

/// The class of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// The 16-bit message type for a method (12 bits) and class, with the class bits interleaved.
pub fn message_type(method: u16, class: Class) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = ((t >> 4) & 0b01) | ((t >> 7) & 0b10);
    (method, Class::from_bits(class))
}

/// The bytes are not a well-formed STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Rounds up to a multiple of 4 (attribute values are padded to 32 bits).
pub(crate) fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A well-formed STUN message borrowed from the input: header checked, attributes fit, and a
/// FINGERPRINT, if present, is last and correct.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks `data` is exactly one STUN message.
    pub fn parse(data: &'a [u8]) -> Result<Self, Malformed> {
        if data.len() < HEADER_LEN || data[0] & 0xC0 != 0 || be32(data, 4) != MAGIC_COOKIE {
            return Err(Malformed);
        }
        let len = usize::from(be16(data, 2));
        if len % 4 != 0 || data.len() != HEADER_LEN + len {
            return Err(Malformed);
        }
        let msg = Message { bytes: data };
        msg.check_attributes()?;
        Ok(msg)
    }

    /// Every attribute fits, and FINGERPRINT, if present, is the last one and matches.
    fn check_attributes(&self) -> Result<(), Malformed> {
        let mut pos = HEADER_LEN;
        while pos < self.bytes.len() {
            if pos + 4 > self.bytes.len() {
                return Err(Malformed);
            }
            let typ = be16(self.bytes, pos);
            let len = usize::from(be16(self.bytes, pos + 2));
            let end = pos + 4 + padded(len);
            if end > self.bytes.len() {
                return Err(Malformed);
            }
            if typ == attr::FINGERPRINT && !self.fingerprint_ok(pos, len, end) {
                return Err(Malformed);
            }
            pos = end;
        }
        Ok(())
    }

    fn fingerprint_ok(&self, pos: usize, len: usize, end: usize) -> bool {
        len == 4
            && end == self.bytes.len()
            && be32(self.bytes, pos + 4) == crc32(&self.bytes[..pos]) ^ FINGERPRINT_XOR
    }

    /// The 12-bit method.
    pub fn method(&self) -> u16 {
        split_type(be16(self.bytes, 0)).0
    }

    /// Request, indication, success or error response.
    pub fn class(&self) -> Class {
        split_type(be16(self.bytes, 0)).1
    }

    /// The 96-bit transaction ID.
    pub fn transaction_id(&self) -> &'a [u8; 12] {
        let id: &'a [u8] = &self.bytes[8..HEADER_LEN];
        id.try_into().unwrap_or(&[0; 12])
    }

    /// All attributes in order, including any after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            pos: HEADER_LEN,
        }
    }

    /// The first attribute of a type.
    pub fn attribute(&self, typ: u16) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Whether the MESSAGE-INTEGRITY attribute is the HMAC-SHA1 under `key` of what precedes it.
    /// False when there is none.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(mi) = self.attributes().find(|a| a.typ == attr::MESSAGE_INTEGRITY) else {
            return false;
        };
        if mi.value.len() != 20 {
            return false;
        }
        let covered_len = (mi.offset - HEADER_LEN + INTEGRITY_LEN) as u16;
        let mut mac = hmac_sha1(key);
        mac.update(&self.bytes[..2]);
        mac.update(&covered_len.to_be_bytes());
        mac.update(&self.bytes[4..mi.offset]);
        mac.verify_slice(mi.value).is_ok()
    }
}

/// One attribute: its type, its value without padding, and where it starts in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub typ: u16,
    pub value: &'a [u8],
    pub offset: usize,
}

/// Iterator over the attributes of a [`Message`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let head = self.bytes.get(self.pos..self.pos + 4)?;
        let typ = be16(head, 0);
        let len = usize::from(be16(head, 2));
        let value = self.bytes.get(self.pos + 4..self.pos + 4 + len)?;
        let offset = self.pos;
        self.pos += 4 + padded(len);
        Some(Attribute { typ, value, offset })
    }
}

/// HMAC-SHA1 keyed with `key` (HMAC accepts keys of any length).
pub(crate) fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// Decodes an XOR-MAPPED-ADDRESS-style value (XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).
pub fn decode_xor_address(value: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let plain = decode_address(value)?;
    Some(xor_socket(plain, txid))
}

/// Decodes a MAPPED-ADDRESS-style value (family, port, address; RFC 8489 §14.1).
pub fn decode_address(value: &[u8]) -> Option<SocketAddr> {
    if value.len() < 4 {
        return None;
    }
    let port = be16(value, 2);
    let ip = match (value[1], &value[4..]) {
        (0x01, a) if a.len() == 4 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        (0x02, a) if a.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// XOR of an address with the magic cookie (and transaction ID for IPv6); its own inverse.
fn xor_socket(addr: SocketAddr, txid: &[u8; 12]) -> SocketAddr {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(v4) => {
            let mut o = v4.octets();
            o.iter_mut().zip(cookie).for_each(|(b, k)| *b ^= k);
            IpAddr::V4(o.into())
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            let key = cookie.iter().chain(txid.iter());
            o.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            IpAddr::V6(o.into())
        }
    };
    SocketAddr::new(ip, port)
}

/// Encodes an address value into `out`, returning its length (8 for IPv4, 20 for IPv6).
fn encode_address(addr: SocketAddr, out: &mut [u8; 20]) -> usize {
    out[0] = 0;
    out[2..4].copy_from_slice(&addr.port().to_be_bytes());
    match addr.ip() {
        IpAddr::V4(v4) => {
            out[1] = 0x01;
            out[4..8].copy_from_slice(&v4.octets());
            8
        }
        IpAddr::V6(v6) => {
            out[1] = 0x02;
            out[4..20].copy_from_slice(&v6.octets());
            20
        }
    }
}

/// The reason phrase sent with an error code.
pub fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "Error",
    }
}

/// Builds a STUN message in a caller's buffer. Writes that do not fit mark the writer as
/// overflowed, and [`Writer::finish`] then returns `None`.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Writer<'b> {
    /// Starts a message with an empty body.
    pub fn new(buf: &'b mut [u8], method: u16, class: Class, txid: &[u8; 12]) -> Self {
        let mut w = Writer {
            buf,
            len: HEADER_LEN,
            overflow: false,
        };
        let Some(head) = w.buf.get_mut(..HEADER_LEN) else {
            w.overflow = true;
            return w;
        };
        head[0..2].copy_from_slice(&message_type(method, class).to_be_bytes());
        head[2..4].copy_from_slice(&[0, 0]);
        head[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        head[8..].copy_from_slice(txid);
        w
    }

    /// Appends an attribute, padding its value with zeros.
    pub fn attribute(&mut self, typ: u16, value: &[u8]) -> &mut Self {
        if !self.reserve(4 + padded(value.len())) {
            return self;
        }
        let end = self.len + 4 + padded(value.len());
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf[at + 4..at + 4 + value.len()].copy_from_slice(value);
        self.buf[at + 4 + value.len()..end].fill(0);
        self.set_len(end);
        self
    }

    /// Appends a 32-bit attribute (LIFETIME, CHANNEL-NUMBER, ...).
    pub fn u32(&mut self, typ: u16, value: u32) -> &mut Self {
        self.attribute(typ, &value.to_be_bytes())
    }

    /// Appends an address attribute in the plain MAPPED-ADDRESS format.
    pub fn address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        let mut value = [0u8; 20];
        let n = encode_address(addr, &mut value);
        self.attribute(typ, &value[..n])
    }

    /// Appends an address attribute in the XOR-MAPPED-ADDRESS format.
    pub fn xor_address(&mut self, typ: u16, addr: SocketAddr) -> &mut Self {
        let txid = self.transaction_id();
        self.address(typ, xor_socket(addr, &txid))
    }

    /// Appends ERROR-CODE with the standard reason phrase.
    pub fn error_code(&mut self, code: u16) -> &mut Self {
        let phrase = reason(code).as_bytes();
        let mut value = [0u8; 64];
        let n = 4 + phrase.len();
        value[2] = (code / 100) as u8;
        value[3] = (code % 100) as u8;
        value[4..n].copy_from_slice(phrase);
        self.attribute(attr::ERROR_CODE, &value[..n])
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 under `key` of the message so far.
    pub fn integrity(&mut self, key: &[u8]) -> &mut Self {
        if !self.reserve(INTEGRITY_LEN) {
            return self;
        }
        self.set_len(self.len + INTEGRITY_LEN);
        let mut mac = hmac_sha1(key);
        mac.update(&self.buf[..self.len - INTEGRITY_LEN]);
        let tag = mac.finalize().into_bytes();
        self.set_len(self.len - INTEGRITY_LEN);
        self.attribute(attr::MESSAGE_INTEGRITY, &tag)
    }

    /// Appends FINGERPRINT; it must be the last attribute.
    pub fn fingerprint(&mut self) -> &mut Self {
        if !self.reserve(FINGERPRINT_LEN) {
            return self;
        }
        self.set_len(self.len + FINGERPRINT_LEN);
        let crc = crc32(&self.buf[..self.len - FINGERPRINT_LEN]) ^ FINGERPRINT_XOR;
        self.set_len(self.len - FINGERPRINT_LEN);
        self.u32(attr::FINGERPRINT, crc)
    }

    /// The length of the finished message, or `None` if it did not fit.
    pub fn finish(self) -> Option<usize> {
        (!self.overflow).then_some(self.len)
    }

    /// Whether `extra` more bytes fit in the buffer and in the 16-bit length field; marks the
    /// writer as overflowed if not.
    fn reserve(&mut self, extra: usize) -> bool {
        let end = self.len + extra;
        if end > self.buf.len() || end - HEADER_LEN > usize::from(u16::MAX) {
            self.overflow = true;
        }
        !self.overflow
    }

    fn transaction_id(&self) -> [u8; 12] {
        let mut id = [0u8; 12];
        if let Some(src) = self.buf.get(8..HEADER_LEN) {
            id.copy_from_slice(src);
        }
        id
    }

    /// Moves the end of the message and updates the header's length field.
    fn set_len(&mut self, len: usize) {
        self.len = len;
        let body = ((len - HEADER_LEN) as u16).to_be_bytes();
        self.buf[2..4].copy_from_slice(&body);
    }
}

#[cfg(test)]
mod tests;
