//! Authenticated TURN requests (RFC 8656): the long-term credential check with its 401/438
//! challenges and per-IP failure limit, then Allocate, Refresh, CreatePermission and
//! ChannelBind.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{sign, ClientAction, Event, TurnServer};
use crate::allocation::{Allocation, FiveTuple};
use crate::auth::Key;
use crate::channel::CHANNELS;
use crate::limit::TokenBucket;
use crate::quota::Caps;
use crate::request::{family, peer_addresses, Attrs, FAMILY_IPV4, PROTOCOL_UDP};
use crate::stun::{attr, method, Class, Message, Writer};
use rand::Rng;

/// How long a port reserved by EVEN-PORT (R bit) waits for the allocation that claims it.
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// A request whose MESSAGE-INTEGRITY checked out.
struct Authed<'m> {
    key: Key,
    username: &'m [u8],
}

/// The response to write: success with attributes, or an error code.
type Outcome = Result<(), u16>;

impl TurnServer {
    /// Any request other than Binding.
    pub(super) fn turn_request<'a>(
        &mut self,
        now: Instant,
        unix_secs: u64,
        tuple: FiveTuple,
        msg: &Message<'a>,
        out: &mut [u8],
    ) -> ClientAction<'a> {
        if self.limiter.is_blocked(tuple.client.ip(), now) {
            self.stats.dropped_auth_blocked += 1;
            return ClientAction::None;
        }
        let len = self.authenticated_request(now, unix_secs, tuple, msg, out);
        self.reply(tuple.local, len)
    }

    fn authenticated_request(
        &mut self,
        now: Instant,
        unix_secs: u64,
        tuple: FiveTuple,
        msg: &Message<'_>,
        out: &mut [u8],
    ) -> Option<usize> {
        let attrs = Attrs::collect(msg, false);
        let known = matches!(
            msg.method(),
            method::ALLOCATE | method::REFRESH | method::CREATE_PERMISSION | method::CHANNEL_BIND
        );
        if !known || attrs.malformed {
            return error(out, msg, 400, None);
        }
        self.delete_lapsed(tuple, now);
        let auth = match self.authenticate(now, unix_secs, tuple.client, msg, &attrs, out) {
            Ok(auth) => auth,
            Err(len) => return len,
        };
        if !attrs.unknown().is_empty() {
            let mut w = Writer::new(out, msg.method(), Class::Error, msg.transaction_id());
            w.error_code(420);
            let (list, len) = unknown_list(attrs.unknown());
            w.attribute(attr::UNKNOWN_ATTRIBUTES, &list[..len]);
            return sign(w, Some(&auth.key));
        }
        match msg.method() {
            method::ALLOCATE => self.allocate(now, tuple, msg, &attrs, &auth, out),
            method::REFRESH => self.refresh(now, tuple, msg, &attrs, &auth, out),
            method::CREATE_PERMISSION => {
                let outcome = self.create_permission(now, tuple, msg, &auth);
                self.finish(out, msg, &auth, outcome)
            }
            _ => {
                let outcome = self.channel_bind(now, tuple, &attrs, &auth);
                self.finish(out, msg, &auth, outcome)
            }
        }
    }

    /// Deletes the allocation of `tuple` if it has expired but not been swept yet, so the
    /// request sees the 5-tuple as free.
    fn delete_lapsed(&mut self, tuple: FiveTuple, now: Instant) {
        if self
            .allocations
            .get(&tuple)
            .is_some_and(|a| now >= a.expires)
        {
            self.delete_allocation(tuple);
        }
    }

    /// The long-term credential check (RFC 8489 §9.2.4). On failure, the error response is
    /// already written and its length is the `Err`.
    fn authenticate<'m>(
        &mut self,
        now: Instant,
        unix_secs: u64,
        client: SocketAddr,
        msg: &Message<'m>,
        attrs: &Attrs<'m>,
        out: &mut [u8],
    ) -> Result<Authed<'m>, Option<usize>> {
        if !attrs.integrity {
            return Err(self.challenge(now, client, msg, 401, out));
        }
        let (Some(username), Some(_), Some(nonce)) = (attrs.username, attrs.realm, attrs.nonce)
        else {
            return Err(error(out, msg, 400, None));
        };
        if !self.nonces.is_valid(now, client, nonce) {
            return Err(self.challenge(now, client, msg, 438, out));
        }
        match self.credentials.key(username, unix_secs) {
            Some(key) if msg.verify_integrity(&key) => Ok(Authed { key, username }),
            _ => {
                self.auth_failed(now, client.ip());
                Err(self.challenge(now, client, msg, 401, out))
            }
        }
    }

    /// An error with REALM and a fresh NONCE (401, 438).
    fn challenge(
        &mut self,
        now: Instant,
        client: SocketAddr,
        msg: &Message<'_>,
        code: u16,
        out: &mut [u8],
    ) -> Option<usize> {
        let nonce = self.nonces.issue(now, client);
        let mut w = Writer::new(out, msg.method(), Class::Error, msg.transaction_id());
        w.error_code(code);
        w.attribute(attr::REALM, self.credentials.realm());
        w.attribute(attr::NONCE, &nonce);
        sign(w, None)
    }

    fn auth_failed(&mut self, now: Instant, ip: IpAddr) {
        self.stats.auth_failures += 1;
        self.schedule(now + self.config.auth_failure_window);
        if let Some(until) = self.limiter.failure(ip, now) {
            self.stats.auth_blocks += 1;
            self.schedule(until);
        }
    }

    /// Writes an empty success response or the error of `outcome`, signed.
    fn finish(
        &mut self,
        out: &mut [u8],
        msg: &Message<'_>,
        auth: &Authed<'_>,
        outcome: Outcome,
    ) -> Option<usize> {
        match outcome {
            Ok(()) => {
                let w = Writer::new(out, msg.method(), Class::Success, msg.transaction_id());
                sign(w, Some(&auth.key))
            }
            Err(code) => self.error_counted(out, msg, code, &auth.key),
        }
    }

    /// A signed error, counted in the stats it belongs to.
    fn error_counted(
        &mut self,
        out: &mut [u8],
        msg: &Message<'_>,
        code: u16,
        key: &Key,
    ) -> Option<usize> {
        match code {
            403 => self.stats.forbidden_peers += 1,
            486 => self.stats.quota_refusals += 1,
            _ => {}
        }
        error(out, msg, code, Some(key))
    }

    fn allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        attrs: &Attrs<'_>,
        auth: &Authed<'_>,
        out: &mut [u8],
    ) -> Option<usize> {
        let txid = msg.transaction_id();
        if let Some(existing) = self.allocations.get(&tuple) {
            if existing.txid == *txid && existing.username == auth.username {
                return self.allocate_success(tuple, existing, txid, out);
            }
            return error(out, msg, 437, Some(&auth.key));
        }
        let (port, token) = match self
            .check_allocate(attrs, auth, tuple)
            .and_then(|()| self.relay_port_for(now, attrs))
        {
            Ok(choice) => choice,
            Err(code) => return self.error_counted(out, msg, code, &auth.key),
        };
        let lifetime = self.lifetime(attrs.lifetime);
        let bandwidth = self
            .config
            .max_bandwidth_per_allocation
            .map(|r| TokenBucket::new(r, now));
        let username = auth.username.to_vec();
        let mut alloc = Allocation::new(port, username, auth.key, *txid, now, lifetime, bandwidth);
        alloc.reservation_token = token;
        self.quotas.take(auth.username, tuple.client.ip());
        self.by_port.insert(port, tuple);
        self.events.push_back(Event::BindRelay { port });
        self.schedule(alloc.expires);
        let len = self.allocate_success(tuple, &alloc, txid, out);
        self.allocations.insert(tuple, alloc);
        len
    }

    /// The relay port of a new allocation (RFC 8656 §7.2): a reserved one named by
    /// RESERVATION-TOKEN, an even one for EVEN-PORT (reserving the next one if R is set, and
    /// returning its token), or any free one.
    fn relay_port_for(
        &mut self,
        now: Instant,
        attrs: &Attrs<'_>,
    ) -> Result<(u16, Option<[u8; 8]>), u16> {
        match (attrs.reservation_token, attrs.even_port) {
            (Some(_), Some(_)) => Err(400),
            (Some(token), None) => match self.reservations.remove(&token) {
                Some((port, expires)) if now < expires => Ok((port, None)),
                _ => Err(508),
            },
            (None, Some(true)) => {
                let port = self.pick_port(true, true).ok_or(508u16)?;
                let token: [u8; 8] = self.rng.random();
                let expires = now + RESERVATION_LIFETIME;
                self.reservations.insert(token, (port + 1, expires));
                self.schedule(expires);
                Ok((port, Some(token)))
            }
            (None, even) => Ok((self.pick_port(even.is_some(), false).ok_or(508u16)?, None)),
        }
    }

    /// RFC 8656 §7.2 checks that need no state change: transport, family, quota.
    fn check_allocate(&self, attrs: &Attrs<'_>, auth: &Authed<'_>, tuple: FiveTuple) -> Outcome {
        match attrs.requested_transport {
            None => return Err(400),
            Some(PROTOCOL_UDP) => {}
            Some(_) => return Err(442),
        }
        if attrs.requested_family.unwrap_or(FAMILY_IPV4) != self.relay_family() {
            return Err(440);
        }
        let caps = Caps {
            per_user: self.config.max_allocations_per_user,
            per_address: self.config.max_allocations_per_address,
            total: self.config.max_allocations,
        };
        match self.quotas.refusal(auth.username, tuple.client.ip(), caps) {
            Some(code) => Err(code),
            None => Ok(()),
        }
    }

    /// The success response to an Allocate (also rewritten after a failed relay bind).
    pub(super) fn allocate_success(
        &self,
        tuple: FiveTuple,
        alloc: &Allocation,
        txid: &[u8; 12],
        out: &mut [u8],
    ) -> Option<usize> {
        let relayed = SocketAddr::new(self.config.relay_ip, alloc.relay_port);
        let mut w = Writer::new(out, method::ALLOCATE, Class::Success, txid);
        w.xor_address(attr::XOR_RELAYED_ADDRESS, relayed);
        w.u32(attr::LIFETIME, alloc.lifetime_secs);
        w.xor_address(attr::XOR_MAPPED_ADDRESS, tuple.client);
        if let Some(token) = &alloc.reservation_token {
            w.attribute(attr::RESERVATION_TOKEN, token);
        }
        sign(w, Some(&alloc.key))
    }

    fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        attrs: &Attrs<'_>,
        auth: &Authed<'_>,
        out: &mut [u8],
    ) -> Option<usize> {
        let relay_family = self.relay_family();
        if let Err(code) = self.owned(tuple, auth) {
            return error(out, msg, code, Some(&auth.key));
        }
        if attrs.requested_family.is_some_and(|f| f != relay_family) {
            return error(out, msg, 443, Some(&auth.key));
        }
        let lifetime = match attrs.lifetime {
            Some(0) => {
                self.delete_allocation(tuple);
                Duration::ZERO
            }
            requested => {
                let lifetime = self.lifetime(requested);
                if let Some(alloc) = self.allocations.get_mut(&tuple) {
                    alloc.expires = now + lifetime;
                    alloc.lifetime_secs = lifetime.as_secs() as u32;
                }
                self.schedule(now + lifetime);
                lifetime
            }
        };
        let mut w = Writer::new(out, method::REFRESH, Class::Success, msg.transaction_id());
        w.u32(attr::LIFETIME, lifetime.as_secs() as u32);
        sign(w, Some(&auth.key))
    }

    fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        auth: &Authed<'_>,
    ) -> Outcome {
        self.owned(tuple, auth)?;
        if peer_addresses(msg).next().is_none() {
            return Err(400);
        }
        for peer in peer_addresses(msg) {
            self.check_peer(peer)?;
        }
        let alloc = self.allocations.get_mut(&tuple).ok_or(437u16)?;
        if !alloc.has_room_for(peer_addresses(msg).map(|p| p.ip())) {
            return Err(508);
        }
        let until = peer_addresses(msg).map(|p| alloc.permit(p.ip(), now)).max();
        if let Some(until) = until {
            self.schedule(until);
        }
        Ok(())
    }

    fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        attrs: &Attrs<'_>,
        auth: &Authed<'_>,
    ) -> Outcome {
        self.owned(tuple, auth)?;
        let (Some(number), Some(peer)) = (attrs.channel, attrs.peer) else {
            return Err(400);
        };
        if !CHANNELS.contains(&number) {
            return Err(400);
        }
        self.check_peer(peer)?;
        let alloc = self.allocations.get_mut(&tuple).ok_or(437u16)?;
        alloc.can_bind(number, peer).map_err(|_| 400u16)?;
        if !alloc.permits(peer.ip(), now) && !alloc.has_room_for(std::iter::once(peer.ip())) {
            return Err(508);
        }
        let removal = alloc.bind(number, peer, now);
        let permission = alloc.permit(peer.ip(), now);
        self.schedule(removal.min(permission));
        Ok(())
    }

    /// The allocation of `tuple` exists (437) and belongs to the requester (441).
    fn owned(&self, tuple: FiveTuple, auth: &Authed<'_>) -> Outcome {
        match self.allocations.get(&tuple) {
            None => Err(437),
            Some(a) if a.username != auth.username => Err(441),
            Some(_) => Ok(()),
        }
    }

    /// A peer must match the relay's family (443) and be allowed (403).
    fn check_peer(&self, peer: SocketAddr) -> Outcome {
        if family(peer) != self.relay_family() {
            return Err(443);
        }
        if !self.policy.allows(peer) {
            return Err(403);
        }
        Ok(())
    }

    fn relay_family(&self) -> u8 {
        family(SocketAddr::new(self.config.relay_ip, 0))
    }

    /// RFC 8656 §7.2: the requested lifetime capped at the maximum, but never below the
    /// default.
    fn lifetime(&self, requested: Option<u32>) -> Duration {
        let max = self.config.max_lifetime;
        let default = self.config.default_lifetime.min(max);
        requested.map_or(default, |secs| {
            Duration::from_secs(secs.into()).clamp(default, max)
        })
    }
}

/// An error response, signed with `key` if the request was authenticated.
fn error(out: &mut [u8], msg: &Message<'_>, code: u16, key: Option<&Key>) -> Option<usize> {
    let mut w = Writer::new(out, msg.method(), Class::Error, msg.transaction_id());
    w.error_code(code);
    sign(w, key)
}

/// The UNKNOWN-ATTRIBUTES value (the types as 16-bit words) and its length.
pub(super) fn unknown_list(types: &[u16]) -> ([u8; 16], usize) {
    let mut value = [0u8; 16];
    let mut len = 0;
    for (slot, t) in value.chunks_exact_mut(2).zip(types) {
        slot.copy_from_slice(&t.to_be_bytes());
        len += 2;
    }
    (value, len)
}
