//! `GET /api/v1/nettest`: what the pre-call network test page (`/nettest`) tries, with
//! short-lived TURN credentials of its own.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;

use crate::http::AppState;
use crate::ice::NettestConfig;

/// The STUN and TURN addresses of this server and the media ports to test, with TURN
/// credentials valid for ten minutes. Needs no sign-in: the page is for anyone about to join.
#[utoipa::path(get, path = "/api/v1/nettest", tag = "diagnostics", security(()),
    responses((status = 200, body = NettestConfig)))]
pub async fn nettest_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Json<NettestConfig> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    Json(state.ice.nettest(host))
}
