//! Simulcast and bandwidth management with str0m peers over a simulated network: layer
//! choice by bandwidth and display size, dynacast, continuity across switches, NACK/RTX.

use std::time::{Duration, Instant};

use stoa_proto::{ClientMessage, ParticipantId, RoomName, ServerMessage};
use stoa_sfu::{EstimateSource, ParticipantLimits, RoomLimits, SfuError};
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

/// Runs until peer `i` has received ten frames in a row of `layer`; returns how long after
/// `since` the first of them arrived, or `None` if that does not happen within `limit`.
fn received_layer_after(
    sim: &mut SfuSim,
    i: usize,
    layer: u8,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
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
    ok.then(|| arrived.unwrap_or(sim.now) - since)
}

/// [`received_layer_after`] from now.
fn time_until_on_layer(sim: &mut SfuSim, i: usize, layer: u8, limit: Duration) -> Option<Duration> {
    let now = sim.now;
    received_layer_after(sim, i, layer, now, limit)
}

/// Runs until the SFU forwards `rid` to peer `i`; returns how long that took.
fn time_until_forwarding(
    sim: &mut SfuSim,
    i: usize,
    rid: &str,
    limit: Duration,
) -> Option<Duration> {
    let start = sim.now;
    let ok = sim.run_until(limit, |s| {
        s.layer_report(i)
            .first()
            .is_some_and(|r| r.current.as_deref() == Some(rid))
    });
    ok.then(|| sim.now - start)
}

/// The longest time, from `since`, between two frames peer `i` could decode: a keyframe, or
/// a frame that follows a decodable one without a gap.
fn longest_freeze(sim: &SfuSim, i: usize, since: Instant) -> Duration {
    let (mut decodable, mut last, mut worst) = (false, None::<Instant>, Duration::ZERO);
    for f in &video(sim, i).log {
        decodable = f.keyframe || (decodable && f.contiguous);
        if !decodable {
            continue;
        }
        if let Some(last) = last.filter(|_| f.at >= since) {
            worst = worst.max(f.at.saturating_duration_since(last.max(since)));
        }
        last = Some(f.at);
    }
    worst
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
    sim.peer_mut(b).record_frames = true;
    let up = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15));
    eprintln!("at 3 Mbit/s from the start: top layer after {up:?}");
    assert!(
        up.is_some(),
        "never reached the top layer: {:?}",
        sim.layer_report(b)
    );
    sim.run(Duration::from_secs(2));

    sim.set_downlink(b, LinkParams::limited(300_000));
    let start = sim.now;
    let switched = time_until_forwarding(&mut sim, b, "q", Duration::from_secs(10));
    let down = received_layer_after(&mut sim, b, 0, start, Duration::from_secs(10));
    let freeze = longest_freeze(&sim, b, start);
    eprintln!(
        "3 Mbit/s -> 300 kbit/s: the SFU forwards the low layer after {switched:?}, \
         the subscriber receives it after {down:?}; longest freeze {freeze:?}"
    );
    assert!(
        freeze <= Duration::from_secs(1),
        "no decodable frame for {freeze:?} while switching down"
    );
    assert!(
        switched.is_some_and(|d| d <= Duration::from_secs(3)),
        "low layer after {switched:?}: {:?}",
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
    let start = sim.now;
    let switched = time_until_forwarding(&mut sim, b, "f", Duration::from_secs(30));
    let back = received_layer_after(&mut sim, b, 2, start, Duration::from_secs(5));
    eprintln!(
        "300 kbit/s -> 3 Mbit/s: the SFU forwards the top layer after {switched:?}, \
         the subscriber receives it after {back:?}"
    );
    assert!(back.is_some(), "never back up: {:?}", sim.layer_report(b));
    let report = sim.layer_report(b);
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].current.as_deref(), Some("f"));
    assert!(
        report[0].estimate_bps.is_some_and(|e| e > 1_500_000),
        "{report:?}"
    );
}

/// Runs `duration` while peer `i` reports `bps` with REMB twice a second, as Chrome does
/// without TWCC.
fn run_reporting_remb(sim: &mut SfuSim, i: usize, bps: u64, duration: Duration) {
    let end = sim.now + duration;
    while sim.now < end {
        sim.peer_mut(i).send_remb(bps);
        sim.run(Duration::from_millis(500));
    }
}

