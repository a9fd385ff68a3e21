//! Simulcast and bandwidth management with str0m peers over a simulated network: layer
//! choice by bandwidth and display size, dynacast, continuity across switches, NACK/RTX.

use std::time::{Duration, Instant};

use stoa_proto::{ClientMessage, ServerMessage};
use stoa_testkit::{default_layers, LinkParams, Received, SfuSim};
use str0m::media::MediaKind;

/// The received video from the simulcast publisher (each test has one).
fn video(sim: &SfuSim, i: usize) -> Received {
    sim.peer(i)
        .received
        .values()
        .find(|r| r.kind == Some(MediaKind::Video))
        .cloned()
        .unwrap_or_default()
}

/// Frames of `layer` received so far.
fn frames_of(sim: &SfuSim, i: usize, layer: usize) -> u64 {
    video(sim, i).layer_frames[layer]
}

/// Runs until peer `i` receives `n` more frames of `layer` (and then nothing else); returns
/// how long that took, or `None` within `limit`.
fn time_until_on_layer(sim: &mut SfuSim, i: usize, layer: u8, limit: Duration) -> Option<Duration> {
    let start = sim.now;
    let mut arrived: Option<Instant> = None;
    let mut base = frames_of(sim, i, layer as usize);
    let ok = sim.run_until(limit, |s| {
        let r = video(s, i);
        if r.layer != Some(layer) {
            arrived = None;
            base = r.layer_frames[layer as usize];
            return false;
        }
        arrived.get_or_insert(s.now);
        // Ten frames in a row on the layer: it is being received, not passed through.
        r.layer_frames[layer as usize] >= base + 10
    });
    ok.then(|| arrived.unwrap_or(sim.now) - start)
}

fn publisher_and_viewer(downlink: LinkParams) -> (SfuSim, usize, usize) {
    let mut sim = SfuSim::new();
    let a = sim.add_simulcast_publisher("room", "alice", default_layers());
    let b = sim.add_listener("room", "bob");
    sim.set_downlink(b, downlink);
    (sim, a, b)
}

#[test]
fn a_subscriber_follows_its_bandwidth_down_and_back_up() {
    let (mut sim, _a, b) = publisher_and_viewer(LinkParams::limited(3_000_000));
    let up = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15));
    eprintln!("at 3 Mbit/s from the start: top layer after {up:?}");
    assert!(
        up.is_some(),
        "never reached the top layer: {:?}",
        sim.layer_report(b)
    );
    sim.run(Duration::from_secs(2));

    sim.set_downlink(b, LinkParams::limited(300_000));
    let down = time_until_on_layer(&mut sim, b, 0, Duration::from_secs(10));
    eprintln!("3 Mbit/s -> 300 kbit/s: low layer received after {down:?}");
    assert!(
        down.is_some_and(|d| d <= Duration::from_secs(3)),
        "low layer after {down:?}: {:?}",
        sim.layer_report(b)
    );
    sim.run(Duration::from_secs(5));
    assert_eq!(
        video(&sim, b).layer,
        Some(0),
        "stays low: {:?}",
        sim.layer_report(b)
    );

    sim.set_downlink(b, LinkParams::limited(3_000_000));
    let back = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(30));
    eprintln!("300 kbit/s -> 3 Mbit/s: top layer received after {back:?}");
    assert!(back.is_some(), "never back up: {:?}", sim.layer_report(b));
    let report = sim.layer_report(b);
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].current.as_deref(), Some("f"));
    assert!(
        report[0].estimate_bps.is_some_and(|e| e > 1_500_000),
        "{report:?}"
    );
}
