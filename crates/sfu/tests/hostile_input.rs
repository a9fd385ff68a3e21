//! Property tests: arbitrary bytes from the network and arbitrary signaling never panic the
//! SFU, and a call keeps working afterwards.

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use stoa_proto::ClientMessage;
use stoa_sfu::keyframe::{starts_keyframe, VideoCodec};
use stoa_sfu::{demux, Datagram};
use stoa_testkit::SfuSim;
use str0m::media::MediaKind;
use str0m::net::Protocol;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_accept_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let _ = demux::classify(&data);
        let _ = demux::stun_local_ufrag(&data);
        let _ = starts_keyframe(VideoCodec::Vp8, &data);
        let _ = starts_keyframe(VideoCodec::H264, &data);
    }

    #[test]
    fn stun_shaped_garbage_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        declared_len in any::<u16>(),
    ) {
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&declared_len.to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        msg.extend_from_slice(&[0; 12]);
        msg.extend_from_slice(&body);
        let _ = demux::stun_local_ufrag(&msg);
    }

    #[test]
    fn signaling_text_never_panics(text in ".{0,400}") {
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }
}

/// Random datagrams of every class, from a connected participant's own address and from
/// strangers, then random SDP-ish signaling; the call between two peers survives it all.
#[test]
fn a_connected_call_survives_random_datagrams_and_signaling() {
    let mut sim = SfuSim::new();
    let a = sim.add_publisher("room", "alice");
    let b = sim.add_publisher("room", "bob");
    sim.run(Duration::from_secs(2));
    let server: std::net::SocketAddr = "10.0.0.1:8801".parse().unwrap();
    let sources = [
        sim.peer(a).addr,
        sim.peer(b).addr,
        "10.66.0.1:9".parse().unwrap(),
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (
        0usize..3,
        0u8..4,
        proptest::collection::vec(any::<u8>(), 0..1400),
    );
    for _ in 0..3000 {
        let (src, class, mut data) = strategy.new_tree(&mut runner).unwrap().current();
        // Steer the first byte into each RFC 7983 range: STUN, DTLS, RTP/RTCP, other.
        let first = [0x00, 0x16, 0x80, 0xff][class as usize];
        if data.is_empty() {
            data.push(first);
        } else {
            data[0] = first | (data[0] & 0x01);
        }
        let now = sim.now;
        sim.sfu.handle_datagram(
            now,
            Datagram {
                proto: Protocol::Udp,
                source: sources[src],
                destination: server,
                contents: &data,
            },
        );
    }
    let sdp_like = [
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
        "",
        "\u{0}",
    ];
    for s in sdp_like {
        sim.client_message(a, ClientMessage::Offer { sdp: s.into() });
        sim.client_message(a, ClientMessage::Answer { sdp: s.into() });
        sim.client_message(
            a,
            ClientMessage::Candidate {
                candidate: s.into(),
            },
        );
        sim.client_message(
            a,
            ClientMessage::Mute {
                mid: s.into(),
                muted: true,
            },
        );
    }
    let from_b = sim.id(b).to_string();
    let before = sim.peer(a).frames_from(&from_b, MediaKind::Video);
    sim.run(Duration::from_secs(2));
    assert!(
        sim.peer(a).frames_from(&from_b, MediaKind::Video) > before + 30,
        "the call kept working"
    );
}
