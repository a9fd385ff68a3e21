//! Caps on open connections, per client address and in all: a [`Slot`] is one connection's
//! place and gives it back when dropped. The media runtime's ICE-TCP and TURN-TCP listeners
//! use them, and so does the server's HTTP listener.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address; a [`Slot`] gives its place back when dropped.
#[derive(Default)]
pub struct Occupancy {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

pub struct Slot {
    occupancy: Arc<Occupancy>,
    addr: IpAddr,
}

impl Occupancy {
    /// A place for one more connection from `addr`, if neither cap is reached.
    pub fn enter(self: &Arc<Self>, addr: IpAddr, per_address: usize, total: usize) -> Option<Slot> {
        let mut open = self.open.lock().expect("occupancy lock");
        let (all, by_addr) = &mut *open;
        let mine = by_addr.entry(addr).or_default();
        if *mine >= per_address || *all >= total {
            if *mine == 0 {
                by_addr.remove(&addr);
            }
            return None;
        }
        *mine += 1;
        *all += 1;
        Some(Slot {
            occupancy: self.clone(),
            addr,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.occupancy.open.lock().expect("occupancy lock");
        let (all, by_addr) = &mut *open;
        *all -= 1;
        if let Some(n) = by_addr.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                by_addr.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_all_and_places_come_back() {
        let occupancy = Arc::new(Occupancy::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = occupancy.enter(a, 2, 3).unwrap();
        let _second = occupancy.enter(a, 2, 3).unwrap();
        assert!(occupancy.enter(a, 2, 3).is_none(), "per address");
        let _third = occupancy.enter(b, 2, 3).unwrap();
        assert!(occupancy.enter(b, 2, 3).is_none(), "in all");
        drop(first);
        assert!(occupancy.enter(a, 2, 3).is_some());
    }
}
