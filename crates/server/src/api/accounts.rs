//! Accounts and sessions: sign-up, log-in (rate limited), log-out, password change, and
//! the extractors that turn a session cookie or bearer token into the signed-in user.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stoa_store::{NewUser, Session, User};
use utoipa::ToSchema;

use super::validate::{display_name, email, password};
use super::{ErrorBody, JsonBody, SessionState, UserOut};
use crate::clock::unix_ms;
use crate::error::{ApiError, ApiErrorCode};
use crate::guard::Busy;
use crate::http::AppState;

pub const SESSION_COOKIE: &str = "stoa_session";
const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The signed-in user of a request and the hash of its session secret.
pub struct Authed {
    pub user: User,
    pub session_hash: String,
}

/// The signed-in user, if any.
pub struct MaybeAuthed(pub Option<Authed>);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        MaybeAuthed::from_request_parts(parts, state)
            .await?
            .0
            .ok_or_else(ApiError::unauthorized)
    }
}

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (secret, explicit) = match session_credential(&parts.headers) {
            Credential::None => return Ok(MaybeAuthed(None)),
            Credential::Invalid => return Err(ApiError::unauthorized()),
            Credential::Bearer(secret) => (secret, true),
            Credential::Cookie(secret) => {
                if cross_origin(&parts.headers) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        ApiErrorCode::CrossOrigin,
                        "A page of another site cannot act with your session.",
                    ));
                }
                (secret, false)
            }
        };
        let hash = hash_secret(&secret);
        let session = state.store.session(&hash, unix_ms()).await?;
        let user = match session {
            Some(session) => state.store.user(&session.user_id).await?,
            None => None,
        };
        match user {
            Some(user) => Ok(MaybeAuthed(Some(Authed {
                user,
                session_hash: hash,
            }))),
            // A stale cookie leaves a guest; a bearer secret that names no session is refused.
            None if explicit => Err(ApiError::unauthorized()),
            None => Ok(MaybeAuthed(None)),
        }
    }
}

/// Whether a browser sent this request from a page of another origin than the one it was
/// sent to (the `Origin` header names another host). Cookies ride along on such requests
/// (same site, other port; or a top-level form post), so they must not count as the user.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        _ => true,
    }
}

/// The account credential a request carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    None,
    /// `Authorization: Bearer ss_...`.
    Bearer(String),
    /// The `stoa_session` cookie, with no `Authorization` header.
    Cookie(String),
    /// An `Authorization` header that is no session secret (a room access token, another
    /// scheme, garbage): it decides alone, so the request is refused even with a cookie.
    Invalid,
}

/// The session credential of a request: an `Authorization` header if there is one, else the
/// `stoa_session` cookie.
pub fn session_credential(headers: &HeaderMap) -> Credential {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|v| v.starts_with("ss_"))
            .map_or(Credential::Invalid, |v| Credential::Bearer(v.to_string()));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map_or(Credential::None, |(_, value)| {
            Credential::Cookie(value.to_string())
        })
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    /// One line: no control characters, not only spaces.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 254)]
    email: String,
    #[schema(min_length = 1, max_length = 256)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(max_length = 256)]
    current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// The password again, to confirm deleting the account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    #[schema(max_length = 256)]
    password: String,
}

/// A new session: the user, and the session secret for `Authorization: Bearer` (the web
/// app uses the cookie set alongside instead).
#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    user: UserOut,
    token: String,
}

/// Creates an account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", request_body = SignupRequest,
    security(()),
    responses((status = 201, body = SessionOut), (status = 400, body = ErrorBody),
              (status = 409, description = "email_taken", body = ErrorBody),
              (status = 429, description = "rate_limited: too many accounts from this address", body = ErrorBody),
              (status = 503, description = "busy: too many passwords being checked; retry", body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Result<Response, ApiError> {
    let email = email(&req.email)?;
    let name = display_name("display_name", &req.display_name)?;
    password("password", &req.password)?;
    if !state
        .guards
        .signups
        .try_record(&peer.ip().to_string(), Instant::now())
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::RateLimited,
            "Too many accounts were created from your address. Try again in an hour.",
        ));
    }
    let password_hash = hash_password(&state, req.password).await?;
    let user = state
        .store
        .create_user(
            NewUser {
                email,
                display_name: name,
                password_hash,
            },
            unix_ms(),
        )
        .await?;
    tracing::info!(user = %user.id, "account created");
    start_session(&state, user, StatusCode::CREATED).await
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    security(()),
    responses((status = 200, body = SessionOut), (status = 400, body = ErrorBody),
              (status = 401, description = "invalid_credentials", body = ErrorBody),
              (status = 429, description = "rate_limited", body = ErrorBody),
              (status = 503, description = "busy: too many passwords being checked; retry", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let email = req.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        return Err(ApiError::field(
            "email",
            "email must be 1 to 254 characters",
        ));
    }
    if req.password.is_empty() || req.password.len() > 256 {
        return Err(ApiError::field(
            "password",
            "password must be 1 to 256 characters",
        ));
    }
    let keys = login_keys(&email, peer.ip());
    let guards = &state.guards;
    let now = Instant::now();
    if guards.login_pair.exhausted(&keys[0], now)
        || guards.login_addr.exhausted(&keys[1], now)
        || guards.login_email.exhausted(&keys[2], now)
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::RateLimited,
            "Too many failed log-ins. Try again in 15 minutes.",
        ));
    }
    let user = state.store.user_by_email(&email).await?;
    let ok = match &user {
        Some(u) => verify_password(&state, req.password, u.password_hash.clone()).await?,
        None => {
            // Spend the same time as a real check so the answer does not reveal accounts.
            let _ = hash_password(&state, req.password).await?;
            false
        }
    };
    match (ok, user) {
        (true, Some(user)) => start_session(&state, user, StatusCode::OK).await,
        _ => {
            let now = Instant::now();
            guards.login_pair.record(&keys[0], now);
            guards.login_addr.record(&keys[1], now);
            guards.login_email.record(&keys[2], now);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ApiErrorCode::InvalidCredentials,
                "the email or password is wrong",
            ))
        }
    }
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, auth: Authed) -> Result<Response, ApiError> {
    state.store.delete_session(&auth.session_hash).await?;
    Ok(signed_out(StatusCode::NO_CONTENT))
}

