//! A tiny TURN client and harness for driving a `TurnServer` in simulated time.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stoa_turn::stun::{attr, decode_address, decode_xor_address, method, Class, Message, Writer};
use stoa_turn::{long_term_key, ClientAction, Event, ToClient, Transport, TurnConfig, TurnServer};

pub const REALM: &str = "stoa.test";
pub const UNIX_NOW: u64 = 1_700_000_000;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A config with one user `alice:secret-pw`, a REST secret, a relay on 203.0.113.1.
pub fn config() -> TurnConfig {
    TurnConfig {
        realm: REALM.to_owned(),
        relay_ip: "203.0.113.1".parse().unwrap(),
        relay_ports: 50000..=50099,
        primary: addr("203.0.113.1:3478"),
        listen: vec![addr("203.0.113.1:3478"), addr("203.0.113.1:443")],
        users: vec![
            ("alice".into(), "secret-pw".into()),
            ("bob".into(), "bob-pw".into()),
        ],
        secret: Some("rest-secret".into()),
        ..TurnConfig::default()
    }
}

/// What the server did with one input, with the bytes copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    None,
    Reply {
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    ToPeer {
        relay_port: u16,
        peer: SocketAddr,
        payload: Vec<u8>,
    },
}

impl Got {
    pub fn reply(&self) -> Message<'_> {
        match self {
            Got::Reply { bytes, .. } => Message::parse(bytes).expect("reply parses"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// The ERROR-CODE of a reply; `None` for success or no reply.
    pub fn error_code(&self) -> Option<u16> {
        match self {
            Got::Reply { bytes, .. } => error_code(&Message::parse(bytes).ok()?),
            _ => None,
        }
    }
}

pub fn error_code(msg: &Message<'_>) -> Option<u16> {
    let v = msg.attribute(attr::ERROR_CODE)?;
    Some(u16::from(v[2] & 0x7) * 100 + u16::from(v[3]))
}

pub struct Harness {
    pub turn: TurnServer,
    pub now: Instant,
    pub unix: u64,
    out: Vec<u8>,
}

impl Harness {
    pub fn new(config: TurnConfig) -> Self {
        Self {
            turn: TurnServer::new(config, 7),
            now: Instant::now(),
            unix: UNIX_NOW,
            out: vec![0; 4096],
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.unix += d.as_secs();
        if self.turn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.turn.handle_timeout(self.now);
        }
    }

    pub fn send(&mut self, c: &Client, bytes: &[u8]) -> Got {
        let action = self.turn.handle_client(
            self.now,
            self.unix,
            c.transport,
            c.local,
            c.addr,
            bytes,
            &mut self.out,
        );
        match action {
            ClientAction::None => Got::None,
            ClientAction::Reply { from, len } => Got::Reply {
                from,
                bytes: self.out[..len].to_vec(),
            },
            ClientAction::ToPeer {
                relay_port,
                peer,
                payload,
            } => Got::ToPeer {
                relay_port,
                peer,
                payload: payload.to_vec(),
            },
        }
    }

    pub fn peer_sends(
        &mut self,
        relay_port: u16,
        peer: SocketAddr,
        data: &[u8],
    ) -> Option<(ToClient, Vec<u8>)> {
        let to = self
            .turn
            .handle_peer(self.now, relay_port, peer, data, &mut self.out)?;
        Some((to, self.out[..to.len].to_vec()))
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.turn.poll_event()).collect()
    }

    /// Sends a request from `c`, answering a 401 or 438 challenge once.
    pub fn request(&mut self, c: &mut Client, m: u16, f: impl Fn(&mut Writer)) -> Got {
        let bytes = c.request(m, &f);
        let got = self.send(c, &bytes);
        if matches!(got.error_code(), Some(401 | 438)) && c.learn_challenge(&got.reply()) {
            let bytes = c.request(m, &f);
            return self.send(c, &bytes);
        }
        got
    }

    /// Allocates a UDP relay; returns the relayed address.
    pub fn allocate(&mut self, c: &mut Client) -> SocketAddr {
        let got = self.request(c, method::ALLOCATE, |w| {
            w.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
        });
        let msg = got.reply();
        assert_eq!(
            msg.class(),
            Class::Success,
            "allocate failed: {:?}",
            error_code(&msg)
        );
        assert!(msg.verify_integrity(&c.key()));
        let v = msg.attribute(attr::XOR_RELAYED_ADDRESS).unwrap();
        decode_xor_address(v, msg.transaction_id()).unwrap()
    }

    pub fn create_permission(&mut self, c: &mut Client, peers: &[SocketAddr]) -> Got {
        self.request(c, method::CREATE_PERMISSION, |w| {
            for p in peers {
                w.xor_address(attr::XOR_PEER_ADDRESS, *p);
            }
        })
    }

    pub fn channel_bind(&mut self, c: &mut Client, number: u16, peer: SocketAddr) -> Got {
        self.request(c, method::CHANNEL_BIND, |w| {
            w.u32(attr::CHANNEL_NUMBER, u32::from(number) << 16);
            w.xor_address(attr::XOR_PEER_ADDRESS, peer);
        })
    }

    pub fn refresh(&mut self, c: &mut Client, lifetime: u32) -> Got {
        self.request(c, method::REFRESH, |w| {
            w.u32(attr::LIFETIME, lifetime);
        })
    }
}

/// A client: its addresses, credentials, and the realm and nonce it learned.
#[derive(Debug, Clone)]
pub struct Client {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub local: SocketAddr,
    pub username: String,
    pub password: String,
    pub realm: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
    txid: u32,
}

impl Client {
    pub fn new(addr: &str, username: &str, password: &str) -> Self {
        Self {
            transport: Transport::Udp,
            addr: self::addr(addr),
            local: config().primary,
            username: username.into(),
            password: password.into(),
            realm: None,
            nonce: None,
            txid: 0,
        }
    }

