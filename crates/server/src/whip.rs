//! WHIP/WHEP sessions (RFC 9725) after the offer: their resource URLs and who may end them.
//!
//! A session's URL is `/<whip|whep>/<room>/<participant>-<tag>`, the tag a MAC of room,
//! participant and identity under the server's key (`TokenKeys::mac`). It cannot be guessed, it names
//! the participant without a table to keep, and it proves the token that created it: the
//! caller's own token ends its session even after the client has gone (idempotent `200`),
//! another identity's token gets `403` unless it is a room-admin token, and an unknown or
//! forged URL gets `404`.
//!
//! `PATCH` with a trickle-ICE SDP fragment adds candidates or restarts ICE (the session's
//! ETag is its server-side ICE ufrag, so a restart changes it). Browsers on the origins of
//! the `cors_origin` setting may call all of this (CORS, with `OPTIONS` preflight).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stoa_proto::{ParticipantId, RoomName};
use stoa_sfu::{ParticipantKind, SfuError};

use crate::auth::{constant_time_eq, Claims, TokenKeys};
use crate::error::{ApiError, ApiErrorCode};
use crate::http::{bearer, room_name, AppState};
use crate::media::{etag, PatchError};

const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Bytes of MAC in a session id (128 bits).
const TAG_LEN: usize = 16;

fn tag(keys: &TokenKeys, room: &RoomName, id: ParticipantId, identity: &str) -> String {
    let id = id.to_string();
    let parts: [&[u8]; 3] = [room.as_str().as_bytes(), id.as_bytes(), identity.as_bytes()];
    hex::encode(&keys.mac("whip-session", &parts)[..TAG_LEN])
}

/// The last path segment of a new session's resource URL.
pub fn session_id(keys: &TokenKeys, room: &RoomName, id: ParticipantId, identity: &str) -> String {
    format!("{id}-{}", tag(keys, room, id, identity))
}

fn parse(session: &str) -> Option<(ParticipantId, &str)> {
    let (id, tag) = session.split_once('-')?;
    Some((id.parse().ok()?, tag))
}

fn not_found() -> ApiError {
    ApiError::not_found("session")
}

/// The session a request's URL names, with the caller's claims, if the caller may act on it:
/// its own token always, a room-admin token of the room if `admin_may`.
async fn authorize(
    state: &AppState,
    room: &str,
    session: &str,
    headers: &HeaderMap,
    admin_may: bool,
) -> Result<(RoomName, ParticipantId, Claims), ApiError> {
    let room = room_name(room)?;
    let claims = state.keys.verify(bearer(headers)?, Some(&room))?;
    let (id, given) = parse(session).ok_or_else(not_found)?;
    if constant_time_eq(given, &tag(&state.keys, &room, id, &claims.sub)) {
        return Ok((room, id, claims));
    }
    let (participants, _) = state.media.report(room.clone()).await;
    let live = participants.unwrap_or_default().into_iter().any(|p| {
        p.id == id
            && p.kind != ParticipantKind::Interactive
            && constant_time_eq(given, &tag(&state.keys, &room, id, &p.identity))
    });
    if !live {
        return Err(not_found());
    }
    if admin_may && claims.grants.room_admin {
        return Ok((room, id, claims));
    }
    Err(ApiError::forbidden(if admin_may {
        "only the token that created this session or a room-admin token may end it"
    } else {
        "only the token that created this session may change it"
    }))
}

/// `DELETE` on a session URL: ends it (see the module documentation for who may).
pub async fn end_session(
    State(state): State<AppState>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (room, id, claims) = authorize(&state, &room, &session, &headers, true).await?;
    tracing::info!(participant = %id, %room, by = %claims.sub, "WHIP/WHEP session ended by DELETE");
    state.media.leave(id);
    Ok(StatusCode::OK.into_response())
}

/// `PATCH` on a session URL: trickle ICE candidates (`204`) or an ICE restart (`200` with the
/// server's new credentials), as a trickle-ICE SDP fragment (RFC 9725 §4.3).
pub async fn patch_session(
    State(state): State<AppState>,
    Path((room, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (_, id, _) = authorize(&state, &room, &session, &headers, false).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(SDPFRAG) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiErrorCode::UnsupportedMediaType,
            format!("the body must be an SDP fragment with Content-Type: {SDPFRAG}"),
        ));
    }
    let fragment = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::BadSdp,
            "the fragment is not UTF-8",
        )
    })?;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let patched = match state.media.patch(id, fragment, if_match).await {
        Ok(p) => p,
        Err(PatchError::Stale) => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ApiErrorCode::PreconditionFailed,
                "If-Match does not name this session's current ETag",
            ))
        }
        Err(PatchError::Sfu(SfuError::UnknownParticipant)) => return Err(not_found()),
        Err(PatchError::Sfu(e)) => return Err(e.into()),
    };
    let mut response = match patched.restart {
        Some(answer) => {
            let mut r = (StatusCode::OK, answer).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            r
        }
        None => StatusCode::NO_CONTENT.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&patched.etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}

/// The ETag of a session created with this SDP answer.
pub fn answer_etag(answer: &str) -> Option<HeaderValue> {
    let (ufrag, _) = stoa_sfu::sdp::ice_credentials(answer)?;
    HeaderValue::from_str(&etag(&ufrag)).ok()
}

/// CORS for the WHIP/WHEP routes: answers `OPTIONS` preflights and lets the configured
/// origins read the responses (and their `Location`, `ETag` and `Link` headers).
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| {
            state
                .cors_origins
                .iter()
                .any(|a| a == "*" || a.as_bytes() == o.as_bytes())
        })
        .cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert("accept-post", HeaderValue::from_static("application/sdp"));
        r.headers_mut()
            .insert("accept-patch", HeaderValue::from_static(SDPFRAG));
        r
    } else {
        next.run(req).await
    };
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("location, etag, link, accept-patch"),
        );
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type, if-match"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    response
}
