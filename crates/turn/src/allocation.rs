//! One allocation (RFC 8656 §7): its relayed port, owner, lifetime, permissions (§9), channels
//! (§12) and bandwidth bucket. Expired permissions and channels are ignored at once and
//! removed by [`Allocation::expire`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::auth::Key;
use crate::config::Transport;
use crate::limit::TokenBucket;

/// How long a permission lasts (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lasts (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel expires, its number and peer stay reserved this long (RFC 8656 §12).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// Most permissions one allocation may hold; more is refused with 508.
pub const MAX_PERMISSIONS: usize = 256;

/// An allocation's key: the client's transport, its address and the listener it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FiveTuple {
    pub transport: Transport,
    pub client: SocketAddr,
    pub local: SocketAddr,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    peer: SocketAddr,
    expires: Instant,
}

/// Why a ChannelBind is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindConflict {
    NumberTaken,
    PeerTaken,
}

#[derive(Debug, Clone)]
pub(crate) struct Allocation {
    pub relay_port: u16,
    /// USERNAME that created it; other requests must use the same (441).
    pub username: Vec<u8>,
    /// The key of that user, for responses written without a request (bind failure).
    pub key: Key,
    /// Transaction ID of the Allocate, so a retransmission gets the same answer.
    pub txid: [u8; 12],
    pub expires: Instant,
    /// The lifetime last granted, for the LIFETIME attribute.
    pub lifetime_secs: u32,
    /// Failed attempts to bind the relay socket.
    pub bind_failures: u8,
    /// The token of the next port, reserved for this client's next allocation (EVEN-PORT R).
    pub reservation_token: Option<[u8; 8]>,
    permissions: BTreeMap<IpAddr, Instant>,
    channels: BTreeMap<u16, Channel>,
    channel_of_peer: BTreeMap<SocketAddr, u16>,
    bandwidth: Option<TokenBucket>,
}

impl Allocation {
    pub fn new(
        relay_port: u16,
        username: Vec<u8>,
        key: Key,
        txid: [u8; 12],
        now: Instant,
        lifetime: Duration,
        bandwidth: Option<TokenBucket>,
    ) -> Self {
        Self {
            relay_port,
            username,
            key,
            txid,
            expires: now + lifetime,
            lifetime_secs: lifetime.as_secs() as u32,
            bind_failures: 0,
            reservation_token: None,
            permissions: BTreeMap::new(),
            channels: BTreeMap::new(),
            channel_of_peer: BTreeMap::new(),
            bandwidth,
        }
    }

