//! Arbitrary and mangled input never panics the server, and what it relays is what it got.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use proptest::prelude::*;
use stoa_turn::stun::{attr, method, Class, Message, Writer};
use stoa_turn::{frame_len, ClientAction, FrameLen, Transport, TurnConfig};

/// A harness where a client holds an allocation with a channel and a permission, so hostile
/// input can reach every path; returns it with the client and relay port.
fn ready() -> (Harness, Client, u16) {
    let mut config: TurnConfig = config();
    config.alternate = Some(addr("203.0.113.2:3479"));
    config.max_bandwidth_per_allocation = Some(1_000_000);
    let mut h = Harness::new(config);
    let mut c = Client::new("198.18.0.5:61000", "alice", "secret-pw");
    let port = h.allocate(&mut c).port();
    h.channel_bind(&mut c, 0x4000, addr("93.184.216.34:40000"));
    h.create_permission(&mut c, &[addr("93.184.216.35:1")]);
    (h, c, port)
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::Udp),
        Just(Transport::Tcp),
        Just(Transport::Tls)
    ]
}

fn socket() -> impl Strategy<Value = SocketAddr> {
    (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

/// Attributes the server looks at, with values that may or may not be valid.
fn attribute() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let typ = prop_oneof![
        Just(attr::LIFETIME),
        Just(attr::REQUESTED_TRANSPORT),
        Just(attr::REQUESTED_ADDRESS_FAMILY),
        Just(attr::CHANNEL_NUMBER),
        Just(attr::XOR_PEER_ADDRESS),
        Just(attr::DATA),
        Just(attr::CHANGE_REQUEST),
        Just(attr::EVEN_PORT),
        Just(attr::DONT_FRAGMENT),
        Just(attr::USERNAME),
        any::<u16>(),
    ];
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        any::<[u8; 4]>().prop_map(|v| v.to_vec()),
        any::<[u8; 8]>().prop_map(|mut v| {
            v[1] = 1;
            v.to_vec()
        }),
    ];
    (typ, value)
}

fn stun_method() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(method::BINDING),
        Just(method::ALLOCATE),
        Just(method::REFRESH),
        Just(method::SEND),
        Just(method::CREATE_PERMISSION),
        Just(method::CHANNEL_BIND),
        0u16..0x1000,
    ]
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ]
}

/// A well-formed message from the client, signed with its real credentials or not, with a
/// FINGERPRINT or not (without one, mangled bytes get past the parser more often).
fn build(
    c: &Client,
    m: u16,
    class: Class,
    attrs: &[(u16, Vec<u8>)],
    (sign, fp): (bool, bool),
) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf, m, class, &[0x42; 12]);
    for (t, v) in attrs {
        w.attribute(*t, v);
    }
    if sign {
        w.attribute(attr::USERNAME, c.username.as_bytes());
        w.attribute(attr::REALM, c.realm.as_deref().unwrap_or_default());
        w.attribute(attr::NONCE, c.nonce.as_deref().unwrap_or_default());
        w.integrity(&c.key());
    }
    if fp {
        w.fingerprint();
    }
    let n = w.finish().unwrap();
    buf[..n].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_client_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        t in transport(),
        out_len in 0usize..400,
        same_client in any::<bool>(),
        from in socket(),
    ) {
        let (mut h, c, _) = ready();
        let client = if same_client { c.addr } else { from };
        let mut out = vec![0u8; out_len];
        let action = h.turn.handle_client(h.now, h.unix, t, c.local, client, &data, &mut out);
        if let ClientAction::Reply { len, .. } = action {
            prop_assert!(len <= out_len);
            prop_assert!(Message::parse(&out[..len]).is_ok());
        }
    }

    #[test]
    fn generated_requests_never_panic(
        ops in proptest::collection::vec(
            (stun_method(), class(), proptest::collection::vec(attribute(), 0..5), any::<(bool, bool)>()),
            1..8,
        ),
        out_len in 0usize..300,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let (mut h, c, _) = ready();
        let mut out = vec![0u8; out_len];
        for (m, class, attrs, sign) in &ops {
            let mut bytes = build(&c, *m, *class, attrs, *sign);
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            let action = h.turn.handle_client(h.now, h.unix, c.transport, c.local, c.addr, &bytes, &mut out);
            if let ClientAction::Reply { len, .. } = action {
                prop_assert!(Message::parse(&out[..len]).is_ok());
            }
            while h.turn.poll_event().is_some() {}
            h.turn.handle_timeout(h.now);
        }
        let stats = h.turn.stats();
        prop_assert!(stats.allocations <= 1);
    }

    #[test]
    fn arbitrary_peer_datagrams_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        port in prop_oneof![Just(None), any::<u16>().prop_map(Some)],
        peer in prop_oneof![Just(addr("93.184.216.34:40000")), Just(addr("93.184.216.35:9")), socket()],
        out_len in 0usize..400,
    ) {
        let (mut h, _, relay_port) = ready();
        let mut out = vec![0u8; out_len];
        if let Some(to) = h.turn.handle_peer(h.now, port.unwrap_or(relay_port), peer, &data, &mut out) {
            prop_assert!(to.len <= out_len);
        }
    }

    #[test]
    fn channel_data_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..1400), tcp in any::<bool>()) {
        let (mut h, c, port) = ready();
        let peer = addr("93.184.216.34:40000");
        let got = h.send(&c, &channel_data(0x4000, &payload, tcp));
        prop_assert_eq!(got, Got::ToPeer { relay_port: port, peer, payload: payload.clone() });
        let (_, bytes) = h.peer_sends(port, peer, &payload).unwrap();
        prop_assert_eq!(bytes, channel_data(0x4000, &payload, false));
    }

    #[test]
    fn frame_len_of_any_prefix(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        match frame_len(&data) {
            FrameLen::NeedHeader => prop_assert!(data.len() < 4),
            FrameLen::Len(n) => prop_assert!(n >= 4),
            FrameLen::Invalid => prop_assert!(data[0] >= 0x80 || data[3] % 4 != 0),
        }
    }
}
