//! Call-quality statistics: what str0m reports about each participant's session every
//! [`STATS_INTERVAL`] (`PeerStats`, `MediaIngressStats`, `MediaEgressStats`), kept as the
//! latest sample per participant and per `(mid, rid)`, turned into per-room reports
//! ([`Sfu::room_stats`]) and server-wide totals ([`Sfu::totals`]).
//!
//! Nothing here runs per packet: samples arrive with str0m's stats events, and the packet
//! counts come from the participants' [`ParticipantCounters`]. Totals stay monotonic across
//! departures because a leaving participant's last figures are added to `retired`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use str0m::media::{Mid, Rid};
use str0m::stats::{MediaEgressStats, MediaIngressStats, PeerStats};
use str0m::Event;

use stoa_proto::{ParticipantId, RoomName, TrackKind, TrackSource};

use crate::participant::{DownTrack, Participant, UpTrack};
use crate::{ParticipantCounters, Sfu};

/// How often str0m reports statistics for each session. Often, because its peer figures
/// also feed bandwidth management ([`crate::congestion`]).
pub const STATS_INTERVAL: Duration = Duration::from_millis(200);
/// Bitrates are measured over at least this long, however often samples come.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// How the bandwidth towards a participant is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EstimateSource {
    /// The server's own estimator, from transport-wide congestion control feedback.
    Twcc,
    /// The participant's receiver-estimated maximum bitrate reports (without TWCC).
    Remb,
}

/// Statistics of every participant of one room.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomStats {
    pub room: String,
    /// In join order.
    pub participants: Vec<ParticipantStats>,
}

/// One participant's session as the server sees it. "In" is from the participant to the
/// server, "out" from the server to the participant. Rates cover the last stats interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantStats {
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    /// `interactive`, `whip` or `whep`.
    pub kind: String,
    pub connected: bool,
    pub bitrate_in_bps: u64,
    pub bitrate_out_bps: u64,
    /// All bytes on the wire (RTP, RTCP, STUN, DTLS).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// RTP packets received from the participant and forwarded to it.
    pub packets_in: u64,
    pub packets_out: u64,
    /// Datagrams or packets of this participant the server dropped.
    pub packets_dropped: u64,
    /// Fraction (0..1) of the participant's packets lost on the way to the server.
    pub loss_in: Option<f32>,
    /// Fraction (0..1) of the server's packets lost on the way to the participant.
    pub loss_out: Option<f32>,
    /// Packets lost on the way in (estimated from sender reports) and out (receiver reports).
    pub packets_lost_in: u64,
    pub packets_lost_out: u64,
    /// NACKs, PLIs and FIRs the server sent to this participant about its published tracks.
    pub nacks_sent: u64,
    pub plis_sent: u64,
    pub firs_sent: u64,
    /// NACKs, PLIs and FIRs this participant sent about the tracks it receives.
    pub nacks_received: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    /// The worst interarrival jitter of its published tracks, in milliseconds.
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// The estimated bandwidth towards this participant, bits/s (what layer choice uses).
    pub estimated_bandwidth_bps: Option<u64>,
    /// Where that estimate comes from.
    pub estimate_source: Option<EstimateSource>,
    /// Tracks this participant publishes.
    pub published: Vec<UpTrackStats>,
    /// Tracks this participant receives.
    pub received: Vec<DownTrackStats>,
}

/// A published track, as received by the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpTrackStats {
    pub id: String,
    pub mid: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "audio"))]
    pub kind: TrackKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "microphone"))]
    pub source: TrackSource,
    pub muted: bool,
    pub bitrate_bps: u64,
    pub bytes: u64,
    pub packets: u64,
    pub loss: Option<f32>,
    pub packets_lost: u64,
    pub nacks_sent: u64,
    pub plis_sent: u64,
    pub firs_sent: u64,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Smoothed RFC 6464 audio level in dBov (0 loudest, -127 silence); audio only.
    pub audio_level_dbov: Option<f32>,
}

/// A track the server sends to a participant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DownTrackStats {
    pub track_id: String,
    pub mid: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "video"))]
    pub kind: TrackKind,
    /// The publishing participant, if the track has a source.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub publisher: Option<ParticipantId>,
    pub bitrate_bps: u64,
    pub bytes: u64,
    pub packets: u64,
    pub loss: Option<f32>,
    pub packets_lost: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// The simulcast layer (rid) forwarded; `None` for a track without simulcast.
    pub layer: Option<String>,
}

