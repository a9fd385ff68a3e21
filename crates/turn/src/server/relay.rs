//! The relay hot path (RFC 8656 §10–12): ChannelData and Send indications from clients to
//! peers, and peer datagrams back as ChannelData or Data indications. No heap allocation:
//! payloads to peers are borrowed from the input, messages to clients written into the
//! caller's buffer.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::{ClientAction, ToClient, TurnServer, TurnStats};
use crate::allocation::{Allocation, FiveTuple};
use crate::channel;
use crate::policy::canonical;
use crate::request::Attrs;
use crate::stun::{attr, method, Class, Message, Writer};

impl TurnServer {
    /// ChannelData from a client: to the peer bound to the channel.
    pub(super) fn channel_data<'a>(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &'a [u8],
    ) -> ClientAction<'a> {
        let Some((number, payload)) = channel::parse(data) else {
            return self.malformed();
        };
        let stats = &mut self.stats;
        let alloc = live(self.allocations.get_mut(&tuple), now);
        match alloc.and_then(|a| Some((a.channel_peer(number, now)?, a))) {
            Some((peer, alloc)) => forward(stats, alloc, now, peer, payload),
            None => unauthorized(stats),
        }
    }

    /// A Send indication: DATA to XOR-PEER-ADDRESS.
    pub(super) fn send_indication<'a>(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'a>,
    ) -> ClientAction<'a> {
        let attrs = Attrs::collect(msg, false);
        let (Some(peer), Some(payload)) = (attrs.peer, attrs.data) else {
            return self.malformed();
        };
        if attrs.malformed || !attrs.unknown().is_empty() {
            return self.malformed();
        }
        let stats = &mut self.stats;
        match live(self.allocations.get_mut(&tuple), now) {
            Some(alloc) => forward(stats, alloc, now, peer, payload),
            None => unauthorized(stats),
        }
    }

    /// A datagram that arrived on the relay socket bound for `relay_port` from `peer`: to the
    /// client as ChannelData if a channel is bound to `peer`, else as a Data indication.
    /// Dropped (and counted) without an allocation or permission, over the bandwidth cap, or
    /// if it does not fit `out` (give it the payload length plus 48 bytes).
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay_port: u16,
        peer: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Option<ToClient> {
        let peer = canonical(peer);
        let stats = &mut self.stats;
        let tuple = self.by_port.get(&relay_port).copied();
        let alloc = tuple.and_then(|t| live(self.allocations.get_mut(&t), now));
        let (Some(tuple), Some(alloc)) = (tuple, alloc) else {
            unauthorized(stats);
            return None;
        };
        if !admit(stats, alloc, now, peer, data.len()) {
            return None;
        }
        let len = match alloc.peer_channel(peer, now) {
            Some(number) => channel::write(out, number, data, tuple.transport.is_stream()),
            None => data_indication(out, self.rng.random(), peer, data),
        };
        let Some(len) = len else {
            stats.dropped_too_large += 1;
            return None;
        };
        stats.packets_to_clients += 1;
        stats.bytes_to_clients += data.len() as u64;
        Some(ToClient {
            transport: tuple.transport,
            local: tuple.local,
            client: tuple.client,
            len,
        })
    }
}

/// The allocation if it has not expired (the sweep may not have run yet).
fn live(alloc: Option<&mut Allocation>, now: Instant) -> Option<&mut Allocation> {
    alloc.filter(|a| now < a.expires)
}

/// Relayed data needs a permission for the peer and room under the bandwidth cap.
fn admit(
    stats: &mut TurnStats,
    alloc: &mut Allocation,
    now: Instant,
    peer: SocketAddr,
    len: usize,
) -> bool {
    if !alloc.permits(peer.ip(), now) {
        stats.dropped_unauthorized += 1;
        return false;
    }
    if !alloc.charge(now, len) {
        stats.dropped_bandwidth += 1;
        return false;
    }
    true
}

fn forward<'a>(
    stats: &mut TurnStats,
    alloc: &mut Allocation,
    now: Instant,
    peer: SocketAddr,
    payload: &'a [u8],
) -> ClientAction<'a> {
    if !admit(stats, alloc, now, peer, payload.len()) {
        return ClientAction::None;
    }
    stats.packets_to_peers += 1;
    stats.bytes_to_peers += payload.len() as u64;
    ClientAction::ToPeer {
        relay_port: alloc.relay_port,
        peer,
        payload,
    }
}

fn unauthorized<'a>(stats: &mut TurnStats) -> ClientAction<'a> {
    stats.dropped_unauthorized += 1;
    ClientAction::None
}

/// A Data indication carrying `data` from `peer`.
fn data_indication(out: &mut [u8], txid: [u8; 12], peer: SocketAddr, data: &[u8]) -> Option<usize> {
    let mut w = Writer::new(out, method::DATA, Class::Indication, &txid);
    w.xor_address(attr::XOR_PEER_ADDRESS, peer);
    w.attribute(attr::DATA, data);
    w.finish()
}
