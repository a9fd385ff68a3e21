//! Offers and ICE checks the way third-party WHIP/WHEP clients (FFmpeg, GStreamer) send them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stoa_proto::{Grants, RoomName};
use stoa_sfu::{
    demux, CloseReason, Datagram, JoinRequest, Output, ParticipantKind, Sfu, SfuConfig, SfuError,
};
use stoa_testkit::{Peer, SfuSim};
use str0m::media::MediaKind;
use str0m::net::Protocol;
use str0m::Candidate;

const SERVER: &str = "10.0.0.1:8801";
const CLIENT: &str = "10.0.1.1:5000";

fn sfu() -> Sfu {
    Sfu::new(SfuConfig {
        local_candidates: vec![Candidate::host(SERVER.parse().unwrap(), "udp").unwrap()],
        ..SfuConfig::default()
    })
}

fn join(sfu: &mut Sfu, now: Instant, kind: ParticipantKind) -> stoa_proto::ParticipantId {
    sfu.join(
        now,
        JoinRequest {
            room: RoomName::new("room").unwrap(),
            identity: "encoder".into(),
            name: "encoder".into(),
            grants: Grants::default(),
            kind,
            ice_servers: Vec::new(),
            lobby: false,
            meeting: None,
        },
    )
}

fn attribute<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("a={name}:")))
        .unwrap_or_else(|| panic!("no a={name} in {sdp}"))
}

/// A Binding request as FFmpeg 8 sends it: USERNAME, USE-CANDIDATE, MESSAGE-INTEGRITY and
/// FINGERPRINT, no PRIORITY and no ICE-CONTROLLING.
fn ffmpeg_binding_request(username: &str, password: &str, transaction: [u8; 12]) -> Vec<u8> {
    let mut msg = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
    msg.extend_from_slice(&transaction);
    msg.extend_from_slice(&0x0006u16.to_be_bytes());
    msg.extend_from_slice(&(username.len() as u16).to_be_bytes());
    msg.extend_from_slice(username.as_bytes());
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
    msg.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
    demux::seal(&mut msg, password.as_bytes());
    msg
}

/// The datagrams the SFU sends after a Binding request signed with `password`.
fn responses(sfu: &mut Sfu, now: Instant, request: &[u8]) -> Vec<Vec<u8>> {
    while sfu.poll_output().is_some() {}
    let client: SocketAddr = CLIENT.parse().unwrap();
    sfu.handle_datagram(
        now,
        Datagram {
            proto: Protocol::Udp,
            source: client,
            destination: SERVER.parse().unwrap(),
            contents: request,
        },
    );
    let mut sent = Vec::new();
    while let Some(out) = sfu.poll_output() {
        if let Output::Transmit(t) = out {
            assert_eq!(t.destination, client);
            sent.push(t.contents.to_vec());
        }
    }
    sent
}

#[test]
fn answers_binding_requests_without_priority_if_their_integrity_holds() {
    let now = Instant::now();
    let mut sfu = sfu();
    let id = join(&mut sfu, now, ParticipantKind::Whip);
    let mut peer = Peer::new(now, CLIENT.parse().unwrap()).unwrap();
    let offer = peer.publish_offer(true, true).unwrap();
    let answer = sfu.accept_offer(now, id, &offer).expect("offer accepted");
    let username = format!(
        "{}:{}",
        attribute(&answer, "ice-ufrag"),
        attribute(&offer, "ice-ufrag")
    );
    let password = attribute(&answer, "ice-pwd");

    let forged = ffmpeg_binding_request(&username, "not-the-password", [1; 12]);
    assert!(responses(&mut sfu, now, &forged).is_empty());
    let unroutable = sfu.counters().unroutable;

    let transaction = [7; 12];
    let request = ffmpeg_binding_request(&username, password, transaction);
    let sent = responses(&mut sfu, now, &request);
    let success = sent
        .iter()
        .find(|d| d[..2] == [0x01, 0x01])
        .unwrap_or_else(|| panic!("no Binding success response among {sent:?}"));
    assert_eq!(
        success[8..20],
        transaction,
        "the response answers our transaction"
    );
    assert_eq!(sfu.counters().unroutable, unroutable);
}

#[test]
fn accepts_opus_without_a_channel_count() {
    let now = Instant::now();
    let mut sfu = sfu();
    let id = join(&mut sfu, now, ParticipantKind::Whep);
    let mut peer = Peer::new(now, CLIENT.parse().unwrap()).unwrap();
    let offer = peer.view_offer(1, 1).unwrap();
    assert!(offer.contains("opus/48000/2"));
    let offer = offer.replace("opus/48000/2", "opus/48000");
    let answer = sfu.accept_offer(now, id, &offer).expect("offer accepted");
    let audio = answer
        .split("m=")
        .find(|m| m.starts_with("audio"))
        .expect("an audio m-line");
    assert!(!audio.starts_with("audio 0 "), "audio rejected: {answer}");
    assert!(audio.contains("opus/48000/2"), "{answer}");
}