#[test]
fn without_twcc_the_subscribers_remb_reports_choose_its_layer() {
    let mut sim = SfuSim::new();
    let _a = sim.add_simulcast_publisher("room", "alice", default_layers());
    let b = sim.add_remb_listener("room", "bob");
    sim.run(Duration::from_secs(2));
    assert_eq!(
        sim.layer_report(b)[0].current.as_deref(),
        Some("q"),
        "with no estimate at all a subscriber starts on the lowest layer"
    );

    run_reporting_remb(&mut sim, b, 3_000_000, Duration::from_secs(3));
    let report = sim.layer_report(b);
    eprintln!("REMB 3 Mbit/s: {report:?}");
    assert_eq!(report[0].current.as_deref(), Some("f"), "{report:?}");
    assert_eq!(report[0].estimate_bps, Some(3_000_000));
    let stats = sim.sfu.room_stats(&RoomName::new("room").unwrap()).unwrap();
    let bob = stats
        .participants
        .iter()
        .find(|p| p.identity == "bob")
        .unwrap();
    assert_eq!(bob.estimate_source, Some(EstimateSource::Remb));

    run_reporting_remb(&mut sim, b, 300_000, Duration::from_secs(2));
    let report = sim.layer_report(b);
    eprintln!("REMB 300 kbit/s: {report:?}");
    assert_eq!(report[0].current.as_deref(), Some("q"), "{report:?}");

    // Up-switches wait 2 s of steady headroom.
    run_reporting_remb(&mut sim, b, 800_000, Duration::from_secs(4));
    let report = sim.layer_report(b);
    eprintln!("REMB 800 kbit/s: {report:?}");
    assert_eq!(report[0].current.as_deref(), Some("h"), "{report:?}");
    let received = video(&sim, b);
    assert_eq!(received.backwards, 0, "{received:?}");
}

#[test]
fn one_subscribers_bad_link_does_not_lower_another_subscribers_layer() {
    let (mut sim, _a, bad) = publisher_and_viewer(LinkParams::limited(3_000_000));
    let good = sim.add_listener("room", "carol");
    sim.set_downlink(good, LinkParams::limited(3_000_000));
    assert!(time_until_on_layer(&mut sim, good, 2, Duration::from_secs(15)).is_some());
    sim.set_downlink(bad, LinkParams::limited(300_000));
    assert!(time_until_on_layer(&mut sim, bad, 0, Duration::from_secs(10)).is_some());
    let before = frames_of(&sim, good, 2);
    sim.run(Duration::from_secs(5));
    let r = video(&sim, good);
    assert_eq!(r.layer, Some(2), "{:?}", sim.layer_report(good));
    assert!(
        r.layer_frames[2] >= before + 140,
        "the good link kept getting the top layer at full rate: {} frames in 5 s",
        r.layer_frames[2] - before
    );
    let report = sim.layer_report(good);
    assert_eq!(report[0].current.as_deref(), Some("f"), "{report:?}");
    assert_eq!(sim.layer_report(bad)[0].current.as_deref(), Some("q"));
}

/// A room ceiling between the middle layer (~500 kbit/s) and the top one.
const CAPPED: RoomLimits = RoomLimits {
    max_video_bitrate_bps: Some(600_000),
    min_video_bitrate_bps: None,
};

/// Caps [`publisher_and_viewer`]'s room at [`CAPPED`]; returns the room's name.
fn cap_room(sim: &mut SfuSim) -> RoomName {
    let room = RoomName::new("room").unwrap();
    sim.sfu.set_room_limits(&room, CAPPED).unwrap();
    room
}