    /// Whether a permission for `ip` is in force.
    pub fn permits(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&until| now < until)
    }

    /// Whether `ips` can all get a permission without exceeding [`MAX_PERMISSIONS`].
    pub fn has_room_for(&self, ips: impl Iterator<Item = IpAddr>) -> bool {
        let new = ips.filter(|ip| !self.permissions.contains_key(ip)).count();
        self.permissions.len() + new <= MAX_PERMISSIONS
    }

    /// Installs or refreshes a permission; returns its expiry.
    pub fn permit(&mut self, ip: IpAddr, now: Instant) -> Instant {
        let until = now + PERMISSION_LIFETIME;
        self.permissions.insert(ip, until);
        until
    }

    /// Checks a ChannelBind: the number must be free or bound to `peer`, and `peer` must have
    /// no other channel (RFC 8656 §12.2), counting channels in their cooldown.
    pub fn can_bind(&self, number: u16, peer: SocketAddr) -> Result<(), BindConflict> {
        if self.channels.get(&number).is_some_and(|c| c.peer != peer) {
            return Err(BindConflict::NumberTaken);
        }
        if self
            .channel_of_peer
            .get(&peer)
            .is_some_and(|&n| n != number)
        {
            return Err(BindConflict::PeerTaken);
        }
        Ok(())
    }

    /// Binds or refreshes a channel (after [`Allocation::can_bind`]); returns when it is
    /// removed.
    pub fn bind(&mut self, number: u16, peer: SocketAddr, now: Instant) -> Instant {
        let expires = now + CHANNEL_LIFETIME;
        self.channels.insert(number, Channel { peer, expires });
        self.channel_of_peer.insert(peer, number);
        expires + CHANNEL_COOLDOWN
    }

    /// The peer of a live channel.
    pub fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .get(&number)
            .filter(|c| now < c.expires)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`.
    pub fn peer_channel(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let number = *self.channel_of_peer.get(&peer)?;
        self.channel_peer(number, now).map(|_| number)
    }

    /// Charges `bytes` to the bandwidth cap; false if over it.
    pub fn charge(&mut self, now: Instant, bytes: usize) -> bool {
        self.bandwidth.as_mut().is_none_or(|b| b.take(now, bytes))
    }

    /// Removes expired permissions and channels past their cooldown.
    pub fn expire(&mut self, now: Instant) {
        self.permissions.retain(|_, until| now < *until);
        let before = self.channels.len();
        self.channels
            .retain(|_, c| now < c.expires + CHANNEL_COOLDOWN);
        if self.channels.len() != before {
            let channels = &self.channels;
            self.channel_of_peer.retain(|_, n| channels.contains_key(n));
        }
    }

    /// The next time something in this allocation expires.
    pub fn next_deadline(&self) -> Instant {
        let permissions = self.permissions.values().copied();
        let channels = self.channels.values().map(|c| c.expires + CHANNEL_COOLDOWN);
        permissions.chain(channels).fold(self.expires, Instant::min)
    }

    /// Number of permissions held (in force or awaiting removal).
    pub fn permission_count(&self) -> usize {
        self.permissions.len()
    }

    /// Number of channels held (live or in cooldown).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(now: Instant) -> Allocation {
        Allocation::new(
            50000,
            b"u".to_vec(),
            [0; 16],
            [0; 12],
            now,
            Duration::from_secs(600),
            None,
        )
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn permissions_expire_after_five_minutes() {
        let t0 = Instant::now();
        let mut a = alloc(t0);
        let ip = peer("8.8.8.8:1").ip();
        assert!(!a.permits(ip, t0));
        a.permit(ip, t0);
        assert!(a.permits(ip, t0 + Duration::from_secs(299)));
        assert!(!a.permits(ip, t0 + Duration::from_secs(300)));
        assert_eq!(a.next_deadline(), t0 + PERMISSION_LIFETIME);
        a.expire(t0 + Duration::from_secs(300));
        assert_eq!(a.permission_count(), 0);
    }

    #[test]
    fn channel_rebind_rules_and_cooldown() {
        let t0 = Instant::now();
        let mut a = alloc(t0);
        let (p1, p2) = (peer("8.8.8.8:1"), peer("8.8.8.8:2"));
        assert_eq!(a.can_bind(0x4000, p1), Ok(()));
        a.bind(0x4000, p1, t0);
        assert_eq!(a.can_bind(0x4000, p1), Ok(()), "refresh");
        assert_eq!(a.can_bind(0x4000, p2), Err(BindConflict::NumberTaken));
        assert_eq!(a.can_bind(0x4001, p1), Err(BindConflict::PeerTaken));
        assert_eq!(a.channel_peer(0x4000, t0), Some(p1));
        assert_eq!(a.peer_channel(p1, t0), Some(0x4000));
        let expired = t0 + CHANNEL_LIFETIME;
        assert_eq!(a.channel_peer(0x4000, expired), None);
        assert_eq!(a.peer_channel(p1, expired), None);
        a.expire(expired);
        assert_eq!(
            a.can_bind(0x4000, p2),
            Err(BindConflict::NumberTaken),
            "cooldown"
        );
        a.expire(expired + CHANNEL_COOLDOWN);
        assert_eq!(a.channel_count(), 0);
        assert_eq!(a.can_bind(0x4000, p2), Ok(()));
        assert_eq!(a.can_bind(0x4001, p1), Ok(()));
    }

    #[test]
    fn permission_cap() {
        let t0 = Instant::now();
        let mut a = alloc(t0);
        for i in 0..MAX_PERMISSIONS as u32 {
            a.permit(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(a.has_room_for([IpAddr::from([0, 0, 0, 1])].into_iter()));
        assert!(!a.has_room_for([IpAddr::from([9, 9, 9, 9])].into_iter()));
    }
}