#[test]
fn refuses_an_offer_without_a_supported_codec() {
    let now = Instant::now();
    let mut sfu = sfu();
    let mut peer = Peer::new(now, CLIENT.parse().unwrap()).unwrap();
    let offer = peer.publish_offer(true, false).unwrap();
    let pcmu_only = offer
        .lines()
        .filter(|l| !l.starts_with("a=rtpmap:") && !l.starts_with("a=fmtp:"))
        .filter(|l| !l.starts_with("a=rtcp-fb:"))
        .map(|l| match l.strip_prefix("m=audio 9 UDP/TLS/RTP/SAVPF ") {
            Some(_) => "m=audio 9 UDP/TLS/RTP/SAVPF 0".to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\na=rtpmap:0 PCMU/8000\r\n";
    let id = join(&mut sfu, now, ParticipantKind::Whip);
    match sfu.accept_offer(now, id, &pcmu_only) {
        Err(SfuError::BadSdp(message)) => {
            assert!(message.contains("no codec"), "{message}");
            assert!(message.contains("PCMU"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?} for {pcmu_only}"),
    }
    assert!(Sfu::check_offer(&offer).is_ok());
    assert!(Sfu::check_offer(&pcmu_only).is_err());
}

#[test]
fn sdp_errors_are_plain_text() {
    for garbage in ["", "v=0\r\n", "v=0\r\nm=audio x\r\n", "hello"] {
        let Err(SfuError::BadSdp(message)) = Sfu::check_offer(garbage) else {
            panic!("{garbage:?} accepted");
        };
        assert!(!message.contains("0x"), "{message}");
        assert!(!message.contains("PointerOffset"), "{message}");
    }
}

#[test]
fn a_whep_answer_puts_one_publishers_tracks_in_one_stream() {
    let mut sim = SfuSim::new();
    let first = sim.add_publisher("room", "first");
    let second = sim.add_publisher("room", "second");
    sim.run(Duration::from_secs(2));
    let viewer = sim.sfu.join(
        sim.now,
        JoinRequest {
            room: RoomName::new("room").unwrap(),
            identity: "viewer".into(),
            name: "viewer".into(),
            grants: Grants::default(),
            kind: ParticipantKind::Whep,
            ice_servers: Vec::new(),
            lobby: false,
            meeting: None,
        },
    );
    let mut player = Peer::new(sim.now, "10.0.2.1:5000".parse().unwrap()).unwrap();
    let answer = sim
        .sfu
        .accept_offer(sim.now, viewer, &player.view_offer(2, 2).unwrap())
        .expect("WHEP offer accepted");
    let streams: Vec<&str> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=msid:"))
        .map(|v| v.split(' ').next().unwrap())
        .collect();
    // Audio, audio, video, video: the first publisher's pair, then the second's.
    let (a, b) = (sim.id(first).to_string(), sim.id(second).to_string());
    assert_eq!(streams, [&a, &b, &a, &b], "{answer}");
    player.accept_answer(&answer).unwrap();
}

#[test]
fn a_client_closing_its_session_is_a_close_not_a_failure() {
    let mut sim = SfuSim::new();
    let leaver = sim.add_publisher("room", "leaver");
    let stayer = sim.add_publisher("room", "stayer");
    sim.run(Duration::from_secs(2));
    assert!(sim.peer(leaver).connected && sim.peer(stayer).connected);
    sim.peer_mut(leaver).rtc.close().expect("a graceful close");
    let id = sim.id(leaver);
    let closed = sim.run_until(Duration::from_secs(3), |s| {
        s.closed.iter().any(|(p, _)| *p == id)
    });
    assert!(closed, "the SFU noticed the close");
    assert!(
        sim.closed.contains(&(id, CloseReason::Closed)),
        "{:?}",
        sim.closed
    );
}

/// An offer as a GStreamer client makes it before its payloaders have SSRCs: no `a=ssrc`
/// lines and no MID header extension, so its packets cannot be placed by either.
fn without_ssrcs_or_mid(offer: String) -> String {
    offer
        .lines()
        .filter(|l| !l.starts_with("a=ssrc") && !l.contains("urn:ietf:params:rtp-hdrext:sdes:mid"))
        .map(|l| format!("{l}\r\n"))
        .collect()
}

#[test]
fn streams_without_ssrcs_or_mid_are_mapped_by_payload_type() {
    let mut sim = SfuSim::new();
    let encoder = sim.add_publisher_offering("room", "encoder", without_ssrcs_or_mid);
    let viewer = sim.add_listener("room", "viewer");
    sim.run(Duration::from_secs(4));
    assert!(sim.peer(encoder).connected);
    let video = sim.peer(viewer).total_frames(MediaKind::Video);
    let audio = sim.peer(viewer).total_frames(MediaKind::Audio);
    assert!(
        video > 60 && audio > 100,
        "video {video}, audio {audio} frames"
    );

    // What the viewer is sent stays near what there is to forward (no padding far above it).
    let stats = sim.sfu.room_stats(&RoomName::new("room").unwrap()).unwrap();
    let rate = |id| {
        let p = stats.participants.iter().find(|p| p.id == id).unwrap();
        (p.bitrate_in_bps, p.bitrate_out_bps)
    };
    let (published, _) = rate(sim.id(encoder));
    let (_, sent) = rate(sim.id(viewer));
    eprintln!("published {published} bit/s, sent to the viewer {sent} bit/s");
    assert!(
        sent < published * 3 / 2,
        "sent {sent} for {published} published"
    );
}
