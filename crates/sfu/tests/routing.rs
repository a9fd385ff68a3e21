//! SFU routing with str0m peers over a simulated network and simulated time.

use std::time::Duration;

use stoa_proto::{ClientMessage, ErrorCode, ServerMessage, TrackKind};
use stoa_sfu::CloseReason;
use stoa_testkit::{LinkParams, SfuSim};
use str0m::media::MediaKind;

fn stream(sim: &SfuSim, i: usize) -> String {
    sim.id(i).to_string()
}

#[test]
fn three_participants_each_receive_the_other_two() {
    let mut sim = SfuSim::new();
    let peers: Vec<usize> = (0..3)
        .map(|n| sim.add_publisher("room", &format!("user{n}")))
        .collect();
    sim.run(Duration::from_secs(3));
    for &me in &peers {
        for &other in &peers {
            if me == other {
                continue;
            }
            let video = sim
                .peer(me)
                .frames_from(&stream(&sim, other), MediaKind::Video);
            let audio = sim
                .peer(me)
                .frames_from(&stream(&sim, other), MediaKind::Audio);
            assert!(
                video > 30,
                "peer {me} got {video} video frames from {other}"
            );
            assert!(
                audio > 50,
                "peer {me} got {audio} audio frames from {other}"
            );
        }
        assert_eq!(
            sim.peer(me)
                .frames_from(&stream(&sim, me), MediaKind::Video),
            0,
            "no echo of own media"
        );
    }
    let report = sim.sfu.room_report(&"room".parse_room()).unwrap();
    assert_eq!(report.len(), 3);
    for p in report {
        assert!(
            p.counters.packets_in > 100 && p.counters.packets_out > 200,
            "{p:?}"
        );
    }
}

#[test]
fn rooms_are_isolated() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room-a", "alice");
    let b = sim.add_publisher("room-b", "bob");
    sim.run(Duration::from_secs(2));
    assert_eq!(sim.peer(a).total_frames(MediaKind::Video), 0);
    assert_eq!(sim.peer(b).total_frames(MediaKind::Video), 0);
}

#[test]
fn late_joiner_starts_on_a_keyframe_without_waiting_for_the_periodic_one() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    sim.peer_mut(a).keyframe_every = 100_000; // only the first frame and requested ones
    sim.run(Duration::from_secs(2));
    let b = sim.add_listener("room", "bob");
    let from_a = stream(&sim, a);
    let got_video = sim.run_until(Duration::from_secs(2), |s| {
        s.peer(b).frames_from(&from_a, MediaKind::Video) > 0
    });
    assert!(got_video, "the late joiner decoded no video");
    let first = sim
        .peer(b)
        .received
        .values()
        .find(|r| r.kind == Some(MediaKind::Video))
        .unwrap()
        .clone();
    assert!(
        first.keyframes >= 1,
        "the first frames forwarded include a keyframe: {first:?}"
    );
    assert!(sim.peer(a).keyframe_requests_seen >= 1);
}

#[test]
fn keyframe_requests_to_a_publisher_are_throttled() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    sim.peer_mut(a).keyframe_every = 100_000;
    sim.run(Duration::from_millis(500));
    // Ten subscribers joining at once each need a keyframe.
    for n in 0..10 {
        sim.add_listener("room", &format!("l{n}"));
    }
    sim.run(Duration::from_secs(2));
    let requests = sim.peer(a).keyframe_requests_seen;
    // 2.5 s at one request per 500 ms allows at most 6.
    assert!(
        (1..=6).contains(&requests),
        "publisher saw {requests} keyframe requests"
    );
}