    pub fn key(&self) -> [u8; 16] {
        long_term_key(
            self.username.as_bytes(),
            REALM.as_bytes(),
            self.password.as_bytes(),
        )
    }

    pub fn next_txid(&mut self) -> [u8; 12] {
        self.txid += 1;
        let mut id = [0xA5; 12];
        id[8..].copy_from_slice(&self.txid.to_be_bytes());
        id
    }

    /// A request; authenticated once a realm and nonce are known.
    pub fn request(&mut self, m: u16, f: impl Fn(&mut Writer)) -> Vec<u8> {
        let txid = self.next_txid();
        self.request_with_txid(m, txid, f)
    }

    pub fn request_with_txid(&self, m: u16, txid: [u8; 12], f: impl Fn(&mut Writer)) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf, m, Class::Request, &txid);
        f(&mut w);
        if let (Some(realm), Some(nonce)) = (&self.realm, &self.nonce) {
            w.attribute(attr::USERNAME, self.username.as_bytes());
            w.attribute(attr::REALM, realm);
            w.attribute(attr::NONCE, nonce);
            w.integrity(&self.key());
        }
        w.fingerprint();
        let n = w.finish().unwrap();
        buf[..n].to_vec()
    }

    /// Takes REALM and NONCE from a 401/438; false if the nonce did not change (a repeat would
    /// fail the same way).
    pub fn learn_challenge(&mut self, msg: &Message<'_>) -> bool {
        let nonce = msg.attribute(attr::NONCE).map(<[u8]>::to_vec);
        let had_auth = self.nonce.is_some();
        let changed = nonce != self.nonce;
        self.realm = msg.attribute(attr::REALM).map(<[u8]>::to_vec);
        self.nonce = nonce;
        !had_auth || (changed && error_code(msg) == Some(438))
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        let txid = self.next_txid();
        let mut buf = vec![0u8; 2048];
        let mut w = Writer::new(&mut buf, method::SEND, Class::Indication, &txid);
        w.xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attribute(attr::DATA, data);
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }
}

/// ChannelData bytes, padded to 4 if `pad`.
pub fn channel_data(number: u16, payload: &[u8], pad: bool) -> Vec<u8> {
    let mut v = number.to_be_bytes().to_vec();
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    while pad && !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// The peer address and data of a Data indication.
pub fn parse_data_indication(bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    let msg = Message::parse(bytes).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (method::DATA, Class::Indication)
    );
    let peer = decode_xor_address(
        msg.attribute(attr::XOR_PEER_ADDRESS).unwrap(),
        msg.transaction_id(),
    );
    (peer.unwrap(), msg.attribute(attr::DATA).unwrap().to_vec())
}

pub fn plain_address(msg: &Message<'_>, typ: u16) -> Option<SocketAddr> {
    decode_address(msg.attribute(typ)?)
}
