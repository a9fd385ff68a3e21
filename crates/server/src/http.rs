//! The HTTP surface: web app, REST API, WebSocket signaling, WHIP/WHEP, health and metrics.
//! Every error answers with the JSON [`ErrorBody`] shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use stoa_proto::RoomName;
use stoa_sfu::{JoinRequest, ParticipantKind};
use stoa_store::Store;

use crate::auth::{constant_time_eq, Claims, TokenError, TokenKeys};
pub use crate::error::ApiError;
use crate::error::ApiErrorCode;
use crate::guard::Guards;
use crate::ice::IceAdvert;
use crate::media::MediaHandle;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::{api, assets, door, metrics, whip, ws};

/// Upper bound for SDP and JSON request bodies.
const MAX_BODY: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub media: MediaHandle,
    pub keys: Arc<TokenKeys>,
    pub ice: Arc<IceAdvert>,
    pub store: Arc<dyn Store>,
    pub presence: Arc<Presence>,
    pub guards: Arc<Guards>,
    pub metrics: Arc<Metrics>,
    pub operator: Arc<OperatorTokens>,
    /// Origins whose pages may call WHIP/WHEP (`*`: any).
    pub cors_origins: Arc<[String]>,
}

/// The operator's own credentials (settings), compared in constant time.
#[derive(Default)]
pub struct OperatorTokens {
    /// Room admin of every room; may read /metrics.
    pub admin: Option<String>,
    /// May read /metrics; when set, /metrics needs it or the admin token.
    pub metrics: Option<String>,
}

impl OperatorTokens {
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        matches_token(self.admin.as_deref(), headers)
    }

    /// Whether the request may read /metrics.
    pub fn may_scrape(&self, headers: &HeaderMap) -> bool {
        self.metrics.is_none()
            || matches_token(self.metrics.as_deref(), headers)
            || self.is_admin(headers)
    }
}

fn matches_token(token: Option<&str>, headers: &HeaderMap) -> bool {
    match (token, bearer(headers)) {
        (Some(want), Ok(got)) => constant_time_eq(want, got),
        _ => false,
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page("index.html") }))
        .route("/m/{room}", get(meeting_page))
        .route("/login", get(|| async { assets::page("login.html") }))
        .route("/signup", get(|| async { assets::page("signup.html") }))
        .route("/app", get(|| async { assets::page("app.html") }))
        .route("/app/{*view}", get(|| async { assets::page("app.html") }))
        .route(
            "/static/{*path}",
            get(|Path(path): Path<String>| async move { assets::file(&path) }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/ws", get(ws::upgrade))
        .route("/nettest", get(|| async { assets::page("nettest.html") }))
        .merge(whip_routes(state.clone()))
        .merge(api::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(harden))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// What every page may load and do: its own scripts, styles and connections (WebSockets
/// included), camera and microphone streams; never inside another site's frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Security headers (the page policy on HTML pages); the session cookie is `Secure` when the request came
/// over HTTPS (a reverse proxy in front says so with `X-Forwarded-Proto`).
async fn harden(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
        || req.uri().scheme_str() == Some("https");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let page = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // Pages only: a policy on API answers would bind any page that opens one (a test page
    // of another origin that calls WHEP, say) to this origin.
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if https {
        let cookies: Vec<HeaderValue> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| HeaderValue::from_str(&format!("{v}; Secure")).ok())
            .collect();
        h.remove(header::SET_COOKIE);
        for cookie in cookies {
            h.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// WHIP and WHEP (RFC 9725), behind CORS (see [`whip`]).
fn whip_routes(state: AppState) -> Router<AppState> {
    // `whip::cors` answers preflights before these handlers.
    async fn preflight() -> StatusCode {
        StatusCode::NO_CONTENT
    }
    let session = || {
        delete(whip::end_session)
            .patch(whip::patch_session)
            .options(preflight)
    };
    Router::new()
        .route("/whip/{room}", post(whip).options(preflight))
        .route("/whip/{room}/{id}", session())
        .route("/whep/{room}", post(whep).options(preflight))
        .route("/whep/{room}/{id}", session())
        .route_layer(axum::middleware::from_fn_with_state(state, whip::cors))
}

pub(crate) fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::new(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::InvalidRoom,
            e.to_string(),
        )
    })
}

/// The room of the path, if the request's bearer token is a room-admin token for it (or the
/// server-wide admin token).
pub fn require_room_admin(
    state: &AppState,
    room: &str,
    headers: &HeaderMap,
) -> Result<RoomName, ApiError> {
    let room = room_name(room)?;
    if state.operator.is_admin(headers) {
        return Ok(room);
    }
    let claims = state.keys.verify(bearer(headers)?, Some(&room))?;
    if !claims.grants.room_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::Forbidden,
            "a room-admin token is required",
        ));
    }
    Ok(room)
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, TokenError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(TokenError::Missing)
}