#[test]
fn join_and_leave_renegotiate_and_notify() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(2));
    let b_id = sim.id(b);
    assert!(sim.messages(a).iter().any(
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.id == b_id)
    ));
    sim.leave(b);
    sim.run(Duration::from_secs(1));
    assert!(sim
        .messages(a)
        .iter()
        .any(|m| matches!(m, ServerMessage::ParticipantLeft { id } if *id == b_id)));
    assert!(sim.messages(a).iter().any(
        |m| matches!(m, ServerMessage::TrackUnpublished { participant, .. } if *participant == b_id)
    ));
    // A third participant joins after: a still gets media and renegotiates again.
    let c = sim.add_publisher("room", "carol");
    let from_c = stream(&sim, c);
    assert!(sim.run_until(Duration::from_secs(3), |s| s
        .peer(a)
        .frames_from(&from_c, MediaKind::Video)
        > 10));
    let offers = sim
        .messages(a)
        .iter()
        .filter(|m| matches!(m, ServerMessage::Offer { .. }))
        .count();
    assert!(
        offers >= 3,
        "alice saw {offers} server offers (join, leave, join)"
    );
}

#[test]
fn a_vanished_peer_is_removed_after_the_ice_grace_period() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(2));
    sim.vanish(b);
    let b_id = sim.id(b);
    let removed = sim.run_until(Duration::from_secs(20), |s| {
        s.messages(a)
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { id } if *id == b_id))
    });
    assert!(removed, "the vanished peer was never removed");
    assert_eq!(sim.sfu.participant_count(), 1);
    assert!(sim.closed.iter().any(|(id, _)| *id == b_id));
}

#[test]
fn a_peer_that_changes_network_reconnects_with_an_ice_restart() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(2));
    let from_a = stream(&sim, a);
    sim.change_network(b, "10.0.2.99:6000".parse().unwrap());
    let before = sim.peer(b).frames_from(&from_a, MediaKind::Video);
    let resumed = sim.run_until(Duration::from_secs(5), |s| {
        s.peer(b).frames_from(&from_a, MediaKind::Video) > before + 30
    });
    assert!(resumed, "media resumed at the new address");
    // Bob's own media reaches Alice again too, and nobody was removed.
    let from_b = stream(&sim, b);
    let before = sim.peer(a).frames_from(&from_b, MediaKind::Video);
    assert!(sim.run_until(Duration::from_secs(3), |s| s
        .peer(a)
        .frames_from(&from_b, MediaKind::Video)
        > before + 30));
    sim.run(Duration::from_secs(10));
    assert_eq!(sim.sfu.participant_count(), 2);
}

#[test]
fn nack_recovers_video_lost_on_the_subscriber_link() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_listener("room", "bob");
    sim.set_links(
        b,
        LinkParams::default(),
        LinkParams {
            latency: Duration::from_millis(20),
            loss: 0.05,
            ..LinkParams::default()
        },
    );
    sim.run(Duration::from_secs(10));
    let r = sim
        .peer(b)
        .received
        .values()
        .find(|r| r.kind == Some(MediaKind::Video))
        .unwrap()
        .clone();
    let sent = 10_000 / 33;
    // Frames str0m could not assemble contiguously are what NACK/RTX failed to recover.
    assert!(
        r.frames as f64 > 0.9 * sent as f64,
        "received {} of about {sent} frames: {r:?}",
        r.frames
    );
    assert!(
        (r.discontinuities as f64) < 0.02 * r.frames as f64,
        "{} of {} frames followed an unrecovered gap",
        r.discontinuities,
        r.frames
    );
    let _ = a;
}

#[test]
fn whep_viewer_receives_the_rooms_tracks_and_is_refilled() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    sim.run(Duration::from_secs(1));
    let v = sim.add_whep_viewer("room", "viewer", 1, 1);
    assert!(sim.run_until(Duration::from_secs(3), |s| s
        .peer(v)
        .total_frames(MediaKind::Video)
        > 20));
    assert!(sim.peer(v).total_frames(MediaKind::Audio) > 20);
    // The publisher leaves and another arrives: the same slots carry the new one.
    let b = sim.add_publisher("room", "bob");
    sim.leave(a);
    let before = sim.peer(v).total_frames(MediaKind::Video);
    assert!(sim.run_until(Duration::from_secs(3), |s| s
        .peer(v)
        .total_frames(MediaKind::Video)
        > before + 20));
    let r = sim
        .peer(v)
        .received
        .values()
        .find(|r| r.kind == Some(MediaKind::Video))
        .unwrap();
    assert_eq!(
        r.backwards, 0,
        "the slot's sequence numbers never went backwards"
    );
    let _ = b;
}