/// Server-wide sums, monotonic except for the gauges `rooms` and `participants`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuTotals {
    pub rooms: u64,
    pub participants: u64,
    pub datagrams_in: u64,
    pub unroutable: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub packets_dropped: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub nacks_sent: u64,
    pub nacks_received: u64,
    pub plis_sent: u64,
    pub plis_received: u64,
    pub firs_sent: u64,
    pub firs_received: u64,
    /// Keyframe requests (PLI and FIR) the server sent to publishers.
    pub keyframe_requests: u64,
}

impl SfuTotals {
    /// Adds another SFU's totals to these (one SFU per media worker).
    pub fn merge(&mut self, other: &SfuTotals) {
        self.rooms += other.rooms;
        self.participants += other.participants;
        self.datagrams_in += other.datagrams_in;
        self.unroutable += other.unroutable;
        self.packets_in += other.packets_in;
        self.packets_out += other.packets_out;
        self.packets_dropped += other.packets_dropped;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.nacks_sent += other.nacks_sent;
        self.nacks_received += other.nacks_received;
        self.plis_sent += other.plis_sent;
        self.plis_received += other.plis_received;
        self.firs_sent += other.firs_sent;
        self.firs_received += other.firs_received;
        self.keyframe_requests += other.keyframe_requests;
    }
}

/// Cumulative bytes at a time, and the rate since the sample before.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    bytes: u64,
    at: Option<Instant>,
    bps: u64,
}

impl Rate {
    fn update(&mut self, bytes: u64, at: Instant) {
        if let Some(prev) = self.at {
            let elapsed = at.saturating_duration_since(prev);
            if elapsed < RATE_WINDOW {
                return;
            }
            self.bps =
                (bytes.saturating_sub(self.bytes) as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
        }
        self.bytes = bytes;
        self.at = Some(at);
    }
}

/// The latest figures of one `(mid, rid)` stream, in either direction.
#[derive(Debug, Clone, Copy, Default)]
struct Media {
    rate: Rate,
    packets: u64,
    nacks: u64,
    plis: u64,
    firs: u64,
    lost: u64,
    loss: Option<f32>,
    /// Interarrival jitter in RTP timestamp units.
    jitter: Option<u32>,
    rtt: Option<Duration>,
}

/// The latest samples of one participant's session.
#[derive(Debug, Default)]
struct Samples {
    bytes_in: Rate,
    bytes_out: Rate,
    loss_in: Option<f32>,
    loss_out: Option<f32>,
    rtt: Option<Duration>,
    ingress: Vec<((Mid, Option<Rid>), Media)>,
    egress: Vec<((Mid, Option<Rid>), Media)>,
}

/// Str0m's stats for all participants, and the totals of those who left.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    samples: HashMap<ParticipantId, Samples>,
    retired: SfuTotals,
}

impl Recorder {
    /// Takes a stats event of `id`'s session; other events are ignored.
    pub fn record(&mut self, id: ParticipantId, event: Event) {
        let s = self.samples.entry(id).or_default();
        match event {
            Event::PeerStats(p) => s.peer(&p),
            Event::MediaIngressStats(m) => s.ingress(&m),
            Event::MediaEgressStats(m) => s.egress(&m),
            _ => {}
        }
    }

    /// A participant left: its last figures move into the totals of those who left.
    pub fn retire(&mut self, id: ParticipantId, counters: &ParticipantCounters) {
        let samples = self.samples.remove(&id).unwrap_or_default();
        add(&mut self.retired, &samples.totals(counters));
    }
}

impl Samples {
    fn peer(&mut self, p: &PeerStats) {
        self.bytes_in.update(p.peer_bytes_rx, p.timestamp);
        self.bytes_out.update(p.peer_bytes_tx, p.timestamp);
        self.loss_in = p.ingress_loss_fraction.or(self.loss_in);
        self.loss_out = p.egress_loss_fraction.or(self.loss_out);
        let ice_rtt = p
            .selected_candidate_pair
            .as_ref()
            .and_then(|c| c.current_round_trip_time);
        self.rtt = p.rtt.or(ice_rtt).or(self.rtt);
    }

    fn ingress(&mut self, m: &MediaIngressStats) {
        let media = slot(&mut self.ingress, (m.mid, m.rid));
        media.rate.update(m.bytes, m.timestamp);
        media.packets = m.packets;
        (media.nacks, media.plis, media.firs) = (m.nacks, m.plis, m.firs);
        media.jitter = Some(m.jitter);
        media.rtt = m.rtt.or(media.rtt);
        media.loss = m.loss.or(media.loss);
        // The sender's own count, as of its last report, minus what arrived.
        if let Some(remote) = &m.remote {
            media.lost = remote.packets.saturating_sub(m.packets).max(media.lost);
        }
    }

