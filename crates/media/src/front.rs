//! The front of the shared UDP media port (on worker 0): the socket that receives whatever
//! no worker's connected socket claims (a participant's first STUN checks, its DTLS handshake,
//! traffic from a new address after a network change) and the rule that sorts it to a worker.

use std::collections::HashMap;
use std::net::SocketAddr;

use stoa_sfu::demux::{classify, stun_local_ufrag, PacketClass};

use super::recv::RecvSocket;
use super::Directory;

/// Remembered source addresses before the map is cleared (a bound against address spraying;
/// a cleared address is learned again from its next STUN check).
const MAX_REMEMBERED: usize = 65536;

pub(super) struct Front {
    pub socket: RecvSocket,
    /// Which worker each source address was last sorted to by its STUN ufrag.
    owners: HashMap<SocketAddr, usize>,
}

impl Front {
    pub fn new(socket: RecvSocket) -> Self {
        Self {
            socket,
            owners: HashMap::new(),
        }
    }

    /// The worker a datagram from `source` belongs to: the one whose participant a STUN
    /// check's ufrag names, else the one this address was last sorted to, else worker 0
    /// (whose SFU counts it as unroutable).
    pub fn owner(&mut self, directory: &Directory, source: SocketAddr, contents: &[u8]) -> usize {
        if classify(contents) == PacketClass::Stun {
            if let Some(worker) = stun_local_ufrag(contents).and_then(|u| directory.worker_of(u)) {
                if self.owners.len() >= MAX_REMEMBERED && !self.owners.contains_key(&source) {
                    self.owners.clear();
                }
                self.owners.insert(source, worker);
                return worker;
            }
        }
        self.owners.get(&source).copied().unwrap_or(0)
    }
}
