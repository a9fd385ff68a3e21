//! Whole STUN/TURN flows with a tiny client in simulated time.

mod common;

use std::time::Duration;

use common::*;
use stoa_turn::stun::{attr, decode_xor_address, method, Class, Message};
use stoa_turn::{rest_credentials, Event, Transport, TurnConfig};

const PEER: &str = "93.184.216.34:40000";

fn alice() -> Client {
    Client::new("198.18.0.5:61000", "alice", "secret-pw")
}

/// A harness with alice allocated, and the relayed port.
fn allocated(config: TurnConfig) -> (Harness, Client, u16) {
    let mut h = Harness::new(config);
    let mut c = alice();
    let relayed = h.allocate(&mut c);
    assert_eq!(
        h.events(),
        vec![Event::BindRelay {
            port: relayed.port()
        }]
    );
    (h, c, relayed.port())
}

#[test]
fn binding_returns_xor_mapped_address() {
    let mut h = Harness::new(config());
    let mut c = alice();
    let got = h.send(&c.clone(), &c.request(method::BINDING, |_| {}));
    let Got::Reply { from, .. } = &got else {
        panic!("{got:?}")
    };
    assert_eq!(*from, c.local);
    let msg = got.reply();
    assert_eq!(
        (msg.method(), msg.class()),
        (method::BINDING, Class::Success)
    );
    let mapped = msg.attribute(attr::XOR_MAPPED_ADDRESS).unwrap();
    assert_eq!(
        decode_xor_address(mapped, msg.transaction_id()),
        Some(c.addr)
    );
    assert!(msg.attribute(attr::FINGERPRINT).is_some());
    assert!(
        msg.attribute(attr::OTHER_ADDRESS).is_none(),
        "no RFC 5780 without an alternate"
    );
    assert_eq!(h.turn.stats().binding_requests, 1);
}

#[test]
fn allocate_permission_send_and_data_indication() {
    let mut h = Harness::new(config());
    let mut c = alice();
    // Unauthenticated Allocate: 401 with REALM and NONCE.
    let first = h.send(
        &c.clone(),
        &c.request(method::ALLOCATE, |w| {
            w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
        }),
    );
    assert_eq!(first.error_code(), Some(401));
    assert_eq!(first.reply().attribute(attr::REALM), Some(REALM.as_bytes()));
    assert!(first.reply().attribute(attr::NONCE).is_some());
    assert!(h.events().is_empty());

    let relayed = h.allocate(&mut c);
    assert_eq!(relayed.ip(), config().relay_ip);
    assert!(config().relay_ports.contains(&relayed.port()));
    assert_eq!(
        h.events(),
        vec![Event::BindRelay {
            port: relayed.port()
        }]
    );

    let peer = addr(PEER);
    // Without a permission, nothing is relayed either way.
    let send = c.send_indication(peer, b"early");
    assert_eq!(h.send(&c, &send), Got::None);
    assert!(h.peer_sends(relayed.port(), peer, b"early").is_none());

    let got = h.create_permission(&mut c, &[peer]);
    assert_eq!(got.reply().class(), Class::Success);
    assert!(got.reply().verify_integrity(&c.key()));

    let send = c.send_indication(peer, b"hello peer");
    assert_eq!(
        h.send(&c, &send),
        Got::ToPeer {
            relay_port: relayed.port(),
            peer,
            payload: b"hello peer".to_vec()
        }
    );
    // The permission is per IP: any port of the peer may answer.
    let other_port = addr("93.184.216.34:40001");
    let (to, bytes) = h
        .peer_sends(relayed.port(), other_port, b"hello client")
        .unwrap();
    assert_eq!(
        (to.transport, to.local, to.client),
        (Transport::Udp, c.local, c.addr)
    );
    assert_eq!(
        parse_data_indication(&bytes),
        (other_port, b"hello client".to_vec())
    );

    let stats = h.turn.stats();
    assert_eq!((stats.allocations, stats.permissions), (1, 1));
    assert_eq!((stats.packets_to_peers, stats.bytes_to_peers), (1, 10));
    assert_eq!((stats.packets_to_clients, stats.bytes_to_clients), (1, 12));
    assert_eq!(stats.dropped_unauthorized, 2);
}

