//! How many allocations each user, each client address and the whole server hold, against
//! their caps: a user's identity alone is no bound (guest identities are free to make), so a
//! client address and the server have caps of their own.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::auth::quota_user;

/// Allocation counts; a count that drops to zero is forgotten.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    per_user: BTreeMap<Vec<u8>, usize>,
    per_address: BTreeMap<IpAddr, usize>,
    total: usize,
}

/// The caps, from [`crate::TurnConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub per_user: usize,
    pub per_address: usize,
    pub total: usize,
}

impl Quotas {
    /// The STUN error code refusing one more allocation, if a cap is reached: 486 (Allocation
    /// Quota Reached) for a user or an address, 508 (Insufficient Capacity) for the server.
    pub fn refusal(&self, username: &[u8], client: IpAddr, caps: Caps) -> Option<u16> {
        let user = self
            .per_user
            .get(quota_user(username))
            .copied()
            .unwrap_or(0);
        let address = self.per_address.get(&client).copied().unwrap_or(0);
        if self.total >= caps.total {
            Some(508)
        } else if user >= caps.per_user || address >= caps.per_address {
            Some(486)
        } else {
            None
        }
    }

    pub fn take(&mut self, username: &[u8], client: IpAddr) {
        *self
            .per_user
            .entry(quota_user(username).to_vec())
            .or_default() += 1;
        *self.per_address.entry(client).or_default() += 1;
        self.total += 1;
    }

    pub fn release(&mut self, username: &[u8], client: IpAddr) {
        let user = quota_user(username);
        if let Some(n) = self.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
        if let Some(n) = self.per_address.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&client);
            }
        }
        self.total = self.total.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_refuses_and_releases_give_room_back() {
        let caps = Caps {
            per_user: 2,
            per_address: 3,
            total: 4,
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut q = Quotas::default();
        q.take(b"alice", a);
        q.take(b"alice", a);
        assert_eq!(q.refusal(b"alice", a, caps), Some(486), "per user");
        assert_eq!(q.refusal(b"guest-1", a, caps), None);
        q.take(b"guest-1", a);
        assert_eq!(q.refusal(b"guest-2", a, caps), Some(486), "per address");
        assert_eq!(q.refusal(b"guest-2", b, caps), None);
        q.take(b"guest-2", b);
        assert_eq!(q.refusal(b"guest-3", b, caps), Some(508), "server-wide");
        q.release(b"alice", a);
        assert_eq!(q.refusal(b"alice", a, caps), None);
        q.release(b"alice", a);
        q.release(b"guest-1", a);
        q.release(b"guest-2", b);
        assert!(q.per_user.is_empty() && q.per_address.is_empty() && q.total == 0);
    }
}