#[test]
fn bad_signaling_gets_errors_and_the_session_stays_usable() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    sim.client_message(
        a,
        ClientMessage::Answer {
            sdp: "v=0 garbage".into(),
        },
    );
    sim.client_message(
        a,
        ClientMessage::Offer {
            sdp: "not sdp".into(),
        },
    );
    sim.client_message(
        a,
        ClientMessage::Candidate {
            candidate: "candidate:garbage".into(),
        },
    );
    sim.client_message(a, ClientMessage::Chat { text: "   ".into() });
    let errors = sim
        .messages(a)
        .iter()
        .filter(|m| matches!(m, ServerMessage::Error { .. }))
        .count();
    assert_eq!(errors, 4, "{:?}", sim.messages(a));
    let b = sim.add_publisher("room", "bob");
    let from_b = stream(&sim, b);
    assert!(sim.run_until(Duration::from_secs(3), |s| s
        .peer(a)
        .frames_from(&from_b, MediaKind::Video)
        > 10));
    sim.client_message(
        a,
        ClientMessage::Chat {
            text: "hello".into(),
        },
    );
    assert!(sim
        .messages(b)
        .iter()
        .any(|m| matches!(m, ServerMessage::Chat { message } if message.text == "hello")));
}

#[test]
fn a_participant_renames_itself_and_everyone_sees_the_new_name() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_millis(500));
    let renamed = |sim: &SfuSim, i: usize, want: &str| {
        sim.messages(i)
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantRenamed { name, .. } if name == want))
    };
    for bad in ["", "   ", "two\nlines", &"x".repeat(65)] {
        sim.client_message(a, ClientMessage::Rename { name: bad.into() });
    }
    let refused = sim
        .messages(a)
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::BadMessage,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, 4, "{:?}", sim.messages(a));
    sim.client_message(
        a,
        ClientMessage::Rename {
            name: "  Alice A. ".into(),
        },
    );
    assert!(renamed(&sim, a, "Alice A.") && renamed(&sim, b, "Alice A."));
    sim.client_message(a, ClientMessage::Chat { text: "hi".into() });
    assert!(sim
        .messages(b)
        .iter()
        .any(|m| matches!(m, ServerMessage::Chat { message } if message.name == "Alice A.")));
}

#[test]
fn garbage_datagrams_are_counted_not_fatal() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(1));
    let now = sim.now;
    let stranger: std::net::SocketAddr = "10.9.9.9:1".parse().unwrap();
    let server: std::net::SocketAddr = "10.0.0.1:8801".parse().unwrap();
    let mut x: u32 = 1;
    for len in 0..2000usize {
        let data: Vec<u8> = (0..len % 1500)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for source in [stranger, sim.peer(a).addr] {
            sim.sfu.handle_datagram(
                now,
                stoa_sfu::Datagram {
                    proto: str0m::net::Protocol::Udp,
                    source,
                    destination: server,
                    contents: &data,
                },
            );
        }
    }
    assert!(sim.sfu.counters().unroutable >= 2000);
    let from_b = stream(&sim, b);
    let before = sim.peer(a).frames_from(&from_b, MediaKind::Video);
    sim.run(Duration::from_secs(1));
    assert!(sim.peer(a).frames_from(&from_b, MediaKind::Video) > before + 20);
}

trait ParseRoom {
    fn parse_room(&self) -> stoa_proto::RoomName;
}

impl ParseRoom for &str {
    fn parse_room(&self) -> stoa_proto::RoomName {
        stoa_proto::RoomName::new(*self).unwrap()
    }
}