#[test]
fn channel_data_both_ways() {
    let (mut h, mut c, port) = allocated(config());
    let peer = addr(PEER);
    assert_eq!(
        h.channel_bind(&mut c, 0x4001, peer).reply().class(),
        Class::Success
    );

    let got = h.send(&c, &channel_data(0x4001, b"via channel", false));
    assert_eq!(
        got,
        Got::ToPeer {
            relay_port: port,
            peer,
            payload: b"via channel".to_vec()
        }
    );
    // Over UDP the client may pad; padding is ignored.
    let got = h.send(&c, &channel_data(0x4001, b"abc", true));
    assert_eq!(
        got,
        Got::ToPeer {
            relay_port: port,
            peer,
            payload: b"abc".to_vec()
        }
    );

    let (_, bytes) = h.peer_sends(port, peer, b"back").unwrap();
    assert_eq!(bytes, channel_data(0x4001, b"back", false));
    // Another port of the same IP has a permission (from ChannelBind) but no channel.
    let (_, bytes) = h.peer_sends(port, addr("93.184.216.34:1"), b"x").unwrap();
    assert_eq!(parse_data_indication(&bytes).1, b"x");

    // Unbound channel numbers are dropped.
    assert_eq!(h.send(&c, &channel_data(0x4002, b"x", false)), Got::None);
    assert_eq!(h.turn.stats().channels, 1);
}

#[test]
fn channel_data_over_tcp_is_padded() {
    let mut h = Harness::new(config());
    let mut c = alice();
    c.transport = Transport::Tcp;
    c.local = addr("203.0.113.1:443");
    let port = h.allocate(&mut c).port();
    assert_eq!(h.events(), vec![Event::BindRelay { port }]);
    let peer = addr(PEER);
    assert_eq!(
        h.channel_bind(&mut c, 0x4FFF, peer).reply().class(),
        Class::Success
    );
    let (to, bytes) = h.peer_sends(port, peer, b"12345").unwrap();
    assert_eq!((to.transport, to.local), (Transport::Tcp, c.local));
    assert_eq!(bytes, channel_data(0x4FFF, b"12345", true));
    assert_eq!(stoa_turn::frame_len(&bytes), stoa_turn::FrameLen::Len(12));
    let got = h.send(&c, &channel_data(0x4FFF, b"12345", true));
    assert_eq!(
        got,
        Got::ToPeer {
            relay_port: port,
            peer,
            payload: b"12345".to_vec()
        }
    );

    h.turn.client_closed(Transport::Tcp, c.local, c.addr);
    assert_eq!(h.events(), vec![Event::ReleaseRelay { port }]);
    assert_eq!(h.turn.stats().allocations, 0);
}

#[test]
fn channel_bind_rules() {
    let (mut h, mut c, _) = allocated(config());
    let (p1, p2) = (addr(PEER), addr("93.184.216.35:1"));
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, p1).reply().class(),
        Class::Success
    );
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, p1).reply().class(),
        Class::Success,
        "refresh"
    );
    assert_eq!(h.channel_bind(&mut c, 0x4000, p2).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4001, p1).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x3FFF, p2).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x8000, p2).error_code(), Some(400));
    assert_eq!(
        h.channel_bind(&mut c, 0x4001, p2).reply().class(),
        Class::Success
    );
}

#[test]
fn refresh_zero_deletes_and_releases() {
    let (mut h, mut c, port) = allocated(config());
    let got = h.refresh(&mut c, 0);
    let msg = got.reply();
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.attribute(attr::LIFETIME), Some(&[0, 0, 0, 0][..]));
    assert_eq!(h.events(), vec![Event::ReleaseRelay { port }]);
    assert_eq!(h.turn.stats().allocations, 0);
    assert_eq!(h.refresh(&mut c, 0).error_code(), Some(437));
    // A new allocation is possible on the same 5-tuple.
    h.allocate(&mut c);
}