    fn egress(&mut self, m: &MediaEgressStats) {
        let media = slot(&mut self.egress, (m.mid, m.rid));
        media.rate.update(m.bytes, m.timestamp);
        media.packets = m.packets;
        (media.nacks, media.plis, media.firs) = (m.nacks, m.plis, m.firs);
        media.rtt = m.rtt.or(media.rtt);
        media.loss = m.loss.or(media.loss);
        if let Some(remote) = &m.remote {
            media.jitter = Some(remote.jitter);
            media.lost = remote.packets_lost;
        }
    }

    /// This participant's share of the server totals.
    fn totals(&self, c: &ParticipantCounters) -> SfuTotals {
        let sum = |v: &[((Mid, Option<Rid>), Media)], f: fn(&Media) -> u64| -> u64 {
            v.iter().map(|(_, m)| f(m)).sum()
        };
        let (plis_sent, firs_sent) = (
            sum(&self.ingress, |m| m.plis),
            sum(&self.ingress, |m| m.firs),
        );
        SfuTotals {
            packets_in: c.packets_in,
            packets_out: c.packets_out,
            packets_dropped: c.dropped,
            bytes_in: self.bytes_in.bytes,
            bytes_out: self.bytes_out.bytes,
            nacks_sent: sum(&self.ingress, |m| m.nacks),
            nacks_received: sum(&self.egress, |m| m.nacks),
            plis_sent,
            plis_received: sum(&self.egress, |m| m.plis),
            firs_sent,
            firs_received: sum(&self.egress, |m| m.firs),
            keyframe_requests: plis_sent + firs_sent,
            ..SfuTotals::default()
        }
    }

    /// The streams of one mid (several with simulcast), summed.
    fn merged(streams: &[((Mid, Option<Rid>), Media)], mid: Mid) -> Option<Media> {
        streams
            .iter()
            .filter(|((m, _), _)| *m == mid)
            .map(|(_, media)| *media)
            .reduce(|a, b| Media {
                rate: Rate {
                    bytes: a.rate.bytes + b.rate.bytes,
                    at: a.rate.at.max(b.rate.at),
                    bps: a.rate.bps + b.rate.bps,
                },
                packets: a.packets + b.packets,
                nacks: a.nacks + b.nacks,
                plis: a.plis + b.plis,
                firs: a.firs + b.firs,
                lost: a.lost + b.lost,
                loss: [a.loss, b.loss].into_iter().flatten().reduce(f32::max),
                jitter: a.jitter.max(b.jitter),
                rtt: a.rtt.or(b.rtt),
            })
    }
}

/// The entry of one stream, created on first sight.
fn slot(streams: &mut Vec<((Mid, Option<Rid>), Media)>, key: (Mid, Option<Rid>)) -> &mut Media {
    let i = match streams.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            streams.push((key, Media::default()));
            streams.len() - 1
        }
    };
    &mut streams[i].1
}

