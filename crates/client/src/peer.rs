//! A str0m peer playing the part of a browser: publishes audio and video (optionally as three
//! simulcast layers), answers offers, and counts the frames it decodes per remote track.
//!
//! Synthetic VP8 frames: byte 0 is the frame tag (bit 0 clear on keyframes); keyframes carry
//! the start code and picture size in bytes 3..10 like real VP8; byte 10 is the simulcast
//! layer index (0 without simulcast); with [`Peer::wall_clock_stamps`] bytes 12..20 hold the
//! send time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecConfig};
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// What a peer received on one of its receiving mids.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub kind: Option<MediaKind>,
    /// The publishing participant (`msid` stream id) and track id.
    pub stream_id: String,
    pub track_id: String,
    pub frames: u64,
    pub keyframes: u64,
    /// Frames that str0m flagged as following a gap.
    pub discontinuities: u64,
    /// Sequence-number ranges seen, in order, to check continuity.
    pub last_seq: Option<u64>,
    pub backwards: u64,
    /// RTP packets carried by the delivered frames (the sizes of their `seq_range`s).
    pub packets: u64,
    /// The lowest extended sequence number of any delivered frame.
    pub first_seq: Option<u64>,
    /// The highest extended sequence number of any delivered frame.
    pub max_seq: Option<u64>,
    /// Payload bytes of the delivered frames.
    pub bytes: u64,
    /// Network arrival time of the first and the latest delivered frame.
    pub first_frame_at: Option<Instant>,
    pub last_frame_at: Option<Instant>,
    /// Gaps of more than [`FREEZE_GAP`] between consecutive frames (counted for video only).
    pub freezes: u64,
    /// With [`Peer::wall_clock_stamps`]: one-way latencies in microseconds, one per frame
    /// whose payload carried a plausible send time (negative if the clocks disagree).
    pub latency_us: Vec<i64>,
    /// RFC 3550-style interarrival jitter estimate from the per-frame one-way delays, in µs.
    pub jitter_us: f64,
    /// Video: the simulcast layer of the latest frame, and frames received per layer.
    pub layer: Option<u8>,
    pub layer_frames: [u64; 4],
    /// Video: the picture width of the latest keyframe.
    pub width: Option<u16>,
    /// With [`Peer::record_frames`]: every delivered video frame, in order.
    pub log: Vec<FrameRecord>,
}

/// One delivered frame, for checking continuity and layer switches.
#[derive(Debug, Clone)]
pub struct FrameRecord {
    pub at: Instant,
    /// First and last extended sequence number of its packets.
    pub seq: (u64, u64),
    pub layer: u8,
    pub keyframe: bool,
    /// str0m saw no gap before it.
    pub contiguous: bool,
}

/// One simulcast encoding a [`Peer`] sends.
#[derive(Debug, Clone)]
pub struct SendLayer {
    pub rid: Rid,
    pub frame_bytes: usize,
    pub size: (u16, u16),
    /// Whether it is sent (the server's `layers` message turns layers off and on).
    pub active: bool,
    keyframe_requested: bool,
    frames: u64,
    pub keyframe_requests_seen: u64,
}

/// The layers browsers typically send: 180p, 360p and 720p at about 150 kbit/s,
/// 500 kbit/s and 1.5 Mbit/s (30 frames per second).
pub fn default_layers() -> Vec<SendLayer> {
    [
        ("q", 625, (320, 180)),
        ("h", 2083, (640, 360)),
        ("f", 6250, (1280, 720)),
    ]
    .into_iter()
    .map(|(rid, frame_bytes, size)| SendLayer {
        rid: rid.into(),
        frame_bytes,
        size,
        active: true,
        keyframe_requested: false,
        frames: 0,
        keyframe_requests_seen: 0,
    })
    .collect()
}

/// A gap between video frames longer than this counts as a freeze.
pub const FREEZE_GAP: Duration = Duration::from_millis(500);