#[test]
fn refresh_extends_and_lifetimes_are_clamped() {
    let (mut h, mut c, _) = allocated(config());
    let lifetime = |got: &Got| got.reply().attribute(attr::LIFETIME).map(<[u8]>::to_vec);
    assert_eq!(
        lifetime(&h.refresh(&mut c, 60)),
        Some(600u32.to_be_bytes().to_vec())
    );
    assert_eq!(
        lifetime(&h.refresh(&mut c, 1800)),
        Some(1800u32.to_be_bytes().to_vec())
    );
    assert_eq!(
        lifetime(&h.refresh(&mut c, 99999)),
        Some(3600u32.to_be_bytes().to_vec())
    );
    h.advance(Duration::from_secs(3000));
    assert_eq!(h.turn.stats().allocations, 1, "refreshed to 3600 s");
    h.advance(Duration::from_secs(601));
    assert_eq!(h.turn.stats().allocations, 0);
}

#[test]
fn allocations_permissions_and_channels_expire() {
    let (mut h, mut c, port) = allocated(config());
    let (p1, p2) = (addr(PEER), addr("93.184.216.35:1"));
    h.create_permission(&mut c, &[p1]);
    h.channel_bind(&mut c, 0x4000, p2);
    let deadline = h.turn.poll_timeout().unwrap();
    assert!(deadline <= h.now + Duration::from_secs(300));

    h.advance(Duration::from_secs(301));
    let send = c.send_indication(p1, b"late");
    assert_eq!(h.send(&c, &send), Got::None, "permission expired");
    assert!(h.peer_sends(port, p1, b"late").is_none());
    assert_eq!(
        h.send(&c, &channel_data(0x4000, b"x", false)),
        Got::None,
        "no permission"
    );
    assert_eq!(h.turn.stats().permissions, 0);
    assert_eq!(h.turn.stats().channels, 1);

    // Refreshed at +301 s: the allocation now lasts until +901 s.
    h.refresh(&mut c, 600);
    h.advance(Duration::from_secs(299));
    assert_eq!(
        h.send(&c, &channel_data(0x4000, b"x", false)),
        Got::None,
        "channel expired"
    );
    assert_eq!(h.turn.stats().channels, 1, "channel in cooldown");
    h.advance(Duration::from_secs(300));
    assert_eq!(h.turn.stats().channels, 0);
    assert!(h.events().is_empty());

    h.advance(Duration::from_secs(1));
    assert_eq!(h.events(), vec![Event::ReleaseRelay { port }]);
    assert_eq!(h.turn.stats().allocations, 0);
    assert!(h.peer_sends(port, p1, b"gone").is_none());
    assert_eq!(h.turn.poll_timeout(), None);
}

#[test]
fn stale_nonce_gets_438_and_a_new_nonce() {
    let (mut h, mut c, _) = allocated(config());
    h.advance(Duration::from_secs(601));
    let bytes = c.request(method::REFRESH, |_| {});
    let got = h.send(&c, &bytes);
    assert_eq!(got.error_code(), Some(438));
    let new_nonce = got.reply().attribute(attr::NONCE).unwrap().to_vec();
    assert_ne!(Some(new_nonce), c.nonce);
    // The harness retries once with the new nonce; the allocation has expired by now.
    assert_eq!(h.refresh(&mut c, 600).error_code(), Some(437));
    assert_eq!(h.turn.stats().auth_failures, 0);
}

