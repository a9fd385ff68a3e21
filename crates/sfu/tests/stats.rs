//! Call-quality statistics from str0m's stats events, per participant, per track and summed.

use std::time::Duration;

use stoa_proto::{RoomName, TrackKind};
use stoa_testkit::{LinkParams, SfuSim};

fn room() -> RoomName {
    RoomName::new("room").unwrap()
}

#[test]
fn participants_and_tracks_report_rates_loss_and_repairs() {
    let mut sim = SfuSim::new();
    let lossy = sim.add_publisher("room", "lossy");
    let clean = sim.add_publisher("room", "clean");
    let loss = LinkParams {
        loss: 0.05,
        ..LinkParams::default()
    };
    sim.set_links(lossy, loss, LinkParams::default());
    sim.run(Duration::from_secs(5));

    let stats = sim.sfu.room_stats(&room()).expect("the room exists");
    assert_eq!(stats.room, "room");
    assert_eq!(stats.participants.len(), 2);
    let (l, c) = (&stats.participants[0], &stats.participants[1]);
    assert_eq!((l.id, c.id), (sim.id(lossy), sim.id(clean)));
    for p in [l, c] {
        assert!(p.connected);
        // ~3 packets of 2.5 kB per 33 ms video frame plus audio: some hundreds of kbit/s.
        assert!(p.bitrate_in_bps > 200_000, "{p:#?}");
        assert!(p.bitrate_out_bps > 200_000, "{p:#?}");
        assert!(p.packets_in > 300 && p.packets_out > 300, "{p:#?}");
        assert!(p.bytes_in > 100_000 && p.bytes_out > 100_000, "{p:#?}");
        assert_eq!(p.published.len(), 2, "{p:#?}");
        assert_eq!(p.received.len(), 2, "{p:#?}");
        // TWCC gives every subscriber an estimate; these tracks are not simulcast: no layer.
        assert!(
            p.estimated_bandwidth_bps.is_some_and(|b| b > 100_000),
            "{p:#?}"
        );
        for t in &p.published {
            assert!(t.bitrate_bps > 0 && t.packets > 0, "{t:#?}");
            assert!(t.jitter_ms.is_some(), "{t:#?}");
        }
        for t in &p.received {
            assert!(t.bitrate_bps > 0 && t.packets > 0, "{t:#?}");
            assert_eq!(t.layer, None);
            assert!(t.publisher.is_some_and(|x| x != p.id));
        }
    }
    // The lossy uplink shows as ingress loss and NACKs the server sent for its video.
    assert!(l.loss_in.is_some_and(|f| f > 0.0), "{l:#?}");
    assert!(l.nacks_sent > 0, "{l:#?}");
    let video = l
        .published
        .iter()
        .find(|t| t.kind == TrackKind::Video)
        .unwrap();
    assert!(video.nacks_sent > 0, "{video:#?}");
    assert_eq!(c.nacks_sent, 0, "{c:#?}");
    // Audio levels are reported for audio only.
    for t in &c.published {
        assert_eq!(
            t.audio_level_dbov.is_some(),
            t.kind == TrackKind::Audio,
            "{t:#?}"
        );
    }
}

#[test]
fn totals_sum_everyone_and_survive_departures() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "a");
    sim.add_publisher("room", "b");
    sim.add_publisher("other", "c");
    sim.run(Duration::from_secs(3));
    let t = sim.sfu.totals();
    assert_eq!((t.rooms, t.participants), (2, 3));
    let report = sim.sfu.room_report(&room()).unwrap();
    let packets_in: u64 = report.iter().map(|p| p.counters.packets_in).sum();
    assert!(t.packets_in >= packets_in && packets_in > 300, "{t:?}");
    assert!(
        t.packets_out > 300 && t.bytes_in > 0 && t.bytes_out > 0,
        "{t:?}"
    );
    assert!(t.datagrams_in >= t.packets_in, "{t:?}");
    // New subscribers asked publishers for keyframes.
    assert!(t.keyframe_requests > 0 && t.keyframe_requests == t.plis_sent + t.firs_sent);

    sim.leave(a);
    let after = sim.sfu.totals();
    assert_eq!(after.participants, 2);
    assert!(
        after.packets_in >= t.packets_in && after.bytes_in >= t.bytes_in,
        "{after:?}"
    );
    assert!(sim
        .sfu
        .room_stats(&RoomName::new("nobody").unwrap())
        .is_none());
}
