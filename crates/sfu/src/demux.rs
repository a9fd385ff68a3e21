//! Sorting datagrams that arrive on the shared media port to the participant they belong to.
//!
//! Known remote addresses map straight to a participant. A STUN binding request from a new
//! address names its participant in the USERNAME attribute (`<server ufrag>:<client ufrag>`,
//! RFC 8445 §7.2.2), which is how a peer's first packet, an ICE restart and a NAT rebinding
//! find their owner. Everything here reads untrusted bytes and never panics.
//!
//! Some ICE agents (FFmpeg 8's WHIP muxer) send Binding requests without PRIORITY, which
//! str0m's ICE layer refuses to parse. [`add_missing_priority`] completes such a request
//! after checking its MESSAGE-INTEGRITY, so the ICE-lite server answers it.

/// The kind of a datagram on a WebRTC port, from its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    Stun,
    Dtls,
    Rtp,
    Unknown,
}

pub fn classify(datagram: &[u8]) -> PacketClass {
    match datagram.first() {
        Some(0..=3) => PacketClass::Stun,
        Some(20..=63) => PacketClass::Dtls,
        Some(128..=191) => PacketClass::Rtp,
        _ => PacketClass::Unknown,
    }
}

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLED: u16 = 0x8029;
const ATTR_ICE_CONTROLLING: u16 = 0x802A;
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const MESSAGE_INTEGRITY_LEN: usize = 4 + 20;
const FINGERPRINT_LEN: usize = 4 + 4;
/// The PRIORITY of a peer-reflexive candidate of component 1 with the highest local
/// preference (RFC 8445 §5.1.2.1): what a full agent would have sent for this check.
const PEER_REFLEXIVE_PRIORITY: u32 = (110 << 24) | (65535 << 8) | 255;