#[test]
fn nonce_is_bound_to_the_client_address() {
    let mut h = Harness::new(config());
    let mut c = alice();
    h.allocate(&mut c);
    let mut moved = c.clone();
    moved.addr = addr("198.18.0.5:61001");
    let bytes = moved.request(method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(h.send(&moved, &bytes).error_code(), Some(438));
}

#[test]
fn wrong_password_gets_401_and_other_users_get_441() {
    let mut h = Harness::new(config());
    let mut c = Client::new("198.18.0.5:61000", "alice", "wrong");
    let got = h.request(&mut c, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(401));
    assert!(got.reply().attribute(attr::NONCE).is_some());
    let mut unknown = Client::new("198.18.0.6:61000", "mallory", "x");
    let got = h.request(&mut unknown, method::ALLOCATE, |_| {});
    assert_eq!(got.error_code(), Some(401));
    assert_eq!(h.turn.stats().auth_failures, 2);

    // Valid credentials of another user on alice's allocation: 441.
    let mut alice = alice();
    h.allocate(&mut alice);
    let mut bob = alice.clone();
    bob.username = "bob".into();
    bob.password = "bob-pw".into();
    assert_eq!(h.refresh(&mut bob, 600).error_code(), Some(441));
    assert_eq!(
        h.create_permission(&mut bob, &[addr(PEER)]).error_code(),
        Some(441)
    );
}

#[test]
fn rest_credentials_work_until_they_expire() {
    let mut h = Harness::new(config());
    let (user, pass) = rest_credentials("rest-secret", "carol", UNIX_NOW + 60);
    let mut c = Client::new("198.18.0.7:5000", &user, &pass);
    h.allocate(&mut c);
    let (user, pass) = rest_credentials("rest-secret", "", UNIX_NOW + 60);
    let mut bare = Client::new("198.18.0.8:5000", &user, &pass);
    h.allocate(&mut bare);

    let (user, pass) = rest_credentials("rest-secret", "carol", UNIX_NOW - 1);
    let mut expired = Client::new("198.18.0.9:5000", &user, &pass);
    let got = h.request(&mut expired, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(401));
    let (user, pass) = rest_credentials("wrong-secret", "carol", UNIX_NOW + 60);
    let mut forged = Client::new("198.18.0.10:5000", &user, &pass);
    assert_eq!(
        h.request(&mut forged, method::ALLOCATE, |_| {})
            .error_code(),
        Some(401)
    );

    // Once the credential expires, the live allocation can no longer be refreshed.
    h.advance(Duration::from_secs(61));
    assert_eq!(h.refresh(&mut c, 600).error_code(), Some(401));
    assert_eq!(h.turn.stats().auth_failures, 3);
}

#[test]
fn private_and_loopback_peers_are_forbidden_by_default() {
    let (mut h, mut c, _) = allocated(config());
    for peer in [
        "127.0.0.1:5000",
        "10.0.0.1:5000",
        "192.168.1.1:5000",
        "100.64.0.1:5000",
    ] {
        let got = h.create_permission(&mut c, &[addr(peer)]);
        assert_eq!(got.error_code(), Some(403), "{peer}");
        assert!(got.reply().verify_integrity(&c.key()));
        assert_eq!(
            h.channel_bind(&mut c, 0x4000, addr(peer)).error_code(),
            Some(403)
        );
    }
    // One forbidden peer refuses the whole request.
    let got = h.create_permission(&mut c, &[addr(PEER), addr("10.0.0.1:1")]);
    assert_eq!(got.error_code(), Some(403));
    assert_eq!(h.turn.stats().permissions, 0);
    // The server itself: its listeners and relay ports.
    assert_eq!(
        h.create_permission(&mut c, &[addr("203.0.113.1:3478")])
            .error_code(),
        Some(403)
    );
    assert_eq!(
        h.create_permission(&mut c, &[addr("203.0.113.1:50001")])
            .error_code(),
        Some(403)
    );
    assert_eq!(h.turn.stats().forbidden_peers, 11);
    // IPv6 peers on an IPv4 relay: 443.
    assert_eq!(
        h.create_permission(&mut c, &[addr("[2001:db8::1]:1")])
            .error_code(),
        Some(443)
    );
}

#[test]
fn allow_list_and_own_media_open_the_way() {
    let mut config = config();
    config.allow_peers = vec!["127.0.0.0/8".parse().unwrap()];
    config.deny_peers = vec!["127.0.0.66/32".parse().unwrap()];
    config.own_media = vec![addr("10.0.0.2:8801")];
    let (mut h, mut c, port) = allocated(config);
    let loopback = addr("127.0.0.1:5000");
    assert_eq!(
        h.create_permission(&mut c, &[loopback]).reply().class(),
        Class::Success
    );
    assert_eq!(
        h.create_permission(&mut c, &[addr("127.0.0.66:1")])
            .error_code(),
        Some(403)
    );
    let sfu = addr("10.0.0.2:8801");
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, sfu).reply().class(),
        Class::Success
    );
    assert_eq!(
        h.create_permission(&mut c, &[addr("10.0.0.2:8802")])
            .error_code(),
        Some(403)
    );
    let got = h.send(&c, &channel_data(0x4000, b"rtp", false));
    assert_eq!(
        got,
        Got::ToPeer {
            relay_port: port,
            peer: sfu,
            payload: b"rtp".to_vec()
        }
    );
}

