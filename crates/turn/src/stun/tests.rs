use super::*;

/// Hex with whitespace to bytes, for typing in RFC vectors.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

const SHORT_TERM_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1: sample request with short-term credentials, ICE attributes and FINGERPRINT.
const RFC5769_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2: sample IPv4 response.
const RFC5769_RESPONSE_V4: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

/// RFC 5769 §2.3: sample IPv6 response.
const RFC5769_RESPONSE_V6: &str = "
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c";

/// RFC 5769 §2.4: sample request with long-term credentials (no FINGERPRINT).
const RFC5769_LONG_TERM: &str = "
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46
                53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

#[test]
fn rfc5769_request_parses_and_verifies() {
    let bytes = hex(RFC5769_REQUEST);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (method::BINDING, Class::Request)
    );
    assert_eq!(msg.attribute(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        msg.attribute(attr::SOFTWARE),
        Some(&b"STUN test client"[..])
    );
    assert_eq!(
        msg.attribute(attr::PRIORITY),
        Some(&[0x6e, 0x00, 0x01, 0xff][..])
    );
    assert!(msg.verify_integrity(SHORT_TERM_PASSWORD));
    assert!(!msg.verify_integrity(b"wrong"));
}

#[test]
fn rfc5769_responses_decode_mapped_address() {
    let cases = [
        (RFC5769_RESPONSE_V4, "192.0.2.1:32853"),
        (
            RFC5769_RESPONSE_V6,
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ];
    for (vector, expected) in cases {
        let bytes = hex(vector);
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(
            (msg.method(), msg.class()),
            (method::BINDING, Class::Success)
        );
        assert!(msg.verify_integrity(SHORT_TERM_PASSWORD));
        let value = msg.attribute(attr::XOR_MAPPED_ADDRESS).unwrap();
        let addr = decode_xor_address(value, msg.transaction_id()).unwrap();
        assert_eq!(addr, expected.parse().unwrap());
    }
}

#[test]
fn rfc5769_long_term_request_verifies_with_md5_key() {
    let bytes = hex(RFC5769_LONG_TERM);
    let msg = Message::parse(&bytes).unwrap();
    let username = msg.attribute(attr::USERNAME).unwrap();
    assert_eq!(username, "マトリックス".as_bytes());
    assert_eq!(msg.attribute(attr::REALM), Some(&b"example.org"[..]));
    assert_eq!(
        msg.attribute(attr::NONCE),
        Some(&b"f//499k954d6OL34oL9FSTvy64sA"[..])
    );
    // The password after SASLprep is "TheMatrIX".
    let key = crate::auth::long_term_key(username, b"example.org", b"TheMatrIX");
    assert!(msg.verify_integrity(&key));
}

/// Writing the RFC 5769 IPv4 response gives the vector up to MESSAGE-INTEGRITY, except the
/// padding byte of SOFTWARE (the vector pads with a space, the writer with zero).
#[test]
fn writer_matches_rfc5769_response_body() {
    let vector = hex(RFC5769_RESPONSE_V4);
    let txid: [u8; 12] = vector[8..20].try_into().unwrap();
    let mut buf = [0u8; 128];
    let mut w = Writer::new(&mut buf, method::BINDING, Class::Success, &txid);
    w.attribute(attr::SOFTWARE, b"test vector");
    w.xor_address(attr::XOR_MAPPED_ADDRESS, "192.0.2.1:32853".parse().unwrap());
    w.integrity(SHORT_TERM_PASSWORD).fingerprint();
    let n = w.finish().unwrap();
    assert_eq!(n, vector.len());
    assert_eq!(buf[..35], vector[..35]);
    assert_eq!(buf[35], 0);
    assert_eq!(buf[36..48], vector[36..48]);
    assert!(Message::parse(&buf[..n])
        .unwrap()
        .verify_integrity(SHORT_TERM_PASSWORD));
}

/// The RFC 5769 long-term request pads with zeros, so the writer reproduces it exactly,
/// MESSAGE-INTEGRITY included.
#[test]
fn writer_reproduces_rfc5769_long_term_request() {
    let vector = hex(RFC5769_LONG_TERM);
    let txid: [u8; 12] = vector[8..20].try_into().unwrap();
    let key = crate::auth::long_term_key("マトリックス".as_bytes(), b"example.org", b"TheMatrIX");
    let mut buf = [0u8; 128];
    let mut w = Writer::new(&mut buf, method::BINDING, Class::Request, &txid);
    w.attribute(attr::USERNAME, "マトリックス".as_bytes());
    w.attribute(attr::NONCE, b"f//499k954d6OL34oL9FSTvy64sA");
    w.attribute(attr::REALM, b"example.org");
    w.integrity(&key);
    let n = w.finish().unwrap();
    assert_eq!(buf[..n], vector[..]);
}

#[test]
fn message_type_round_trips() {
    for m in [
        method::BINDING,
        method::ALLOCATE,
        method::CHANNEL_BIND,
        0xFFF,
    ] {
        for c in [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ] {
            assert_eq!(split_type(message_type(m, c)), (m, c));
        }
    }
    assert_eq!(message_type(method::BINDING, Class::Success), 0x0101);
    assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
    assert_eq!(message_type(method::SEND, Class::Indication), 0x0016);
}

#[test]
fn rejects_bad_headers_and_fingerprints() {
    let good = hex(RFC5769_REQUEST);
    let mut bad_cookie = good.clone();
    bad_cookie[4] ^= 1;
    let mut bad_fp = good.clone();
    *bad_fp.last_mut().unwrap() ^= 1;
    let mut bad_len = good.clone();
    bad_len[3] += 4;
    for bytes in [
        &bad_cookie[..],
        &bad_fp,
        &bad_len,
        &good[..19],
        &good[..good.len() - 4],
        &[],
    ] {
        assert_eq!(Message::parse(bytes).unwrap_err(), Malformed);
    }
}

#[test]
fn fingerprint_must_be_last() {
    let txid = [7u8; 12];
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf, method::BINDING, Class::Request, &txid);
    w.fingerprint().u32(attr::LIFETIME, 5);
    let n = w.finish().unwrap();
    assert!(Message::parse(&buf[..n]).is_err());
}

