//! The relay hot path does not touch the heap: 10 000 ChannelData round trips (client → peer
//! and peer → client) and 10 000 Send/Data indication round trips allocate nothing.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use stoa_turn::stun::{attr, method, Class, Writer};
use stoa_turn::ClientAction;

/// Counts allocations made by threads that have switched counting on.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn relaying_does_not_allocate() {
    let mut h = Harness::new(config());
    let mut c = Client::new("198.18.0.5:61000", "alice", "secret-pw");
    let port = h.allocate(&mut c).port();
    let (channel_peer, indication_peer) =
        (addr("93.184.216.34:40000"), addr("93.184.216.35:40000"));
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, channel_peer).reply().class(),
        Class::Success
    );
    h.create_permission(&mut c, &[indication_peer]);

    let channel_data = channel_data(0x4000, &[0x55; 1200], false);
    let mut send = [0u8; 1500];
    let mut w = Writer::new(&mut send, method::SEND, Class::Indication, &[9; 12]);
    w.xor_address(attr::XOR_PEER_ADDRESS, indication_peer)
        .attribute(attr::DATA, &[0x66; 1200]);
    let send_len = w.finish().unwrap();
    let peer_payload = [0x77u8; 1200];
    let mut out = [0u8; 1500];
    let (turn, now, unix) = (&mut h.turn, h.now, h.unix);
    let mut relayed = 0;

    let count = allocations_in(|| {
        for _ in 0..10_000 {
            let action = turn.handle_client(
                now,
                unix,
                c.transport,
                c.local,
                c.addr,
                &channel_data,
                &mut out,
            );
            relayed += usize::from(matches!(action, ClientAction::ToPeer { .. }));
            relayed += usize::from(
                turn.handle_peer(now, port, channel_peer, &peer_payload, &mut out)
                    .is_some(),
            );
            let action = turn.handle_client(
                now,
                unix,
                c.transport,
                c.local,
                c.addr,
                &send[..send_len],
                &mut out,
            );
            relayed += usize::from(matches!(action, ClientAction::ToPeer { .. }));
            relayed += usize::from(
                turn.handle_peer(now, port, indication_peer, &peer_payload, &mut out)
                    .is_some(),
            );
        }
    });
    assert_eq!(relayed, 40_000);
    assert_eq!(count, 0, "the relay path allocated");
    let stats = h.turn.stats();
    assert_eq!(
        (stats.packets_to_peers, stats.packets_to_clients),
        (20_000, 20_000)
    );
}