#[test]
fn allocation_quota_gives_486() {
    let mut config = config();
    config.max_allocations_per_user = 2;
    let mut h = Harness::new(config);
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::new(&format!("198.18.0.5:{}", 6000 + i), "alice", "secret-pw"))
        .collect();
    h.allocate(&mut clients[0]);
    h.allocate(&mut clients[1]);
    let got = h.request(&mut clients[2], method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(486));
    assert_eq!(h.turn.stats().quota_refusals, 1);
    // REST names count against the user after the expiry.
    let (user, pass) = rest_credentials("rest-secret", "alice", UNIX_NOW + 600);
    let mut rest = Client::new("198.18.0.9:1", &user, &pass);
    let got = h.request(&mut rest, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(486));
    // Freeing one makes room.
    h.refresh(&mut clients[0], 0);
    h.allocate(&mut clients[2]);
}

/// Fresh identities (guests) do not multiply what one address may hold, and the server as a
/// whole has a cap (508 Insufficient Capacity).
#[test]
fn address_and_server_caps_bound_allocations_whatever_the_user() {
    let mut config = config();
    config.max_allocations_per_address = 2;
    config.max_allocations = 3;
    let mut h = Harness::new(config);
    let guest = |addr: &str, i: usize| {
        let (user, pass) = rest_credentials("rest-secret", &format!("guest-{i}"), UNIX_NOW + 600);
        Client::new(addr, &user, &pass)
    };
    let mut same_address: Vec<Client> = (0..3)
        .map(|i| guest(&format!("198.18.0.5:{}", 7000 + i), i))
        .collect();
    h.allocate(&mut same_address[0]);
    h.allocate(&mut same_address[1]);
    let got = h.request(&mut same_address[2], method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(486), "per address");
    let mut elsewhere = [guest("198.18.0.6:7000", 10), guest("198.18.0.7:7000", 11)];
    h.allocate(&mut elsewhere[0]);
    let got = h.request(&mut elsewhere[1], method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(508), "server-wide");
    assert_eq!(h.turn.stats().quota_refusals, 1);
    h.refresh(&mut same_address[0], 0);
    h.allocate(&mut elsewhere[1]);
}

#[test]
fn even_port_with_r_reserves_the_next_port_for_its_token() {
    let mut h = Harness::new(config());
    let mut rtp = alice();
    let got = h.request(&mut rtp, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attribute(attr::EVEN_PORT, &[0x80]);
    });
    let msg = got.reply();
    let relayed = decode_xor_address(
        msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap(),
        msg.transaction_id(),
    )
    .unwrap();
    let token = msg
        .attribute(attr::RESERVATION_TOKEN)
        .expect("a reservation token")
        .to_vec();
    let mut rtcp = alice();
    rtcp.addr.set_port(rtcp.addr.port() + 1);
    let got = h.request(&mut rtcp, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attribute(attr::RESERVATION_TOKEN, &token);
    });
    let msg = got.reply();
    let second = decode_xor_address(
        msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap(),
        msg.transaction_id(),
    )
    .unwrap();
    assert_eq!(second.port(), relayed.port() + 1);
    // A token is good once.
    let mut third = alice();
    third.addr.set_port(third.addr.port() + 2);
    let got = h.request(&mut third, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attribute(attr::RESERVATION_TOKEN, &token);
    });
    assert_eq!(got.error_code(), Some(508));
}

