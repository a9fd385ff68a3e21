//! Prometheus metrics at `GET /metrics` (text format 0.0.4), through the `metrics` facade and
//! the Prometheus exporter's recorder. The recorder is this server's own (no global recorder,
//! no listener of its own): HTTP requests are counted as they are answered, and at each
//! scrape the media worker's figures ([`Health`]: SFU totals, TURN statistics) are copied in.
//! The metric names are listed in `docs/operations.md`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::{ApiError, ApiErrorCode};
use crate::http::AppState;
use crate::media::Health;

/// The server's metrics recorder and the handle that renders it.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe);
        Self { recorder, handle }
    }
}

impl Metrics {
    /// Counts a connection refused by a cap of `listener` ("http", "websocket", ...).
    pub fn count_refused_connection(&self, listener: &'static str) {
        metrics::with_local_recorder(&self.recorder, || {
            counter!("stoa_connections_refused_total", "listener" => listener).increment(1);
        });
    }

    /// Counts one answered HTTP request.
    fn count_request(&self, method: String, route: String, status: StatusCode) {
        metrics::with_local_recorder(&self.recorder, || {
            let status = status.as_u16().to_string();
            counter!("stoa_http_requests_total", "method" => method, "route" => route, "status" => status)
                .increment(1);
        });
    }

    /// The Prometheus text with the media worker's current figures.
    fn render(&self, health: &Health) -> String {
        metrics::with_local_recorder(&self.recorder, || record_media(health));
        self.handle.render()
    }
}

/// HELP lines and units of every metric.
fn describe() {
    describe_gauge!("stoa_rooms", "Rooms with at least one participant.");
    describe_gauge!(
        "stoa_participants",
        "Participants in all rooms (signaling, WHIP and WHEP)."
    );
    describe_gauge!(
        "stoa_signaling_sessions",
        "Participants with a signaling WebSocket."
    );
    describe_gauge!(
        "stoa_media_worker_participants",
        "Participants on each media worker thread (rooms are spread over the workers)."
    );
    describe_gauge!(
        "stoa_media_worker_connected_sockets",
        "Sockets a media worker has connected to participant addresses on the media port."
    );
    describe_counter!(
        "stoa_datagrams_received_total",
        "Datagrams received on the media ports."
    );
    describe_counter!(
        "stoa_datagrams_unroutable_total",
        "Media datagrams no participant claimed."
    );
    describe_counter!(
        "stoa_rtp_packets_received_total",
        "RTP packets received from publishers."
    );
    describe_counter!(
        "stoa_rtp_packets_sent_total",
        "RTP packets forwarded to subscribers."
    );
    describe_counter!(
        "stoa_packets_dropped_total",
        "Datagrams or RTP packets of participants that were dropped."
    );
    describe_counter!(
        "stoa_received_bytes_total",
        Unit::Bytes,
        "Bytes received from participants (all WebRTC traffic)."
    );
    describe_counter!(
        "stoa_sent_bytes_total",
        Unit::Bytes,
        "Bytes sent to participants (all WebRTC traffic)."
    );
    describe_counter!(
        "stoa_nacks_total",
        "RTCP NACKs sent to publishers or received from subscribers."
    );
    describe_counter!(
        "stoa_plis_total",
        "RTCP PLIs sent to publishers or received from subscribers."
    );
    describe_counter!(
        "stoa_firs_total",
        "RTCP FIRs sent to publishers or received from subscribers."
    );
    describe_counter!(
        "stoa_keyframe_requests_total",
        "Keyframe requests (PLI, FIR) sent to publishers."
    );
    describe_counter!(
        "stoa_send_errors_total",
        "Datagrams the media or TURN sockets could not send."
    );
    describe_gauge!("stoa_turn_allocations", "TURN allocations.");
    describe_gauge!("stoa_turn_permissions", "TURN permissions.");
    describe_gauge!("stoa_turn_channels", "TURN channels bound.");
    describe_counter!(
        "stoa_turn_relayed_packets_total",
        "Packets relayed by TURN, to peers or to clients."
    );
    describe_counter!(
        "stoa_turn_relayed_bytes_total",
        Unit::Bytes,
        "Bytes relayed by TURN, to peers or to clients."
    );
    describe_counter!(
        "stoa_turn_auth_failures_total",
        "TURN requests that failed authentication."
    );
    describe_counter!(
        "stoa_http_requests_total",
        "HTTP requests answered, by method, route and status."
    );
    describe_counter!(
        "stoa_connections_refused_total",
        "Connections closed at once because a cap was reached, by listener."
    );
}