#[test]
fn leaving_forgets_every_address_and_ufrag() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(1));
    sim.change_network(b, "10.0.2.7:7000".parse().unwrap());
    sim.run(Duration::from_secs(1));
    sim.leave(a);
    sim.leave(b);
    assert_eq!(sim.sfu.participant_count(), 0);
    assert_eq!(sim.sfu.room_count(), 0);
    assert_eq!(
        sim.sfu.routing_entries(),
        0,
        "no address or ufrag routes are left"
    );
}

#[test]
fn a_host_mutes_and_removes_a_participant_and_others_cannot() {
    let mut sim = SfuSim::new();
    let host = sim.add_host("room", "host");
    let bob = sim.add_publisher("room", "bob");
    let carol = sim.add_listener("room", "carol");
    sim.run(Duration::from_secs(2));
    let from_bob = stream(&sim, bob);
    let bob_id = sim.id(bob);
    let audio_at_carol = |s: &SfuSim| s.peer(carol).frames_from(&from_bob, MediaKind::Audio);
    assert!(
        audio_at_carol(&sim) > 50,
        "bob's audio flows before the mute"
    );

    // Only a room-admin may moderate.
    sim.client_message(
        carol,
        ClientMessage::MuteParticipant {
            participant: bob_id,
        },
    );
    assert!(matches!(
        sim.messages(carol).last(),
        Some(ServerMessage::Error {
            code: ErrorCode::Forbidden,
            ..
        })
    ));

    sim.client_message(
        host,
        ClientMessage::MuteParticipant {
            participant: bob_id,
        },
    );
    assert!(sim.messages(bob).iter().any(|m| matches!(
        m,
        ServerMessage::MutedByHost {
            kind: TrackKind::Audio
        }
    )));
    let audio_track = sim
        .messages(carol)
        .iter()
        .rev()
        .find_map(|m| match m {
            ServerMessage::TrackPublished { track }
                if track.participant == bob_id && track.kind == TrackKind::Audio =>
            {
                Some(track.clone())
            }
            _ => None,
        })
        .expect("others learn the track is muted");
    assert!(audio_track.muted);
    sim.run(Duration::from_millis(200));
    let muted_at = audio_at_carol(&sim);
    sim.run(Duration::from_secs(1));
    assert_eq!(audio_at_carol(&sim), muted_at, "no audio while host-muted");

    // Bob unmutes himself: his audio flows again.
    let mid = audio_track.id.rsplit('-').next().unwrap().to_string();
    sim.client_message(bob, ClientMessage::Mute { mid, muted: false });
    assert!(sim.run_until(Duration::from_secs(2), |s| audio_at_carol(s)
        > muted_at + 20));

    sim.client_message(
        host,
        ClientMessage::RemoveParticipant {
            participant: bob_id,
        },
    );
    assert!(sim.messages(bob).iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::Removed,
            fatal: true,
            ..
        }
    )));
    assert!(sim.closed.contains(&(bob_id, CloseReason::Removed)));
    assert!(sim
        .messages(carol)
        .iter()
        .any(|m| matches!(m, ServerMessage::ParticipantLeft { id } if *id == bob_id)));
    assert_eq!(sim.sfu.participant_count(), 2);

    // The host makes Carol a host too: she is told, and may now moderate.
    let (host_id, carol_id) = (sim.id(host), sim.id(carol));
    sim.client_message(
        carol,
        ClientMessage::MakeHost {
            participant: host_id,
        },
    );
    assert!(matches!(
        sim.messages(carol).last(),
        Some(ServerMessage::Error {
            code: ErrorCode::Forbidden,
            ..
        })
    ));
    sim.client_message(
        host,
        ClientMessage::MakeHost {
            participant: carol_id,
        },
    );
    assert!(sim.messages(carol).iter().any(
        |m| matches!(m, ServerMessage::Grants { grants } if grants.room_admin && grants.subscribe)
    ));
    sim.client_message(
        carol,
        ClientMessage::MuteParticipant {
            participant: host_id,
        },
    );
    assert!(sim
        .messages(host)
        .iter()
        .any(|m| matches!(m, ServerMessage::MutedByHost { .. })));
}