#[test]
fn even_port_gets_an_even_relay_port() {
    for n in 0..8 {
        let mut h = Harness::new(config());
        let mut c = alice();
        c.addr.set_port(40_000 + n);
        let got = h.request(&mut c, method::ALLOCATE, |w| {
            w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
                .attribute(attr::EVEN_PORT, &[0x80]);
        });
        let msg = got.reply();
        assert_eq!(msg.class(), Class::Success);
        let relayed = decode_xor_address(
            msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap(),
            msg.transaction_id(),
        )
        .unwrap();
        assert_eq!(relayed.port() % 2, 0, "{relayed}");
    }
}

#[test]
fn allocate_checks_transport_and_attributes() {
    let mut h = Harness::new(config());
    let mut c = alice();
    let got = h.request(&mut c, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 6 << 24);
    });
    assert_eq!(got.error_code(), Some(442));
    assert_eq!(
        h.request(&mut c, method::ALLOCATE, |_| {}).error_code(),
        Some(400)
    );
    let got = h.request(&mut c, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24).u32(0x0027, 0); // RESPONSE-PORT: not supported
    });
    assert_eq!(got.error_code(), Some(420));
    assert_eq!(
        got.reply().attribute(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x00, 0x27][..])
    );
    let got = h.request(&mut c, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .u32(attr::REQUESTED_ADDRESS_FAMILY, 0x02 << 24);
    });
    assert_eq!(got.error_code(), Some(440));
    let got = h.request(&mut c, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attribute(attr::DONT_FRAGMENT, b"");
    });
    assert_eq!(
        got.reply().class(),
        Class::Success,
        "DONT-FRAGMENT is accepted"
    );
    assert!(h.turn.stats().allocations == 1);
    // A different transaction on the same 5-tuple: 437.
    assert_eq!(
        h.request(&mut c, method::ALLOCATE, |w| {
            w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
        })
        .error_code(),
        Some(437)
    );
    // An unknown method: 400.
    assert_eq!(h.request(&mut c, 0x0ABC, |_| {}).error_code(), Some(400));
}