/// Copies the media worker's figures into the recorder.
fn record_media(h: &Health) {
    let t = &h.totals;
    gauge!("stoa_rooms").set(t.rooms as f64);
    gauge!("stoa_participants").set(t.participants as f64);
    gauge!("stoa_signaling_sessions").set(h.signaling_sessions as f64);
    counter!("stoa_datagrams_received_total").absolute(t.datagrams_in);
    counter!("stoa_datagrams_unroutable_total").absolute(t.unroutable);
    counter!("stoa_rtp_packets_received_total").absolute(t.packets_in);
    counter!("stoa_rtp_packets_sent_total").absolute(t.packets_out);
    counter!("stoa_packets_dropped_total").absolute(t.packets_dropped);
    counter!("stoa_received_bytes_total").absolute(t.bytes_in);
    counter!("stoa_sent_bytes_total").absolute(t.bytes_out);
    for (name, sent, received) in [
        ("stoa_nacks_total", t.nacks_sent, t.nacks_received),
        ("stoa_plis_total", t.plis_sent, t.plis_received),
        ("stoa_firs_total", t.firs_sent, t.firs_received),
    ] {
        counter!(name, "direction" => "sent").absolute(sent);
        counter!(name, "direction" => "received").absolute(received);
    }
    counter!("stoa_keyframe_requests_total").absolute(t.keyframe_requests);
    counter!("stoa_send_errors_total").absolute(h.send_errors);
    for (i, w) in h.workers.iter().enumerate() {
        let worker = i.to_string();
        gauge!("stoa_media_worker_participants", "worker" => worker.clone())
            .set(w.participants as f64);
        gauge!("stoa_media_worker_connected_sockets", "worker" => worker)
            .set(w.connected_sockets as f64);
    }
    if let Some(turn) = &h.turn {
        gauge!("stoa_turn_allocations").set(turn.allocations as f64);
        gauge!("stoa_turn_permissions").set(turn.permissions as f64);
        gauge!("stoa_turn_channels").set(turn.channels as f64);
        let relayed = "stoa_turn_relayed_packets_total";
        counter!(relayed, "direction" => "to_peers").absolute(turn.packets_to_peers);
        counter!(relayed, "direction" => "to_clients").absolute(turn.packets_to_clients);
        let relayed = "stoa_turn_relayed_bytes_total";
        counter!(relayed, "direction" => "to_peers").absolute(turn.bytes_to_peers);
        counter!(relayed, "direction" => "to_clients").absolute(turn.bytes_to_clients);
        counter!("stoa_turn_auth_failures_total").absolute(turn.auth_failures);
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !state.operator.may_scrape(&headers) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::Unauthorized,
            "/metrics needs the metrics or admin token: Authorization: Bearer <token>",
        )
        .into_response();
    }
    let Some(health) = state.media.health().await else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Unavailable,
            "the media worker is not running",
        )
        .into_response();
    };
    let mut response = state.metrics.render(&health).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The standard methods by name; anything else (a client may send any token) is "other", so
/// strangers cannot add series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware counting every request by method, route template (not the raw path, which
/// would make one series per meeting) and status.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(req).await;
    state
        .metrics
        .count_request(method, route, response.status());
    response
}