/// Nanoseconds since the Unix epoch (the stamp format in payload bytes 12..20).
fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Reads a send time stamped by [`Peer::wall_clock_stamps`] (bytes 12..20, u64
/// little-endian nanoseconds since the Unix epoch).
fn stamped_send_time(data: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = data.get(STAMP)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

const LAYER_BYTE: usize = 10;
const STAMP: std::ops::Range<usize> = 12..20;

/// A synthetic VP8 frame (see the module documentation).
fn video_frame(key: bool, len: usize, size: (u16, u16), layer: u8, stamp: bool) -> Vec<u8> {
    let mut frame = vec![0x55u8; len.max(STAMP.end)];
    frame[0] = if key { 0x10 } else { 0x11 };
    if key {
        frame[1..3].fill(0);
        frame[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        frame[6..8].copy_from_slice(&size.0.to_le_bytes());
        frame[8..10].copy_from_slice(&size.1.to_le_bytes());
    }
    frame[LAYER_BYTE] = layer;
    if stamp {
        frame[STAMP].copy_from_slice(&wall_nanos().to_le_bytes());
    }
    frame
}

pub struct Peer {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub received: HashMap<Mid, Received>,
    pub connected: bool,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    next_audio: Instant,
    next_video: Instant,
    frame_count: u64,
    /// Every Nth video frame is a keyframe (and keyframe requests force one).
    pub keyframe_every: u64,
    keyframe_requested: bool,
    pub keyframe_requests_seen: u64,
    start: Instant,
    /// Stamp the wall-clock send time into bytes 1..9 of every frame produced and measure
    /// one-way latency of received frames from it (off by default: simulated networks use
    /// simulated time).
    pub wall_clock_stamps: bool,
    /// When str0m reported `Connected` (the `now` of the input that led to it).
    pub connected_at: Option<Instant>,
    last_input: Instant,
    /// The RFC 6464 audio level put on every audio packet, in dBov: 0 is the loudest,
    /// -127 (the default) silence. Voice activity is flagged above -50.
    pub audio_level: i8,
    /// Simulcast encodings of the video track; empty: one plain encoding.
    pub layers: Vec<SendLayer>,
    /// Keep a [`FrameRecord`] of every video frame received (off by default: it grows).
    pub record_frames: bool,
}

/// What can go wrong in a peer: the server's SDP, or str0m refusing what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("unreadable SDP: {0}")]
    BadSdp(String),
    #[error("an answer arrived with no offer outstanding")]
    NoOfferOutstanding,
    #[error("nothing to offer")]
    NothingToOffer,
    #[error("{0} cannot be a host candidate")]
    BadAddress(SocketAddr),
    #[error(transparent)]
    Rtc(#[from] str0m::RtcError),
}

fn host_candidate(addr: SocketAddr) -> Result<Candidate, PeerError> {
    Candidate::host(addr, "udp").map_err(|_| PeerError::BadAddress(addr))
}

const AUDIO_FRAME: Duration = Duration::from_millis(20);
const VIDEO_FRAME: Duration = Duration::from_millis(33);

impl Peer {
    pub fn new(now: Instant, addr: SocketAddr) -> Result<Self, PeerError> {
        let config = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true);
        Self::with_config(now, addr, config)
    }

    /// A peer that does not negotiate transport-wide congestion control (no `transport-cc`
    /// feedback, no transport sequence numbers), like a client that reports its bandwidth
    /// with REMB instead ([`Peer::send_remb`]).
    pub fn without_twcc(now: Instant, addr: SocketAddr) -> Result<Self, PeerError> {
        let mut extensions = ExtensionMap::empty();
        for (id, ext) in ExtensionMap::standard().iter() {
            if *ext != Extension::TransportSequenceNumber {
                extensions.set(id, ext.clone());
            }
        }
        let mut config = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_extension_map(extensions);
        let codecs = config.codec_config();
        let params = codecs.params().iter().cloned().map(|mut p| {
            p.set_fb_transport_cc(false);
            p
        });
        *codecs = CodecConfig::new_from_payload_params(params.collect());
        Self::with_config(now, addr, config)
    }

    fn with_config(now: Instant, addr: SocketAddr, config: RtcConfig) -> Result<Self, PeerError> {
        let mut rtc = config.build(now);
        rtc.add_local_candidate(host_candidate(addr)?);
        Ok(Self {
            rtc,
            addr,
            received: HashMap::new(),
            connected: false,
            pending: None,
            audio_mid: None,
            video_mid: None,
            next_audio: now,
            next_video: now,
            frame_count: 0,
            keyframe_every: 100,
            keyframe_requested: false,
            keyframe_requests_seen: 0,
            start: now,
            wall_clock_stamps: false,
            connected_at: None,
            last_input: now,
            audio_level: -127,
            layers: Vec::new(),
            record_frames: false,
        })
    }

    /// When the next media frame is due, if this peer publishes and is connected.
    pub fn next_frame_due(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        let audio = self.audio_mid.map(|_| self.next_audio);
        let video = self.video_mid.map(|_| self.next_video);
        match (audio, video) {
            (Some(a), Some(v)) => Some(a.min(v)),
            (a, v) => a.or(v),
        }
    }

    /// Whether an offer of ours awaits its answer.
    pub fn offer_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The first offer: sendonly audio and/or video (simulcast if [`Peer::layers`] is set).
    pub fn publish_offer(&mut self, audio: bool, video: bool) -> Result<String, PeerError> {
        let simulcast = (!self.layers.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for l in &self.layers {
                s.add_send_layer(SimulcastLayer::new(&l.rid));
            }
            s
        });
        let mut api = self.rtc.sdp_api();
        if audio {
            self.audio_mid =
                Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        }
        if video {
            self.video_mid =
                Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast));
        }
        if !audio && !video {
            api.add_channel("stoa".into());
        }
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// A receive-only offer (WHEP style).
    pub fn view_offer(&mut self, audio: usize, video: usize) -> Result<String, PeerError> {
        let mut api = self.rtc.sdp_api();
        let mut mids = Vec::new();
        for _ in 0..audio {
            mids.push((
                api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None),
                MediaKind::Audio,
            ));
        }
        for _ in 0..video {
            mids.push((
                api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None),
                MediaKind::Video,
            ));
        }
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        for (mid, kind) in mids {
            self.received.entry(mid).or_default().kind = Some(kind);
        }
        Ok(offer.to_sdp_string())
    }

    /// Moves to a new address (a network change) and returns an ICE-restart offer.
    pub fn restart_ice(&mut self, new_addr: SocketAddr) -> Result<String, PeerError> {
        let new = host_candidate(new_addr)?;
        let old = host_candidate(self.addr)?;
        self.rtc.direct_api().invalidate_candidate(&old);
        self.addr = new_addr;
        self.rtc.add_local_candidate(new);
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().ok_or(PeerError::NothingToOffer)?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// Applies the server's answer to our outstanding offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), PeerError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        let pending = self.pending.take().ok_or(PeerError::NoOfferOutstanding)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Answers a server offer (rolling back our own offer, like a polite browser).
    pub fn accept_offer(&mut self, sdp: &str) -> Result<String, PeerError> {
        self.pending = None;
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| PeerError::BadSdp(e.to_string()))?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        for m in self.rtc_receiving_mids() {
            self.received.entry(m.0).or_default().kind = Some(m.1);
        }
        Ok(answer.to_sdp_string())
    }

    fn rtc_receiving_mids(&self) -> Vec<(Mid, MediaKind)> {
        self.received
            .iter()
            .filter_map(|(mid, r)| r.kind.map(|k| (*mid, k)))
            .collect()
    }

    /// Writes media that is due at `now`.
    pub fn produce(&mut self, now: Instant) -> Result<(), PeerError> {
        if !self.connected {
            return Ok(());
        }
        if let Some(mid) = self.audio_mid {
            while self.next_audio <= now {
                let t = self.next_audio.duration_since(self.start);
                let mut frame = vec![0xfc; 60];
                if self.wall_clock_stamps {
                    frame[STAMP].copy_from_slice(&wall_nanos().to_le_bytes());
                }
                self.write(
                    mid,
                    None,
                    Codec::Opus,
                    now,
                    MediaTime::from_micros(t.as_micros() as u64),
                    frame,
                )?;
                self.next_audio += AUDIO_FRAME;
            }
        }
        if let Some(mid) = self.video_mid {
            while self.next_video <= now {
                let time = MediaTime::from_micros(
                    self.next_video.duration_since(self.start).as_micros() as u64,
                );
                if self.layers.is_empty() {
                    self.produce_plain_video(mid, now, time)?;
                } else {
                    self.produce_layers(mid, now, time)?;
                }
                self.next_video += VIDEO_FRAME;
            }
        }
        Ok(())
    }

    fn produce_plain_video(
        &mut self,
        mid: Mid,
        now: Instant,
        time: MediaTime,
    ) -> Result<(), PeerError> {
        let key = self.keyframe_requested || self.frame_count.is_multiple_of(self.keyframe_every);
        self.keyframe_requested = false;
        // 2500 bytes span 3 packets.
        let frame = video_frame(key, 2500, (640, 360), 0, self.wall_clock_stamps);
        self.write(mid, None, Codec::Vp8, now, time, frame)?;
        self.frame_count += 1;
        Ok(())
    }

    fn produce_layers(&mut self, mid: Mid, now: Instant, time: MediaTime) -> Result<(), PeerError> {
        for i in 0..self.layers.len() {
            let l = &mut self.layers[i];
            if !l.active {
                continue;
            }
            let key = l.keyframe_requested || l.frames.is_multiple_of(self.keyframe_every);
            l.keyframe_requested = false;
            l.frames += 1;
            let frame = video_frame(key, l.frame_bytes, l.size, i as u8, self.wall_clock_stamps);
            let rid = l.rid;
            self.write(mid, Some(rid), Codec::Vp8, now, time, frame)?;
        }
        self.frame_count += 1;
        Ok(())
    }

    /// Sends exactly the listed simulcast layers (as the web client does on `layers`); a
    /// layer that resumes starts with a keyframe.
    pub fn set_active_layers(&mut self, active: &[String]) {
        for l in &mut self.layers {
            let on = active.iter().any(|r| r.as_str() == &*l.rid);
            if on && !l.active {
                l.keyframe_requested = true;
            }
            l.active = on;
        }
    }

    fn write(
        &mut self,
        mid: Mid,
        rid: Option<Rid>,
        codec: Codec,
        now: Instant,
        time: MediaTime,
        data: Vec<u8>,
    ) -> Result<(), PeerError> {
        let Some(mut writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        if let Some(rid) = rid {
            writer = writer.rid(rid);
        }
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return Ok(());
        };
        let writer = if codec == Codec::Opus {
            writer.audio_level(self.audio_level, self.audio_level > -50)
        } else {
            writer
        };
        let clock = if codec == Codec::Opus {
            Frequency::FORTY_EIGHT_KHZ
        } else {
            Frequency::NINETY_KHZ
        };
        let rtp_time = MediaTime::new(time.numer() * clock.get() as u64 / 1_000_000, clock);
        writer.write(pt, now, rtp_time, data)?;
        Ok(())
    }

    /// Sends a REMB (receiver-estimated maximum bitrate) report of `bps` about every video
    /// stream this peer receives.
    pub fn send_remb(&mut self, bps: u64) {
        let mids: Vec<Mid> = self
            .received
            .iter()
            .filter(|(_, r)| r.kind == Some(MediaKind::Video))
            .map(|(mid, _)| *mid)
            .collect();
        let mut api = self.rtc.direct_api();
        for mid in mids {
            if let Some(stream) = api.stream_rx_by_mid(mid, None) {
                stream.request_remb(Bitrate::bps(bps));
            }
        }
    }

    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        self.last_input = now;
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.addr, contents) else {
            return;
        };
        let _ = self.rtc.handle_input(Input::Receive(now, receive));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_input = now;
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// Polls until str0m waits; returns datagrams to send and the next deadline.
    pub fn poll(&mut self) -> Result<(Vec<Transmit>, Instant), PeerError> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok((out, t)),
                Output::Transmit(t) => out.push(t),
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.connected_at.get_or_insert(self.last_input);
            }
            Event::MediaAdded(m) => {
                let entry = self.received.entry(m.mid).or_default();
                entry.kind = Some(m.kind);
                if let Some(media) = self.rtc.media(m.mid) {
                    entry.stream_id = media.stream_id().to_string();
                    entry.track_id = media.track_id().to_string();
                }
            }
            Event::MediaData(d) => {
                let r = self.received.entry(d.mid).or_default();
                r.frames += 1;
                let video = r.kind == Some(MediaKind::Video);
                let keyframe = video && d.data.first().is_some_and(|b| b & 1 == 0);
                if keyframe {
                    r.keyframes += 1;
                    if d.data.get(3..6) == Some(&[0x9d, 0x01, 0x2a][..]) {
                        r.width = d.data.get(6..8).map(|w| u16::from_le_bytes([w[0], w[1]]));
                    }
                }
                if let Some(&layer) = d.data.get(LAYER_BYTE).filter(|_| video) {
                    r.layer = Some(layer);
                    if let Some(n) = r.layer_frames.get_mut(layer as usize) {
                        *n += 1;
                    }
                    if self.record_frames {
                        r.log.push(FrameRecord {
                            at: d.network_time,
                            seq: (**d.seq_range.start(), **d.seq_range.end()),
                            layer,
                            keyframe,
                            contiguous: d.contiguous,
                        });
                    }
                }
                if !d.contiguous {
                    r.discontinuities += 1;
                }
                let first = **d.seq_range.start();
                if r.last_seq.is_some_and(|l| first <= l) {
                    r.backwards += 1;
                }
                r.last_seq = Some(**d.seq_range.end());
                let (lo, hi) = (**d.seq_range.start(), **d.seq_range.end());
                r.packets += hi.saturating_sub(lo) + 1;
                r.first_seq = Some(r.first_seq.map_or(lo, |f| f.min(lo)));
                r.max_seq = Some(r.max_seq.map_or(hi, |m| m.max(hi)));
                r.bytes += d.data.len() as u64;
                let at = d.network_time;
                if let Some(last) = r.last_frame_at {
                    if r.kind == Some(MediaKind::Video)
                        && at.saturating_duration_since(last) > FREEZE_GAP
                    {
                        r.freezes += 1;
                    }
                }
                r.first_frame_at.get_or_insert(at);
                r.last_frame_at = Some(at);
                if self.wall_clock_stamps {
                    if let Some(sent) = stamped_send_time(&d.data) {
                        let lat = (wall_nanos() as i128 - sent as i128) / 1000;
                        // Only plausible stamps: within a minute either way.
                        if lat.abs() < 60_000_000 {
                            let lat = lat as i64;
                            if let Some(prev) = r.latency_us.last() {
                                let d = (lat - prev).unsigned_abs() as f64;
                                r.jitter_us += (d - r.jitter_us) / 16.0;
                            }
                            r.latency_us.push(lat);
                        }
                    }
                }
            }
            Event::KeyframeRequest(req) => {
                self.keyframe_requests_seen += 1;
                match self.layers.iter_mut().find(|l| Some(l.rid) == req.rid) {
                    Some(l) => {
                        l.keyframe_requested = true;
                        l.keyframe_requests_seen += 1;
                    }
                    None => self.keyframe_requested = true,
                }
            }
            _ => {}
        }
    }

    /// Frames received per remote participant (stream id) and kind.
    pub fn frames_from(&self, stream_id: &str, kind: MediaKind) -> u64 {
        self.received
            .values()
            .filter(|r| r.stream_id == stream_id && r.kind == Some(kind))
            .map(|r| r.frames)
            .sum()
    }

    pub fn total_frames(&self, kind: MediaKind) -> u64 {
        self.received
            .values()
            .filter(|r| r.kind == Some(kind))
            .map(|r| r.frames)
            .sum()
    }
}