/// The local (server) ufrag of a STUN message's USERNAME, if the message is well formed
/// enough to carry one.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < STUN_HEADER_LEN || datagram[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(STUN_HEADER_LEN..STUN_HEADER_LEN + body_len)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let attr_type = u16::from_be_bytes([rest[0], rest[1]]);
        let attr_len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + attr_len)?;
        if attr_type == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        let padded = (attr_len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

/// The attributes of a STUN message as `(type, offset of the attribute header)`, or `None`
/// if the message is malformed.
fn attributes(datagram: &[u8]) -> Option<Vec<(u16, usize)>> {
    if datagram.len() < STUN_HEADER_LEN || datagram[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    if datagram.len() != STUN_HEADER_LEN + body_len {
        return None;
    }
    let mut attrs = Vec::new();
    let mut at = STUN_HEADER_LEN;
    while at < datagram.len() {
        let header = datagram.get(at..at + 4)?;
        let attr_type = u16::from_be_bytes([header[0], header[1]]);
        let attr_len = u16::from_be_bytes([header[2], header[3]]) as usize;
        datagram.get(at + 4..at + 4 + attr_len)?;
        attrs.push((attr_type, at));
        at += 4 + ((attr_len + 3) & !3);
    }
    (at == datagram.len()).then_some(attrs)
}

/// Whether `datagram` is a Binding request without a PRIORITY attribute.
pub fn lacks_priority(datagram: &[u8]) -> bool {
    datagram.get(..2) == Some(&BINDING_REQUEST[..])
        && attributes(datagram).is_some_and(|attrs| !attrs.iter().any(|(t, _)| *t == ATTR_PRIORITY))
}

/// A Binding request without PRIORITY, completed with a peer-reflexive PRIORITY (and
/// ICE-CONTROLLING when the sender named no role: it nominates, so it controls), and signed
/// again with `password`, the server's ICE password. `None` unless the request is one
/// lacking PRIORITY whose MESSAGE-INTEGRITY verifies with that same password.
pub fn add_missing_priority(datagram: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    if !lacks_priority(datagram) {
        return None;
    }
    let attrs = attributes(datagram)?;
    let integrity_at = attrs
        .iter()
        .find(|(t, _)| *t == ATTR_MESSAGE_INTEGRITY)
        .map(|(_, at)| *at)?;
    let mac = datagram.get(integrity_at + 4..integrity_at + MESSAGE_INTEGRITY_LEN)?;
    let mut signed = datagram[..integrity_at].to_vec();
    set_length(&mut signed, MESSAGE_INTEGRITY_LEN);
    if hmac_sha1(password, &signed) != mac {
        return None;
    }
    let mut out = datagram[..integrity_at].to_vec();
    out.extend_from_slice(&ATTR_PRIORITY.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&PEER_REFLEXIVE_PRIORITY.to_be_bytes());
    let has_role = attrs[..]
        .iter()
        .any(|(t, _)| *t == ATTR_ICE_CONTROLLING || *t == ATTR_ICE_CONTROLLED);
    if !has_role {
        // The tie-breaker only matters in a role conflict, which a lite server never has.
        out.extend_from_slice(&ATTR_ICE_CONTROLLING.to_be_bytes());
        out.extend_from_slice(&8u16.to_be_bytes());
        out.extend_from_slice(&datagram[8..16]);
    }
    seal(&mut out, password);
    Some(out)
}

/// Appends MESSAGE-INTEGRITY (keyed with `password`) and FINGERPRINT to a STUN message whose
/// attributes end before them, fixing the header's length (RFC 8489 §14.5, §14.7).
pub fn seal(message: &mut Vec<u8>, password: &[u8]) {
    set_length(message, MESSAGE_INTEGRITY_LEN);
    let mac = hmac_sha1(password, message);
    message.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    message.extend_from_slice(&20u16.to_be_bytes());
    message.extend_from_slice(&mac);
    set_length(message, FINGERPRINT_LEN);
    let fingerprint = crc32(message) ^ 0x5354_554E;
    message.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    message.extend_from_slice(&4u16.to_be_bytes());
    message.extend_from_slice(&fingerprint.to_be_bytes());
}

/// Sets the header's length to the attributes present plus `extra` bytes still to come.
fn set_length(message: &mut [u8], extra: usize) {
    let len = (message.len() - STUN_HEADER_LEN + extra) as u16;
    message[2..4].copy_from_slice(&len.to_be_bytes());
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    str0m::crypto::from_feature_flags()
        .sha1_hmac_provider
        .sha1_hmac(key, &[data])
}

/// CRC-32 (ISO-HDLC), the checksum of STUN's FINGERPRINT.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// The SSRC and payload type of an RTP packet (not RTCP), from its header, which SRTP leaves
/// in the clear (RFC 3711 §3.1). RTCP is told apart by its packet types (RFC 5761 §4).
pub fn rtp_ssrc_and_pt(datagram: &[u8]) -> Option<(u32, u8)> {
    if classify(datagram) != PacketClass::Rtp || datagram.len() < 12 {
        return None;
    }
    let pt = datagram[1] & 0x7F;
    if (64..=95).contains(&pt) {
        return None;
    }
    let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    Some((ssrc, pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_fields_and_rtcp_apart() {
        let mut rtp = vec![
            0x80,
            0x80 | 96,
            0,
            1,
            0,
            0,
            0,
            0,
            0xDE,
            0xAD,
            0xBE,
            0xEF,
            0xFF,
        ];
        assert_eq!(rtp_ssrc_and_pt(&rtp), Some((0xDEAD_BEEF, 96)));
        rtp[1] = 200; // a sender report
        assert_eq!(rtp_ssrc_and_pt(&rtp), None);
        assert_eq!(rtp_ssrc_and_pt(&rtp[..11]), None);
        assert_eq!(rtp_ssrc_and_pt(&[0x16; 20]), None, "DTLS");
    }

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after USERNAME, so the walk has to step over padding.
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&((attr.len() + 8) as u16).to_be_bytes());
        msg.extend_from_slice(&STUN_MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        msg.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        msg
    }

    #[test]
    fn finds_the_server_ufrag() {
        assert_eq!(
            stun_local_ufrag(&binding_request("srv1:cli9")),
            Some("srv1")
        );
        assert_eq!(stun_local_ufrag(&binding_request("abcde:f")), Some("abcde"));
    }

    #[test]
    fn rejects_truncated_and_foreign_messages() {
        let msg = binding_request("srv1:cli9");
        for n in 0..msg.len() {
            let _ = stun_local_ufrag(&msg[..n]);
        }
        assert_eq!(stun_local_ufrag(&msg[..24]), None);
        let mut no_cookie = msg.clone();
        no_cookie[4] = 0;
        assert_eq!(stun_local_ufrag(&no_cookie), None);
    }

    /// A request like FFmpeg 8's: USERNAME, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT.
    fn request_without_priority(password: &[u8]) -> Vec<u8> {
        let mut msg = binding_request("srv1:cli9");
        msg.truncate(msg.len() - 8);
        msg.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        seal(&mut msg, password);
        msg
    }

    #[test]
    fn completes_a_request_without_priority() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let msg = request_without_priority(b"server-pwd");
        assert!(lacks_priority(&msg));
        let fixed = add_missing_priority(&msg, b"server-pwd").expect("completed");
        assert!(!lacks_priority(&fixed));
        let attrs: Vec<u16> = attributes(&fixed).unwrap().iter().map(|a| a.0).collect();
        assert_eq!(
            attrs,
            [
                ATTR_USERNAME,
                0x0025,
                ATTR_PRIORITY,
                ATTR_ICE_CONTROLLING,
                ATTR_MESSAGE_INTEGRITY,
                ATTR_FINGERPRINT
            ]
        );
        // Signed again: re-sealing the attributes before MESSAGE-INTEGRITY reproduces it.
        let mut resealed = fixed[..fixed.len() - MESSAGE_INTEGRITY_LEN - FINGERPRINT_LEN].to_vec();
        seal(&mut resealed, b"server-pwd");
        assert_eq!(resealed, fixed);
        assert_eq!(add_missing_priority(&fixed, b"server-pwd"), None);
    }

    #[test]
    fn refuses_a_request_signed_with_another_password() {
        let msg = request_without_priority(b"someone-else");
        assert_eq!(add_missing_priority(&msg, b"server-pwd"), None);
        let mut unsigned = binding_request("srv1:cli9");
        unsigned.truncate(unsigned.len() - 8);
        set_length(&mut unsigned, 0);
        assert_eq!(add_missing_priority(&unsigned, b"server-pwd"), None);
        for n in 0..msg.len() {
            assert_eq!(add_missing_priority(&msg[..n], b"someone-else"), None);
        }
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0, 1]), PacketClass::Stun);
        assert_eq!(classify(&[22]), PacketClass::Dtls);
        assert_eq!(classify(&[0x80]), PacketClass::Rtp);
        assert_eq!(classify(&[0xbf]), PacketClass::Rtp);
        assert_eq!(classify(&[255]), PacketClass::Unknown);
        assert_eq!(classify(&[]), PacketClass::Unknown);
    }
}