#[test]
fn a_room_bitrate_ceiling_keeps_a_subscriber_off_the_top_layer_until_lifted() {
    let (mut sim, _a, b) = publisher_and_viewer(LinkParams::limited(3_000_000));
    let room = cap_room(&mut sim);
    assert_eq!(sim.sfu.room_limits(&room), Some(CAPPED));
    let nobody = RoomName::new("nobody").unwrap();
    assert_eq!(
        sim.sfu.set_room_limits(&nobody, CAPPED),
        Err(SfuError::UnknownRoom)
    );
    assert_eq!(sim.sfu.room_limits(&nobody), None);

    assert!(time_until_on_layer(&mut sim, b, 1, Duration::from_secs(15)).is_some());
    sim.run(Duration::from_secs(8));
    let report = sim.layer_report(b);
    assert_eq!(report[0].current.as_deref(), Some("h"), "{report:?}");
    // The 3 Mbit/s link would afford the top layer; the estimator is not asked to probe for it.
    assert_eq!(frames_of(&sim, b, 2), 0, "never the ~1.5 Mbit/s layer");

    sim.sfu
        .set_room_limits(&room, RoomLimits::default())
        .unwrap();
    // The probes that found the link's capacity overshot it, and str0m's loss controller has
    // held the estimate flat since; left alone it stays there for 15-35 s more. The SFU
    // restarts the estimator when the estimate does not follow the lifted ceiling.
    let up = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15));
    eprintln!("ceiling lifted: top layer after {up:?}");
    assert!(up.is_some(), "up once lifted: {:?}", sim.layer_report(b));
}

#[test]
fn lifting_a_ceiling_on_a_link_too_slow_for_more_keeps_the_layer_it_carries() {
    let (mut sim, _a, b) = publisher_and_viewer(LinkParams::limited(1_000_000));
    let room = cap_room(&mut sim);
    assert!(time_until_on_layer(&mut sim, b, 1, Duration::from_secs(15)).is_some());
    sim.run(Duration::from_secs(10));

    // The estimate is flat below what the top layer needs: the SFU restarts the estimator,
    // whose probes find no room for it, and the middle layer keeps flowing.
    sim.sfu
        .set_room_limits(&room, RoomLimits::default())
        .unwrap();
    let before = video(&sim, b).frames;
    let mut layers = std::collections::BTreeSet::new();
    for _ in 0..200 {
        sim.run(Duration::from_millis(100));
        layers.insert(sim.layer_report(b)[0].target.clone());
    }
    let frames = video(&sim, b).frames - before;
    eprintln!("1 Mbit/s link, ceiling lifted: targets {layers:?}, {frames} frames in 20 s");
    assert_eq!(
        layers,
        [Some("h".to_string())].into(),
        "{:?}",
        sim.layer_report(b)
    );
    assert!(frames >= 540, "{frames} frames of 600 in 20 s");
}

#[test]
fn a_publishers_ceiling_caps_what_anyone_receives_of_it() {
    let (mut sim, a, b) = publisher_and_viewer(LinkParams::limited(3_000_000));
    let capped = ParticipantLimits {
        max_video_bitrate_bps: Some(200_000),
        priority: 3,
    };
    let alice = sim.id(a);
    let room = RoomName::new("room").unwrap();
    sim.sfu
        .set_participant_limits(&room, alice, capped)
        .unwrap();
    assert_eq!(sim.sfu.participant_limits(alice), Some(capped));
    assert_eq!(
        sim.sfu
            .set_participant_limits(&room, ParticipantId(999), capped),
        Err(SfuError::UnknownParticipant)
    );
    let other = RoomName::new("other").unwrap();
    assert_eq!(
        sim.sfu.set_participant_limits(&other, alice, capped),
        Err(SfuError::UnknownParticipant),
        "a participant is reached only through its own room"
    );
    assert!(time_until_on_layer(&mut sim, b, 0, Duration::from_secs(10)).is_some());
    sim.run(Duration::from_secs(6));
    let report = sim.layer_report(b);
    assert_eq!(report[0].current.as_deref(), Some("q"), "{report:?}");
    assert_eq!(frames_of(&sim, b, 1) + frames_of(&sim, b, 2), 0);
}

#[test]
fn a_rooms_limits_return_to_the_defaults_when_it_empties() {
    let (mut sim, a, b) = publisher_and_viewer(LinkParams::default());
    let room = RoomName::new("room").unwrap();
    let capped = RoomLimits {
        max_video_bitrate_bps: Some(600_000),
        min_video_bitrate_bps: Some(100_000),
    };
    sim.sfu.set_room_limits(&room, capped).unwrap();
    sim.leave(a);
    assert_eq!(
        sim.sfu.room_limits(&room),
        Some(capped),
        "bob is still in it"
    );
    sim.leave(b);
    assert_eq!(sim.sfu.room_limits(&room), None);
    sim.add_listener("room", "carol");
    assert_eq!(sim.sfu.room_limits(&room), Some(RoomLimits::default()));
}

