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

/// One edit of an SDP offer's text.
#[derive(Debug, Clone)]
enum Edit {
    DropLine(usize),
    DuplicateLine(usize),
    ReplaceLine(usize, String),
    /// Replaces the value after the line's first `:` or `=` (ports, payload types, ids).
    ReplaceValue(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![
        "[0-9]{1,12}".boxed(),
        "-?[0-9]{1,3}".boxed(),
        ".{0,40}".boxed(),
        "[a-zA-Z0-9/ ]{0,30}".boxed(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), "[a-z]=.{0,60}").prop_map(|(i, l)| Edit::ReplaceLine(i, l)),
        (any::<usize>(), value).prop_map(|(i, v)| Edit::ReplaceValue(i, v)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(sdp: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = sdp.lines().map(String::from).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::DropLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::ReplaceLine(i, l) => lines[i % n] = l.clone(),
            Edit::ReplaceValue(i, v) => {
                let l = &mut lines[i % n];
                if let Some(at) = l.find([':', '=']) {
                    l.truncate(at + 1);
                    l.push_str(v);
                }
            }
            Edit::Truncate(i) => {
                let text = lines.join("\r\n");
                let mut cut = i % (text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                lines = text[..cut].lines().map(String::from).collect();
            }
        }
    }
    lines.join("\r\n") + "\r\n"
}

proptest! {
    // More cases for a long run: PROPTEST_CASES=100000 cargo test -p stoa-sfu --test hostile_input
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A real WHIP offer (audio, video, simulcast-free) with random lines dropped, repeated,
    /// rewritten and values replaced: the SFU answers or refuses in words, never panics, and
    /// an error message carries no raw pointer.
    #[test]
    fn mutated_offers_are_answered_or_refused(edits in proptest::collection::vec(edit(), 1..6)) {
        let now = std::time::Instant::now();
        let mut peer = stoa_testkit::Peer::new(now, "10.0.1.1:5000".parse().unwrap()).unwrap();
        let offer = apply(&peer.publish_offer(true, true).unwrap(), &edits);
        let mut sfu = stoa_sfu::Sfu::new(stoa_sfu::SfuConfig::default());
        let id = sfu.join(now, stoa_sfu::JoinRequest {
            room: stoa_proto::RoomName::new("fuzz").unwrap(),
            identity: "fuzzer".into(),
            name: "fuzzer".into(),
            grants: stoa_proto::Grants::default(),
            kind: stoa_sfu::ParticipantKind::Whip,
            ice_servers: Vec::new(),
        lobby: false,
        meeting: None,
        });
        if let Err(e) = sfu.accept_offer(now, id, &offer) {
            let text = e.to_string();
            prop_assert!(!text.contains("0x7f") && !text.contains("PointerOffset"), "{}", text);
        }
        sfu.handle_timeout(now + Duration::from_secs(1));
        while sfu.poll_output().is_some() {}
    }

    /// Signaling messages shaped like the real ones (known types, fields of any JSON value)
    /// parse or fail cleanly.
    #[test]
    fn signaling_shaped_json_never_panics(
        kind in prop_oneof![Just("join"), Just("offer"), Just("answer"), Just("candidate"), Just("publish"),
            Just("mute"), Just("chat"), Just("mute_participant"), Just("remove_participant"),
            Just("admit"), Just("deny"), Just("lock"), Just("video_size"), Just("ping"), Just("leave"), Just("x")],
        fields in proptest::collection::vec(("[a-z_]{1,12}", prop_oneof![
            Just("null".to_string()), "-?[0-9]{1,20}(\\.[0-9]{1,5})?", "\"[^\"\\\\]{0,30}\"".boxed(),
            Just("[]".to_string()), Just("{}".to_string()), Just("true".to_string()),
        ]), 0..5),
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let text = format!("{{\"type\":\"{kind}\"{}{}}}", if body.is_empty() { "" } else { "," }, body.join(","));
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }
}
