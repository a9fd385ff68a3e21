//! Measurement and reporting for the load tester, free of I/O: what one simulated participant
//! measured, how the run's numbers are aggregated, and how they are printed.

use serde::Serialize;

/// Tracks one participant should receive: every publisher's tracks except its own.
pub fn tracks_expected(publishers: usize, is_publisher: bool, audio_only: bool) -> u64 {
    let per_publisher = if audio_only { 1 } else { 2 };
    let others = if is_publisher {
        publishers.saturating_sub(1)
    } else {
        publishers
    };
    (others * per_publisher) as u64
}

/// What one simulated participant measured.
#[derive(Debug, Clone, Default)]
pub struct ParticipantResult {
    pub publisher: bool,
    pub tracks_expected: u64,
    /// Distinct (publisher, kind) pairs from which at least one frame arrived.
    pub tracks_received: u64,
    /// RTP packets carried by the frames delivered to the application.
    pub packets_received: u64,
    /// Per received stream, the span of RTP sequence numbers from the first to the last
    /// delivered frame, summed: what `packets_received` would be had nothing been lost.
    pub packets_expected: u64,
    /// Payload bytes of the delivered frames.
    pub bytes_received: u64,
    /// Seconds from this participant's first received frame to the end of its run.
    pub receive_secs: f64,
    /// One-way latency per frame, in microseconds.
    pub latency_us: Vec<i64>,
    /// Interarrival jitter per received track, in microseconds.
    pub jitter_us: Vec<f64>,
    /// Video gaps longer than 500 ms.
    pub freezes: u64,
    /// From starting the join (the token request) to the first media frame received, or to
    /// ICE+DTLS connected for participants that expect no media.
    pub join_ms: Option<f64>,
    /// From starting the join to ICE+DTLS connected.
    pub connect_ms: Option<f64>,
    pub errors: Vec<String>,
}

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    Some(percentile_sorted(&sorted, p))
}

fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Lost fraction from received and expected packet counts (0 when nothing was expected).
pub fn loss_fraction(received: u64, expected: u64) -> f64 {
    if expected == 0 {
        return 0.0;
    }
    (1.0 - received as f64 / expected as f64).clamp(0.0, 1.0)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles3 {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles2 {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bitrate {
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The whole run's result; `--json` prints this.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub publishers: usize,
    pub subscribers: usize,
    pub audio_only: bool,
    /// Wall time of the whole run (ramp-up included), seconds.
    pub duration_s: f64,
    /// Participants that reached ICE+DTLS connected.
    pub participants_connected: usize,
    pub tracks_expected: u64,
    pub tracks_received: u64,
    pub packets_received: u64,
    pub packets_expected: u64,
    /// `1 - packets_received / packets_expected`, 0..1.
    pub packet_loss: f64,
    pub bytes_received: u64,
    /// Received payload bitrate per subscriber (per participant if there are no subscribers).
    pub bitrate_kbps: Bitrate,
    pub latency_ms: Percentiles3,
    /// Mean interarrival jitter over all received tracks.
    pub jitter_ms: Option<f64>,
    pub freezes: u64,
    pub join_ms: Percentiles2,
    pub connect_ms: Percentiles2,
    pub errors: usize,
    pub error_messages: Vec<String>,
}

/// At most this many error messages are listed (all are counted).
const MAX_ERROR_MESSAGES: usize = 50;

pub fn aggregate(
    results: &[ParticipantResult],
    publishers: usize,
    subscribers: usize,
    audio_only: bool,
    duration_s: f64,
) -> Report {
    let mut r = Report {
        publishers,
        subscribers,
        audio_only,
        duration_s,
        ..Report::default()
    };
    let mut latencies = Vec::new();
    let mut jitters = Vec::new();
    let mut joins = Vec::new();
    let mut connects = Vec::new();
    let mut bitrates = Vec::new();
    let rate_from_subscribers = results.iter().any(|p| !p.publisher);
    for p in results {
        r.tracks_expected += p.tracks_expected;
        r.tracks_received += p.tracks_received;
        r.packets_received += p.packets_received;
        r.packets_expected += p.packets_expected;
        r.bytes_received += p.bytes_received;
        r.freezes += p.freezes;
        latencies.extend(p.latency_us.iter().map(|&us| us as f64 / 1000.0));
        jitters.extend(p.jitter_us.iter().map(|&us| us / 1000.0));
        joins.extend(p.join_ms);
        connects.extend(p.connect_ms);
        if p.connect_ms.is_some() {
            r.participants_connected += 1;
        }
        if p.publisher != rate_from_subscribers && p.tracks_expected > 0 {
            let kbps = if p.receive_secs > 0.0 {
                p.bytes_received as f64 * 8.0 / p.receive_secs / 1000.0
            } else {
                0.0
            };
            bitrates.push(kbps);
        }
        r.errors += p.errors.len();
        for e in &p.errors {
            if r.error_messages.len() < MAX_ERROR_MESSAGES {
                r.error_messages.push(e.clone());
            }
        }
    }
    r.packet_loss = loss_fraction(r.packets_received, r.packets_expected);
    latencies.sort_by(|a, b| a.total_cmp(b));
    if !latencies.is_empty() {
        r.latency_ms = Percentiles3 {
            p50: Some(percentile_sorted(&latencies, 50.0)),
            p95: Some(percentile_sorted(&latencies, 95.0)),
            p99: Some(percentile_sorted(&latencies, 99.0)),
        };
    }
    r.jitter_ms = (!jitters.is_empty()).then(|| jitters.iter().sum::<f64>() / jitters.len() as f64);
    r.join_ms = Percentiles2 {
        p50: percentile(&joins, 50.0),
        p95: percentile(&joins, 95.0),
    };
    r.connect_ms = Percentiles2 {
        p50: percentile(&connects, 50.0),
        p95: percentile(&connects, 95.0),
    };
    if !bitrates.is_empty() {
        r.bitrate_kbps = Bitrate {
            mean: Some(bitrates.iter().sum::<f64>() / bitrates.len() as f64),
            min: bitrates.iter().copied().reduce(f64::min),
            max: bitrates.iter().copied().reduce(f64::max),
        };
    }
    r
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "n/a".into(),
    }
}

fn kbps(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.1}"))
}

/// The human-readable summary table.
pub fn render_table(r: &Report) -> String {
    let total = r.publishers + r.subscribers;
    let media = if r.audio_only {
        "audio only"
    } else {
        "audio+video"
    };
    let rows: Vec<(&str, String)> = vec![
        (
            "participants connected",
            format!("{}/{}", r.participants_connected, total),
        ),
        (
            "tracks received/expected",
            format!("{}/{}", r.tracks_received, r.tracks_expected),
        ),
        ("packets received", r.packets_received.to_string()),
        (
            "packet loss",
            format!(
                "{:.3} % ({} of {} packets)",
                r.packet_loss * 100.0,
                r.packets_expected.saturating_sub(r.packets_received),
                r.packets_expected
            ),
        ),
        (
            "bitrate per subscriber",
            format!(
                "mean {} kbit/s (min {}, max {})",
                kbps(r.bitrate_kbps.mean),
                kbps(r.bitrate_kbps.min),
                kbps(r.bitrate_kbps.max)
            ),
        ),
        (
            "one-way latency",
            format!(
                "p50 {}  p95 {}  p99 {}",
                ms(r.latency_ms.p50),
                ms(r.latency_ms.p95),
                ms(r.latency_ms.p99)
            ),
        ),
        ("jitter (mean per track)", ms(r.jitter_ms)),
        ("freezes (video gap >500ms)", r.freezes.to_string()),
        (
            "join time (to first media)",
            format!("p50 {}  p95 {}", ms(r.join_ms.p50), ms(r.join_ms.p95)),
        ),
        (
            "ICE+DTLS connected after",
            format!("p50 {}  p95 {}", ms(r.connect_ms.p50), ms(r.connect_ms.p95)),
        ),
        ("errors", r.errors.to_string()),
    ];
    let mut out = format!(
        "Stoa load test: {} publishers ({media}), {} subscribers, {:.1} s\n",
        r.publishers, r.subscribers, r.duration_s
    );
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    for e in &r.error_messages {
        out.push_str(&format!("    - {e}\n"));
    }
    if r.errors > r.error_messages.len() {
        out.push_str(&format!(
            "    ... and {} more\n",
            r.errors - r.error_messages.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tracks_skip_the_participants_own() {
        assert_eq!(tracks_expected(3, true, false), 4);
        assert_eq!(tracks_expected(3, false, false), 6);
        assert_eq!(tracks_expected(3, false, true), 3);
        assert_eq!(tracks_expected(1, true, false), 0);
        assert_eq!(tracks_expected(0, false, false), 0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn loss_is_a_clamped_fraction() {
        assert_eq!(loss_fraction(0, 0), 0.0);
        assert_eq!(loss_fraction(90, 100), 0.09999999999999998);
        assert_eq!(loss_fraction(120, 100), 0.0);
        assert_eq!(loss_fraction(0, 10), 1.0);
    }

    fn sample(publisher: bool, lat_ms: &[i64], errors: &[&str]) -> ParticipantResult {
        ParticipantResult {
            publisher,
            tracks_expected: 2,
            tracks_received: 2,
            packets_received: 95,
            packets_expected: 100,
            bytes_received: 125_000,
            receive_secs: 10.0,
            latency_us: lat_ms.iter().map(|m| m * 1000).collect(),
            jitter_us: vec![1000.0, 3000.0],
            freezes: 1,
            join_ms: Some(200.0),
            connect_ms: Some(100.0),
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn aggregation_sums_and_takes_percentiles() {
        let results = vec![
            sample(true, &[1, 2, 3], &[]),
            sample(false, &[4, 5], &["boom"]),
            ParticipantResult {
                publisher: false,
                tracks_expected: 2,
                errors: vec!["guest join: HTTP 500".into()],
                ..Default::default()
            },
        ];
        let r = aggregate(&results, 1, 2, false, 12.0);
        assert_eq!(r.tracks_expected, 6);
        assert_eq!(r.tracks_received, 4);
        assert_eq!(r.packets_received, 190);
        assert!((r.packet_loss - 0.05).abs() < 1e-9);
        assert_eq!(r.latency_ms.p50, Some(3.0));
        assert_eq!(r.latency_ms.p99, Some(5.0));
        assert_eq!(r.jitter_ms, Some(2.0));
        assert_eq!(r.freezes, 2);
        assert_eq!(r.join_ms.p50, Some(200.0));
        assert_eq!(r.participants_connected, 2);
        // Subscribers only: 100 kbit/s and the one that received nothing.
        assert_eq!(r.bitrate_kbps.max, Some(100.0));
        assert_eq!(r.bitrate_kbps.min, Some(0.0));
        assert_eq!(r.errors, 2);
        assert_eq!(r.error_messages, vec!["boom", "guest join: HTTP 500"]);

        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "tracks_expected",
            "tracks_received",
            "packets_received",
            "packet_loss",
            "errors",
        ] {
            assert!(json[key].is_number(), "{key}: {json}");
        }
        assert_eq!(json["latency_ms"]["p95"], 5.0);
        assert_eq!(json["join_ms"]["p95"], 200.0);

        let table = render_table(&r);
        assert!(table.contains("tracks received/expected    4/6"), "{table}");
        assert!(
            table.contains("p50 3.0 ms  p95 5.0 ms  p99 5.0 ms"),
            "{table}"
        );
        assert!(table.contains("- guest join: HTTP 500"), "{table}");
    }

    #[test]
    fn empty_run_has_no_percentiles() {
        let r = aggregate(&[], 0, 0, true, 0.0);
        assert_eq!(r.latency_ms, Percentiles3::default());
        assert_eq!(r.packet_loss, 0.0);
        let table = render_table(&r);
        assert!(table.contains("p50 n/a"), "{table}");
    }
}