fn track_of(sim: &SfuSim, i: usize) -> String {
    video(sim, i).track_id
}

fn layers_messages(sim: &SfuSim, i: usize) -> Vec<Vec<String>> {
    sim.messages(i)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Layers { active, .. } => Some(active.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn display_size_picks_the_layer_and_unwatched_layers_are_paused() {
    let (mut sim, a, b) = publisher_and_viewer(LinkParams::default());
    assert!(time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15)).is_some());
    let track = track_of(&sim, b);
    assert_eq!(video(&sim, b).width, Some(1280));

    sim.client_message(
        b,
        ClientMessage::VideoSize {
            track: track.clone(),
            width: 320,
            height: 180,
        },
    );
    assert!(time_until_on_layer(&mut sim, b, 0, Duration::from_secs(3)).is_some());
    assert_eq!(
        video(&sim, b).width,
        Some(320),
        "a 320-wide keyframe arrived"
    );
    sim.run(Duration::from_secs(3));
    assert_eq!(
        layers_messages(&sim, a).last(),
        Some(&vec!["q".to_string()]),
        "h and f, watched by nobody, are paused: {:?}",
        layers_messages(&sim, a)
    );
    assert!(
        sim.peer(a).layers[1..].iter().all(|l| !l.active),
        "the publisher stopped sending them"
    );

    sim.client_message(
        b,
        ClientMessage::VideoSize {
            track: track.clone(),
            width: 0,
            height: 0,
        },
    );
    sim.run(Duration::from_millis(300));
    let frozen = video(&sim, b).frames;
    sim.run(Duration::from_secs(3));
    assert_eq!(
        video(&sim, b).frames,
        frozen,
        "nothing is forwarded for a hidden track"
    );
    assert_eq!(layers_messages(&sim, a).last(), Some(&Vec::new()));

    sim.client_message(
        b,
        ClientMessage::VideoSize {
            track,
            width: 1280,
            height: 720,
        },
    );
    let back = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15));
    eprintln!("hidden -> 1280x720: top layer after {back:?}");
    assert!(back.is_some(), "{:?}", sim.layer_report(b));
    // f resumed, and q with it (the fallback); h, unwatched, may already be paused again.
    let last = layers_messages(&sim, a).last().cloned().unwrap_or_default();
    assert!(last.contains(&"f".to_string()), "{last:?}");
    assert!(last.contains(&"q".to_string()), "{last:?}");
    assert!(sim.peer(a).layers[2].active && sim.peer(a).layers[0].active);
}

