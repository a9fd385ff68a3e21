//! Stoa's STUN/TURN server core: an I/O-free state machine for STUN Binding (RFC 8489),
//! NAT behaviour discovery (RFC 5780) and TURN relaying over UDP (RFC 8656) for clients on
//! UDP, TCP or TLS, with long-term and TURN REST API credentials.
//!
//! [`TurnServer`] opens no sockets, reads no clock, spawns no threads and uses no global
//! randomness: time comes in as arguments, randomness from the seed given to
//! [`TurnServer::new`]. Relaying (ChannelData, Send and Data indications) does not allocate.
//!
//! Module map: [`stun`] is the message codec, [`channel`] ChannelData and TCP framing,
//! [`cidr`] IP networks for the peer lists; inside, `auth` holds credentials and nonces,
//! `policy` decides which peers may be relayed to, `quota` counts allocations per user,
//! client address and server against their caps, `allocation` holds one allocation's
//! permissions and channels, `limit` the rate limits, `request` gathers a request's attributes,
//! and `server` the state machine.
//!
//! # Driving it
//!
//! The I/O layer owns the listeners (with RFC 5780, a UDP socket on each of
//! [`TurnConfig::discovery_sockets`]; TCP/TLS listeners split streams with [`frame_len`])
//! and one UDP socket per relay port. The contract:
//!
//! - Every client message goes to [`TurnServer::handle_client`] with the transport, the local
//!   address it arrived on (the concrete address, not a wildcard) and the client's address.
//! - After every call, drain [`TurnServer::poll_event`] **before** acting on the returned
//!   reply: bind a UDP socket for each [`Event::BindRelay`] at once; if that fails call
//!   [`TurnServer::relay_bind_failed`], which writes a replacement reply (a success on a new
//!   port, with a new `BindRelay` to drain, or a 508) to send instead. Close the socket of each
//!   [`Event::ReleaseRelay`].
//! - Datagrams arriving on a relay socket go to [`TurnServer::handle_peer`].
//! - Call [`TurnServer::handle_timeout`] when [`TurnServer::poll_timeout`] says, and
//!   [`TurnServer::client_closed`] when a TCP/TLS client connection ends.
//! - Buffers: `out` of 1500 bytes suits UDP; for TCP/TLS and large peer datagrams give the
//!   payload size plus 48 bytes (a message that does not fit is dropped and counted). The
//!   relay socket should bind the port on the machine's address behind `relay_ip` (which may
//!   be a public address in front of a NAT).
//! - TCP/TLS: [`frame_len`] on the start of the stream buffer gives the size of the next
//!   message (ChannelData padding included); pass exactly that many bytes to `handle_client`.
//!   ChannelData written for TCP/TLS clients is padded, so write `out[..len]` as is.
//!
//! Not implemented: TCP relays (RFC 6062), IPv6 relayed addresses alongside IPv4
//! (ADDITIONAL-ADDRESS-FAMILY is ignored; an IPv6 `relay_ip` gives IPv6-only relays), EVEN-PORT's
//! reservation (R bit) and RESERVATION-TOKEN (answered 420), MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHMS and
//! USERHASH, SASLprep of passwords, RESPONSE-PORT and PADDING (RFC 5780; answered 420),
//! setting the DF bit (DONT-FRAGMENT is accepted and ignored).
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use stoa_turn::{ClientAction, Event, Transport, TurnConfig, TurnServer};
//! use stoa_turn::stun::{method, Class, Writer};
//!
//! let config = TurnConfig::default();
//! let local = config.primary;
//! let mut turn = TurnServer::new(config, 42);
//! let client: SocketAddr = "192.0.2.7:40000".parse().unwrap();
//!
//! // A Binding request, as a client would send it.
//! let mut request = [0u8; 64];
//! let len = Writer::new(&mut request, method::BINDING, Class::Request, &[1; 12]).finish().unwrap();
//!
//! let mut out = [0u8; 2048];
//! let now = Instant::now();
//! let action = turn.handle_client(now, 1_700_000_000, Transport::Udp, local, client,
//!                                 &request[..len], &mut out);
//! while let Some(event) = turn.poll_event() {
//!     match event {
//!         Event::BindRelay { port } => { /* bind UDP relay_ip:port, else relay_bind_failed */ }
//!         Event::ReleaseRelay { port } => { /* close it */ }
//!     }
//! }
//! match action {
//!     ClientAction::Reply { from, len } => { /* send out[..len] from `from` to client */
//!         assert_eq!(from, local);
//!         assert!(len > 20);
//!     }
//!     ClientAction::ToPeer { relay_port, peer, payload } => { /* send from relay socket */ }
//!     ClientAction::None => {}
//! }
//! ```

mod allocation;
mod auth;
pub mod channel;
pub mod cidr;
mod config;
mod limit;
mod policy;
mod quota;
mod request;
mod server;
pub mod stun;

pub use allocation::{CHANNEL_LIFETIME, PERMISSION_LIFETIME};
pub use auth::{long_term_key, rest_credentials};
pub use channel::{frame_len, FrameLen};
pub use cidr::Cidr;
pub use config::{Transport, TurnConfig};
pub use server::{ClientAction, Event, ToClient, TurnServer, TurnStats};