/// A response that clears the session cookie.
fn signed_out(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("stoa_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
pub async fn me(auth: Authed) -> Json<UserOut> {
    Json(UserOut::from(&auth.user))
}

/// Who is signed in, if anyone: a signed-out browser asks this instead of `/me` to get an
/// answer rather than a 401 (a stale cookie counts as signed out).
#[utoipa::path(get, path = "/api/v1/session", tag = "accounts",
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = SessionState)))]
pub async fn session(MaybeAuthed(auth): MaybeAuthed) -> Json<SessionState> {
    Json(SessionState {
        user: auth.map(|a| UserOut::from(&a.user)),
    })
}

/// Changes the password; every other session of the user ends.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "wrong current password", body = ErrorBody),
              (status = 503, description = "busy: too many passwords being checked; retry", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: Authed,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    password("new_password", &req.new_password)?;
    confirm_password(
        &state,
        &auth,
        req.current_password,
        "the current password is wrong",
    )
    .await?;
    let hash = hash_password(&state, req.new_password).await?;
    state
        .store
        .set_password(&auth.user.id, &hash, &auth.session_hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's password given again, before a change that needs it; `403
/// wrong_password` (with `refusal` as its message) otherwise.
async fn confirm_password(
    state: &AppState,
    auth: &Authed,
    given: String,
    refusal: &'static str,
) -> Result<(), ApiError> {
    if given.len() > 256 || !verify_password(state, given, auth.user.password_hash.clone()).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::WrongPassword,
            refusal,
        ));
    }
    Ok(())
}

/// Deletes the signed-in account and what is theirs (see `Store::delete_user`), after
/// checking the password again; the session cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/me", tag = "accounts", request_body = AccountDeletion,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "wrong password", body = ErrorBody),
              (status = 503, description = "busy: too many passwords being checked; retry", body = ErrorBody)))]
pub async fn delete_account(
    State(state): State<AppState>,
    auth: Authed,
    JsonBody(req): JsonBody<AccountDeletion>,
) -> Result<Response, ApiError> {
    confirm_password(&state, &auth, req.password, "the password is wrong").await?;
    state.store.delete_user(&auth.user.id).await?;
    tracing::info!(target: "stoa::audit", actor = %auth.user.id, "account deleted");
    Ok(signed_out(StatusCode::NO_CONTENT))
}

async fn start_session(
    state: &AppState,
    user: User,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let secret = format!("ss_{}", hex::encode(rand::random::<[u8; 32]>()));
    let now = unix_ms();
    state
        .store
        .create_session(Session {
            token_hash: hash_secret(&secret),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL.as_millis() as i64,
        })
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let body = SessionOut {
        user: UserOut::from(&user),
        token: secret,
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The rate-limit keys of a log-in: the (email, address) pair, the address, the email.
fn login_keys(email: &str, addr: IpAddr) -> [String; 3] {
    [
        format!("{email} {addr}"),
        addr.to_string(),
        email.to_string(),
    ]
}

fn busy(_: Busy) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ApiErrorCode::Busy,
        "The server is checking too many passwords right now. Try again in a few seconds.",
    )
}

/// Argon2id with the crate's default (OWASP) parameters, on the bounded hashing pool.
async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    state
        .guards
        .hashing
        .run(move || {
            let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
                .map_err(|e| ApiError::internal("salt", e))?;
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ApiError::internal("password hashing", e))
        })
        .await
        .map_err(busy)?
}

async fn verify_password(
    state: &AppState,
    password: String,
    hash: String,
) -> Result<bool, ApiError> {
    state
        .guards
        .hashing
        .run(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| ApiError::internal("stored hash", e))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map_err(busy)?
}