#[test]
fn video_size_for_an_unknown_track_or_an_absurd_size_is_an_error() {
    let (mut sim, _a, b) = publisher_and_viewer(LinkParams::default());
    assert!(time_until_on_layer(&mut sim, b, 0, Duration::from_secs(5)).is_some());
    let track = track_of(&sim, b);
    let requests = [
        ("no-such-track".to_string(), 320, 180),
        ("x".repeat(10_000), 320, 180),
        (track, 100_000, 4_000_000_000),
    ];
    for (track, width, height) in requests {
        sim.client_message(
            b,
            ClientMessage::VideoSize {
                track,
                width,
                height,
            },
        );
        match sim.messages(b).last() {
            Some(ServerMessage::Error { message, fatal, .. }) => {
                assert!(!fatal && message.len() < 200, "{message}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    let before = video(&sim, b).frames;
    sim.run(Duration::from_secs(1));
    assert!(
        video(&sim, b).frames > before + 20,
        "the session is unaffected"
    );
}

#[test]
fn layer_switches_keep_one_sequence_space_and_land_on_keyframes() {
    // A clean link, so every frame arrives and the log shows each switch; sizes drive them.
    let (mut sim, _a, b) = publisher_and_viewer(LinkParams::default());
    sim.peer_mut(b).record_frames = true;
    assert!(time_until_on_layer(&mut sim, b, 2, Duration::from_secs(15)).is_some());
    let track = track_of(&sim, b);
    let sizes = [
        (640, 360, 1),
        (320, 180, 0),
        (1280, 720, 2),
        (320, 180, 0),
        (640, 360, 1),
    ];
    for (width, height, layer) in sizes {
        let size = ClientMessage::VideoSize {
            track: track.clone(),
            width,
            height,
        };
        sim.client_message(b, size);
        let took = time_until_on_layer(&mut sim, b, layer, Duration::from_secs(10));
        assert!(took.is_some(), "{:?}", sim.layer_report(b));
    }

    let log = video(&sim, b).log;
    let mut switches = 0;
    for pair in log.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        assert!(
            next.seq.0 > prev.seq.1,
            "sequence numbers went back or repeated: {prev:?} then {next:?}"
        );
        if next.layer != prev.layer {
            switches += 1;
            assert!(next.keyframe, "a switch that is not a keyframe: {next:?}");
            assert!(
                next.contiguous,
                "a switch left a gap: {prev:?} then {next:?}"
            );
            assert_eq!(next.seq.0, prev.seq.1 + 1, "no gap at a switch");
        }
    }
    eprintln!("{} frames, {switches} layer switches", log.len());
    assert!(switches >= 5, "{switches} switches");
}

#[test]
fn nack_and_rtx_recover_simulcast_video_at_5_percent_loss() {
    let lossy = LinkParams {
        latency: Duration::from_millis(20),
        loss: 0.05,
        ..LinkParams::default()
    };
    let (mut sim, _a, b) = publisher_and_viewer(lossy);
    sim.run(Duration::from_secs(2));
    let start = video(&sim, b);
    let seconds = 20;
    sim.run(Duration::from_secs(seconds));
    let r = video(&sim, b);
    let frames = r.frames - start.frames;
    let sent = seconds * 1000 / 33;
    let gaps = r.discontinuities - start.discontinuities;
    let recovered = (frames - gaps) as f64 / sent as f64;
    eprintln!(
        "5% loss: {frames} of {sent} frames delivered, {gaps} after an unrecovered gap: \
         {:.1}% recovered; layers {:?}, estimate {:?}",
        recovered * 100.0,
        r.layer_frames,
        sim.layer_report(b)[0].estimate_bps
    );
    assert!(recovered > 0.95, "{:.3} of frames recovered", recovered);
}

/// SFU CPU time per forwarded packet, one publisher and four subscribers for 30 s, plain
/// video against three simulcast layers (of which each subscriber gets one). Run with
/// `cargo test --release -p stoa-sfu --test simulcast -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost_per_forwarded_packet() {
    for simulcast in [false, true] {
        let mut sim = SfuSim::new();
        if simulcast {
            sim.add_simulcast_publisher("room", "alice", default_layers());
        } else {
            sim.add_publisher("room", "alice");
        }
        for n in 0..4 {
            sim.add_listener("room", &format!("viewer{n}"));
        }
        sim.run(Duration::from_secs(3));
        let room = stoa_proto::RoomName::new("room").unwrap();
        let out = |s: &SfuSim| -> u64 {
            s.sfu
                .room_report(&room)
                .unwrap()
                .iter()
                .map(|p| p.counters.packets_out)
                .sum()
        };
        let (before, busy) = (out(&sim), sim.sfu_busy);
        sim.run(Duration::from_secs(30));
        let packets = out(&sim) - before;
        let ns = (sim.sfu_busy - busy).as_nanos() as u64 / packets.max(1);
        eprintln!(
            "{}: {packets} packets forwarded, {ns} ns of SFU time each (receive, decrypt, \
             select, rewrite, encrypt, pace, timers)",
            if simulcast {
                "simulcast, 3 layers"
            } else {
                "plain"
            }
        );
    }
}

#[test]
fn a_top_layer_the_publisher_has_not_started_yet_is_asked_for() {
    // Browsers add their top layer once their own estimate allows it, and the SFU pauses a
    // layer nobody selects; the layer must stay something a viewer can be offered, so that
    // the SFU resumes it when the viewer's bandwidth allows.
    let mut sim = SfuSim::new();
    let mut layers = default_layers();
    layers[2].active = false;
    let a = sim.add_simulcast_publisher("room", "alice", layers);
    let b = sim.add_listener("room", "bob");
    let top = time_until_on_layer(&mut sim, b, 2, Duration::from_secs(20));
    eprintln!(
        "unstarted top layer: forwarded after {top:?}; publisher told {:?}",
        layers_messages(&sim, a)
    );
    assert!(top.is_some(), "{:?}", sim.layer_report(b));
}