fn add(to: &mut SfuTotals, t: &SfuTotals) {
    to.packets_in += t.packets_in;
    to.packets_out += t.packets_out;
    to.packets_dropped += t.packets_dropped;
    to.bytes_in += t.bytes_in;
    to.bytes_out += t.bytes_out;
    to.nacks_sent += t.nacks_sent;
    to.nacks_received += t.nacks_received;
    to.plis_sent += t.plis_sent;
    to.plis_received += t.plis_received;
    to.firs_sent += t.firs_sent;
    to.firs_received += t.firs_received;
    to.keyframe_requests += t.keyframe_requests;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// RTP timestamp units to milliseconds (Opus runs at 48 kHz, video at 90 kHz).
fn jitter_ms(units: u32, kind: TrackKind) -> f64 {
    let clock = match kind {
        TrackKind::Audio => 48_000.0,
        TrackKind::Video => 90_000.0,
    };
    f64::from(units) * 1000.0 / clock
}

impl Sfu {
    /// Takes a stats event of a participant's session (hook from the event loop).
    pub(crate) fn record_stats(&mut self, id: ParticipantId, event: Event) {
        if self.participants.contains_key(&id) {
            self.stats.record(id, event);
        }
    }

    /// Statistics of every participant in a room, in join order, or `None` for an empty room.
    pub fn room_stats(&self, room: &RoomName) -> Option<RoomStats> {
        let ids = self.rooms.get(room)?;
        let participants = ids
            .iter()
            .filter_map(|id| self.participants.get(id))
            .map(|p| self.participant_stats(p))
            .collect();
        Some(RoomStats {
            room: room.to_string(),
            participants,
        })
    }

    /// Server-wide sums for monitoring: everyone present plus everyone who left.
    pub fn totals(&self) -> SfuTotals {
        let mut t = self.stats.retired;
        for p in self.participants.values() {
            let mine = self.stats.samples.get(&p.id).map_or_else(
                || Samples::default().totals(&p.counters),
                |s| s.totals(&p.counters),
            );
            add(&mut t, &mine);
        }
        t.rooms = self.rooms.len() as u64;
        t.participants = self.participants.len() as u64;
        t.datagrams_in = self.counters.datagrams_in;
        t.unroutable = self.counters.unroutable;
        t
    }

    fn participant_stats(&self, p: &Participant) -> ParticipantStats {
        let empty = Samples::default();
        let s = self.stats.samples.get(&p.id).unwrap_or(&empty);
        let totals = s.totals(&p.counters);
        let layers = self.layer_report(p.id);
        let published: Vec<UpTrackStats> = p.up.iter().map(|t| self.up_stats(p.id, s, t)).collect();
        let jitter_ms = published
            .iter()
            .filter_map(|t| t.jitter_ms)
            .reduce(f64::max);
        ParticipantStats {
            id: p.id,
            identity: p.identity.clone(),
            name: p.name.clone(),
            kind: format!("{:?}", p.kind).to_lowercase(),
            connected: p.connected,
            bitrate_in_bps: s.bytes_in.bps,
            bitrate_out_bps: s.bytes_out.bps,
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            packets_in: totals.packets_in,
            packets_out: totals.packets_out,
            packets_dropped: totals.packets_dropped,
            loss_in: s.loss_in,
            loss_out: s.loss_out,
            packets_lost_in: s.ingress.iter().map(|(_, m)| m.lost).sum(),
            packets_lost_out: s.egress.iter().map(|(_, m)| m.lost).sum(),
            nacks_sent: totals.nacks_sent,
            plis_sent: totals.plis_sent,
            firs_sent: totals.firs_sent,
            nacks_received: totals.nacks_received,
            plis_received: totals.plis_received,
            firs_received: totals.firs_received,
            jitter_ms,
            rtt_ms: s.rtt.map(ms),
            estimated_bandwidth_bps: p.downlink.bps(),
            estimate_source: p.downlink.source(),
            published,
            received: p.down.iter().map(|d| down_stats(s, d, &layers)).collect(),
        }
    }

    fn up_stats(&self, id: ParticipantId, s: &Samples, t: &UpTrack) -> UpTrackStats {
        let m = Samples::merged(&s.ingress, t.mid).unwrap_or_default();
        UpTrackStats {
            id: t.id.clone(),
            mid: t.mid.to_string(),
            kind: t.kind,
            source: t.source,
            muted: t.muted || t.host_muted,
            bitrate_bps: m.rate.bps,
            bytes: m.rate.bytes,
            packets: m.packets,
            loss: m.loss,
            packets_lost: m.lost,
            nacks_sent: m.nacks,
            plis_sent: m.plis,
            firs_sent: m.firs,
            jitter_ms: m.jitter.map(|j| jitter_ms(j, t.kind)),
            rtt_ms: m.rtt.map(ms),
            audio_level_dbov: self.speakers.level_dbov(id, t.mid),
        }
    }
}

fn down_stats(s: &Samples, d: &DownTrack, layers: &[crate::DownLayerInfo]) -> DownTrackStats {
    let m = d
        .mid
        .and_then(|mid| Samples::merged(&s.egress, mid))
        .unwrap_or_default();
    DownTrackStats {
        track_id: d.track_id.clone(),
        mid: d.mid.map(|m| m.to_string()),
        kind: d.kind,
        publisher: d.source.map(|(publisher, _)| publisher),
        bitrate_bps: m.rate.bps,
        bytes: m.rate.bytes,
        packets: m.packets,
        loss: m.loss,
        packets_lost: m.lost,
        nacks_received: m.nacks,
        plis_received: m.plis,
        firs_received: m.firs,
        jitter_ms: m.jitter.map(|j| jitter_ms(j, d.kind)),
        rtt_ms: m.rtt.map(ms),
        layer: layers
            .iter()
            .find(|l| l.track == d.track_id)
            .and_then(|l| l.current.clone()),
    }
}