#[test]
fn writer_reports_overflow() {
    let txid = [1u8; 12];
    let mut small = [0u8; 30];
    let mut w = Writer::new(&mut small, method::BINDING, Class::Request, &txid);
    w.attribute(attr::DATA, &[0; 16]);
    assert_eq!(w.finish(), None);
    let mut tiny = [0u8; 10];
    let w = Writer::new(&mut tiny, method::BINDING, Class::Request, &txid);
    assert_eq!(w.finish(), None);
}

#[test]
fn error_code_encodes_class_and_number() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf, method::ALLOCATE, Class::Error, &[0; 12]);
    w.error_code(438);
    let n = w.finish().unwrap();
    let msg = Message::parse(&buf[..n]).unwrap();
    let v = msg.attribute(attr::ERROR_CODE).unwrap();
    assert_eq!(&v[..4], &[0, 0, 4, 38]);
    assert_eq!(&v[4..], b"Stale Nonce");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn class() -> impl Strategy<Value = Class> {
        prop_oneof![
            Just(Class::Request),
            Just(Class::Indication),
            Just(Class::Success),
            Just(Class::Error)
        ]
    }

    /// Attributes other than MESSAGE-INTEGRITY and FINGERPRINT, which are added separately.
    fn attribute() -> impl Strategy<Value = (u16, Vec<u8>)> {
        let typ = any::<u16>().prop_filter("integrity/fingerprint", |t| {
            *t != attr::MESSAGE_INTEGRITY && *t != attr::FINGERPRINT
        });
        (typ, proptest::collection::vec(any::<u8>(), 0..40))
    }

    proptest! {
        #[test]
        fn written_messages_round_trip(
            m in 0u16..0x1000,
            c in class(),
            txid in any::<[u8; 12]>(),
            attrs in proptest::collection::vec(attribute(), 0..8),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..32)),
            fp in any::<bool>(),
        ) {
            let mut buf = [0u8; 1024];
            let mut w = Writer::new(&mut buf, m, c, &txid);
            for (t, v) in &attrs {
                w.attribute(*t, v);
            }
            if let Some(k) = &key {
                w.integrity(k);
            }
            if fp {
                w.fingerprint();
            }
            let n = w.finish().unwrap();
            let msg = Message::parse(&buf[..n]).unwrap();
            prop_assert_eq!((msg.method(), msg.class()), (m, c));
            prop_assert_eq!(msg.transaction_id(), &txid);
            let got: Vec<(u16, Vec<u8>)> =
                msg.attributes().take(attrs.len()).map(|a| (a.typ, a.value.to_vec())).collect();
            prop_assert_eq!(&got, &attrs);
            if let Some(k) = &key {
                prop_assert!(msg.verify_integrity(k));
            }
        }

        #[test]
        fn xor_addresses_round_trip(
            ip in any::<std::net::IpAddr>(),
            port in any::<u16>(),
            txid in any::<[u8; 12]>(),
        ) {
            let addr = SocketAddr::new(ip, port);
            let mut buf = [0u8; 64];
            let mut w = Writer::new(&mut buf, method::ALLOCATE, Class::Success, &txid);
            w.xor_address(attr::XOR_RELAYED_ADDRESS, addr);
            let n = w.finish().unwrap();
            let msg = Message::parse(&buf[..n]).unwrap();
            let value = msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap();
            prop_assert_eq!(decode_xor_address(value, &txid), Some(addr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(msg) = Message::parse(&bytes) {
                for a in msg.attributes() {
                    let _ = decode_xor_address(a.value, msg.transaction_id());
                }
                let _ = msg.verify_integrity(b"key");
            }
        }
    }
}