/// Whether the client asked for a web page (a browser following a link) rather than JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

async fn not_found(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        return assets::error_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is nothing at this address. Check the link, or start from the home page.",
        );
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiErrorCode::NotFound,
        "no such page or endpoint",
    )
    .into_response()
}

async fn meeting_page(Path(room): Path<String>, headers: HeaderMap) -> Response {
    match RoomName::new(room) {
        Ok(_) => assets::page("meeting.html"),
        Err(_) if wants_html(&headers) => assets::error_page(
            StatusCode::NOT_FOUND,
            "This is not a meeting link",
            "A meeting's name has 1 to 64 letters, digits, \"-\" and \"_\". Check the link you were sent, or start a new meeting from the home page.",
        ),
        Err(e) => {
            ApiError::new(StatusCode::NOT_FOUND, ApiErrorCode::InvalidRoom, e.to_string()).into_response()
        }
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.media.health().await {
        Some(h) => {
            let turn = h.turn.map(|t| {
                serde_json::json!({
                    "allocations": t.allocations, "permissions": t.permissions, "channels": t.channels,
                    "packets_to_peers": t.packets_to_peers, "packets_to_clients": t.packets_to_clients,
                    "auth_failures": t.auth_failures, "forbidden_peers": t.forbidden_peers,
                    "quota_refusals": t.quota_refusals,
                })
            });
            Json(serde_json::json!({
                "status": "ok", "participants": h.participants, "rooms": h.rooms,
                "send_errors": h.send_errors, "turn": turn,
            }))
            .into_response()
        }
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Unavailable,
            "the media worker is not running",
        )
        .into_response(),
    }
}

/// A fresh, hard-to-guess room name for a meeting link (`abc-defg-hjk`).
pub fn random_room_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    format!("{}-{}-{}", pick(3), pick(4), pick(3))
}

async fn whip(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest_or_egress(state, room, headers, body, ParticipantKind::Whip).await
}

async fn whep(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest_or_egress(state, room, headers, body, ParticipantKind::Whep).await
}

/// WHIP (RFC 9725) and WHEP: one SDP offer in, `201 Created` with the answer out.
async fn ingest_or_egress(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    kind: ParticipantKind,
) -> Result<Response, ApiError> {
    let room = room_name(&room)?;
    let claims: Claims = state.keys.verify(bearer(&headers)?, Some(&room))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiErrorCode::UnsupportedMediaType,
            "the body must be an SDP offer with Content-Type: application/sdp",
        ));
    }
    let needed = match kind {
        ParticipantKind::Whip => claims.grants.publish,
        _ => claims.grants.subscribe,
    };
    if !needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::Forbidden,
            "the token does not grant this",
        ));
    }
    let meeting =
        door::no_lobby_for_http(door::check(&state, &room, &claims.sub, &claims.grants).await?)?;
    let sdp = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::BadSdp,
            "the SDP is not UTF-8",
        )
    })?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let links = state.ice.link_headers(host, &claims.sub);
    let req = JoinRequest {
        room: room.clone(),
        identity: claims.sub.clone(),
        name: claims.name,
        grants: claims.grants,
        kind,
        ice_servers: Vec::new(),
        lobby: false,
        meeting: meeting.as_ref().map(door::meeting_ref),
    };
    let (id, answer) = state.media.offer(req, sdp).await?;
    let prefix = if kind == ParticipantKind::Whip {
        "whip"
    } else {
        "whep"
    };
    let location = format!(
        "/{prefix}/{room}/{}",
        whip::session_id(&state.keys, &room, id, &claims.sub)
    );
    let etag = whip::answer_etag(&answer);
    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    if let Some(v) = etag {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    for link in links {
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.append(header::LINK, v);
        }
    }
    Ok(response)
}