#[test]
fn allocate_retransmission_gets_the_same_answer() {
    let mut h = Harness::new(config());
    let mut c = alice();
    h.allocate(&mut c);
    let _ = h.events();
    // A second client sends the same Allocate twice.
    let mut d = Client::new("198.18.0.5:7000", "alice", "secret-pw");
    let got = h.request(&mut d, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    let first = got
        .reply()
        .attribute(attr::XOR_RELAYED_ADDRESS)
        .unwrap()
        .to_vec();
    let txid = *got.reply().transaction_id();
    let again = d.request_with_txid(method::ALLOCATE, txid, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    let got = h.send(&d, &again);
    assert_eq!(
        got.reply().attribute(attr::XOR_RELAYED_ADDRESS),
        Some(&first[..])
    );
    assert_eq!(h.events().len(), 1, "one bind only");
}

#[test]
fn relay_bind_failure_moves_then_gives_up() {
    let mut h = Harness::new(config());
    let mut c = alice();
    let relayed = h.allocate(&mut c);
    let Event::BindRelay { port } = h.events()[0] else {
        panic!()
    };
    assert_eq!(port, relayed.port());
    let mut out = [0u8; 1500];

    let to = h.turn.relay_bind_failed(port, &mut out).unwrap();
    assert_eq!((to.local, to.client), (c.local, c.addr));
    let msg = Message::parse(&out[..to.len]).unwrap();
    assert_eq!(msg.class(), Class::Success);
    assert!(msg.verify_integrity(&c.key()));
    let moved = decode_xor_address(
        msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap(),
        msg.transaction_id(),
    );
    let Event::BindRelay { port: second } = h.events()[0] else {
        panic!()
    };
    assert_eq!(moved.unwrap().port(), second);
    assert_ne!(second, port);

    let to = h.turn.relay_bind_failed(second, &mut out).unwrap();
    let Event::BindRelay { port: third } = h.events()[0] else {
        panic!()
    };
    assert!(Message::parse(&out[..to.len]).is_ok());
    let to = h.turn.relay_bind_failed(third, &mut out).unwrap();
    let msg = Message::parse(&out[..to.len]).unwrap();
    assert_eq!(error_code(&msg), Some(508));
    assert!(h.events().is_empty());
    assert_eq!(h.turn.stats().allocations, 0);
    assert_eq!(h.turn.stats().relay_bind_failures, 3);
    assert!(h.turn.relay_bind_failed(third, &mut out).is_none());
    // The quota was given back.
    h.allocate(&mut alice());
}

#[test]
fn no_free_relay_port_gives_508() {
    let mut config = config();
    config.relay_ports = 50000..=50000;
    let mut h = Harness::new(config);
    h.allocate(&mut alice());
    let mut other = Client::new("198.18.0.5:9", "bob", "bob-pw");
    let got = h.request(&mut other, method::ALLOCATE, |w| {
        w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
    });
    assert_eq!(got.error_code(), Some(508));
}

#[test]
fn bandwidth_cap_drops_and_counts() {
    let mut config = config();
    config.max_bandwidth_per_allocation = Some(1000);
    let (mut h, mut c, port) = allocated(config);
    let peer = addr(PEER);
    h.channel_bind(&mut c, 0x4000, peer);
    let payload = [7u8; 400];
    let sent = (0..5)
        .filter(|_| h.send(&c, &channel_data(0x4000, &payload, false)) != Got::None)
        .count();
    assert_eq!(sent, 2);
    assert!(h.peer_sends(port, peer, &payload).is_none());
    assert_eq!(h.turn.stats().dropped_bandwidth, 4);
    h.advance(Duration::from_millis(500));
    assert!(h.peer_sends(port, peer, &payload).is_some());
}

#[test]
fn change_request_answers_from_the_other_sockets() {
    let mut config = config();
    config.alternate = Some(addr("203.0.113.2:3479"));
    let sockets = config.discovery_sockets().unwrap();
    assert_eq!(
        sockets,
        [
            addr("203.0.113.1:3478"),
            addr("203.0.113.1:3479"),
            addr("203.0.113.2:3478"),
            addr("203.0.113.2:3479")
        ]
    );
    let mut h = Harness::new(config);
    let mut c = alice();
    let cases = [
        // (received on, change IP, change port, sent from, OTHER-ADDRESS)
        (sockets[0], false, false, sockets[0], sockets[3]),
        (sockets[0], true, true, sockets[3], sockets[3]),
        (sockets[0], false, true, sockets[1], sockets[3]),
        (sockets[0], true, false, sockets[2], sockets[3]),
        (sockets[3], true, false, sockets[1], sockets[0]),
        (sockets[1], false, true, sockets[0], sockets[2]),
    ];
    for (local, ip, port, from, other) in cases {
        c.local = local;
        let flags = (u32::from(ip) << 2) | (u32::from(port) << 1);
        let bytes = c.request(method::BINDING, |w| {
            w.u32(attr::CHANGE_REQUEST, flags);
        });
        let got = h.send(&c, &bytes);
        let Got::Reply {
            from: sent_from, ..
        } = &got
        else {
            panic!("{got:?}")
        };
        assert_eq!(*sent_from, from, "{local} ip={ip} port={port}");
        let msg = got.reply();
        assert_eq!(plain_address(&msg, attr::RESPONSE_ORIGIN), Some(from));
        assert_eq!(plain_address(&msg, attr::OTHER_ADDRESS), Some(other));
    }
    // CHANGE-REQUEST over TCP cannot be honoured.
    c.transport = Transport::Tcp;
    c.local = sockets[0];
    let bytes = c.request(method::BINDING, |w| {
        w.u32(attr::CHANGE_REQUEST, 0x6);
    });
    assert_eq!(h.send(&c, &bytes).error_code(), Some(400));
}

#[test]
fn change_request_without_alternate_is_unknown() {
    let mut h = Harness::new(config());
    let mut c = alice();
    let bytes = c.request(method::BINDING, |w| {
        w.u32(attr::CHANGE_REQUEST, 0x4);
    });
    let got = h.send(&c, &bytes);
    assert_eq!(got.error_code(), Some(420));
    assert_eq!(
        got.reply().attribute(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x00, 0x03][..])
    );
}

#[test]
fn failed_authentication_is_rate_limited_per_ip() {
    let mut config = config();
    config.max_auth_failures = 3;
    config.auth_block = Duration::from_secs(30);
    let mut h = Harness::new(config);
    let mut bad = Client::new("198.18.0.66:1000", "alice", "guess");
    for _ in 0..3 {
        bad.nonce = None;
        let got = h.request(&mut bad, method::ALLOCATE, |_| {});
        assert_eq!(got.error_code(), Some(401));
    }
    // Blocked: TURN requests from that IP, any port, get no answer at all.
    bad.nonce = None;
    assert_eq!(h.request(&mut bad, method::ALLOCATE, |_| {}), Got::None);
    let mut same_ip = Client::new("198.18.0.66:2000", "alice", "secret-pw");
    assert_eq!(h.request(&mut same_ip, method::ALLOCATE, |_| {}), Got::None);
    // Binding still works, and other IPs are unaffected.
    assert_eq!(
        h.request(&mut same_ip, method::BINDING, |_| {})
            .reply()
            .class(),
        Class::Success
    );
    h.allocate(&mut alice());
    let stats = h.turn.stats();
    assert_eq!(
        (
            stats.auth_failures,
            stats.auth_blocks,
            stats.dropped_auth_blocked
        ),
        (3, 1, 2)
    );

    h.advance(Duration::from_secs(30));
    let mut same_ip = Client::new("198.18.0.66:2000", "alice", "secret-pw");
    h.allocate(&mut same_ip);
}

#[test]
fn garbage_and_stray_messages_are_counted() {
    let mut h = Harness::new(config());
    let c = alice();
    for bytes in [
        &b""[..],
        b"\x80garbage",
        b"\x00\x01\x00",
        b"\x40\x00\x00\x09abc",
    ] {
        assert_eq!(h.send(&c, bytes), Got::None);
    }
    let mut buf = [0u8; 64];
    let mut w = stoa_turn::stun::Writer::new(&mut buf, method::BINDING, Class::Success, &[0; 12]);
    w.fingerprint();
    let n = w.finish().unwrap();
    assert_eq!(h.send(&c, &buf[..n]), Got::None);
    assert_eq!(h.turn.stats().dropped_malformed, 5);
    // ChannelData without an allocation.
    assert_eq!(h.send(&c, &channel_data(0x4000, b"x", false)), Got::None);
    assert_eq!(h.turn.stats().dropped_unauthorized, 1);
}

#[test]
fn lapsed_allocation_is_gone_before_the_sweep() {
    let (mut h, mut c, port) = allocated(config());
    let peer = addr(PEER);
    h.create_permission(&mut c, &[peer]);
    // Time passes without handle_timeout being called.
    h.now += Duration::from_secs(600);
    let send = c.send_indication(peer, b"late");
    assert_eq!(h.send(&c, &send), Got::None);
    assert!(h.peer_sends(port, peer, b"late").is_none());
    // A new Allocate on the same 5-tuple replaces it.
    c.nonce = None;
    let relayed = h.allocate(&mut c);
    assert_eq!(
        h.events(),
        vec![
            Event::ReleaseRelay { port },
            Event::BindRelay {
                port: relayed.port()
            }
        ]
    );
}
