//! The one error shape of every HTTP endpoint: a status and the JSON [`ErrorBody`]
//! (`{error, message, field?}`) whose `error` is one of [`ApiErrorCode`], with conversions
//! from the errors of the layers below.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use stoa_proto::{ErrorBody, ErrorCode};
use stoa_sfu::SfuError;
use stoa_store::{Conflict, StoreError};
use utoipa::ToSchema;

use crate::auth::TokenError;

/// Every `error` an HTTP endpoint answers with (the OpenAPI document lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    // The request itself.
    InvalidBody,
    InvalidQuery,
    InvalidField,
    InvalidRoom,
    UnsupportedMediaType,
    BadSdp,
    BadMessage,
    OutOfOrder,
    PreconditionFailed,
    NotFound,
    // Who asks.
    Unauthorized,
    InvalidCredentials,
    WrongPassword,
    CrossOrigin,
    Forbidden,
    TokenMissing,
    TokenExpired,
    TokenInvalidSignature,
    TokenMalformed,
    TokenWrongRoom,
    RateLimited,
    // Meetings and their door.
    NoSuchMeeting,
    MeetingCancelled,
    MeetingLocked,
    SignInRequired,
    Lobby,
    // What the store refused.
    EmailTaken,
    SessionExists,
    RoomTaken,
    #[serde(rename = "self")]
    SelfRequest,
    Blocked,
    AlreadyContacts,
    AlreadyRequested,
    // The server.
    Busy,
    Unavailable,
    Closed,
    Internal,
}

impl ApiErrorCode {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

impl From<Conflict> for ApiErrorCode {
    fn from(c: Conflict) -> Self {
        match c {
            Conflict::EmailTaken => ApiErrorCode::EmailTaken,
            Conflict::SessionExists => ApiErrorCode::SessionExists,
            Conflict::RoomTaken => ApiErrorCode::RoomTaken,
            Conflict::SelfRequest => ApiErrorCode::SelfRequest,
            Conflict::Blocked => ApiErrorCode::Blocked,
            Conflict::AlreadyContacts => ApiErrorCode::AlreadyContacts,
            Conflict::AlreadyRequested => ApiErrorCode::AlreadyRequested,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.as_str(),
                message: message.into(),
                field: None,
            },
        }
    }

    /// `400 invalid_field`: what was wrong with which request field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidField, message);
        e.body.field = Some(field.into());
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ApiErrorCode::NotFound,
            format!("no such {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::Unauthorized,
            "sign in first: a session cookie or bearer token is required",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ApiErrorCode::Forbidden, message)
    }

    pub fn conflict(error: ApiErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error, message)
    }

    /// A failure of ours; the details go to the log, not to the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorCode::Internal,
            "the server could not complete the request; it is logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let code = match e {
            TokenError::Missing => ApiErrorCode::TokenMissing,
            TokenError::Expired => ApiErrorCode::TokenExpired,
            TokenError::BadSignature => ApiErrorCode::TokenInvalidSignature,
            TokenError::Malformed(_) => ApiErrorCode::TokenMalformed,
            TokenError::WrongRoom => ApiErrorCode::TokenWrongRoom,
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
    }
}

impl From<SfuError> for ApiError {
    fn from(e: SfuError) -> Self {
        let status = match e {
            SfuError::UnknownParticipant | SfuError::UnknownRoom => StatusCode::NOT_FOUND,
            SfuError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code().into(), e.to_string())
    }
}

impl From<ErrorCode> for ApiErrorCode {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::BadMessage => ApiErrorCode::BadMessage,
            ErrorCode::OutOfOrder => ApiErrorCode::OutOfOrder,
            ErrorCode::Unauthorized => ApiErrorCode::Unauthorized,
            ErrorCode::Forbidden | ErrorCode::Removed | ErrorCode::Denied => {
                ApiErrorCode::Forbidden
            }
            ErrorCode::BadSdp => ApiErrorCode::BadSdp,
            ErrorCode::Replaced | ErrorCode::Closed | ErrorCode::Ended => ApiErrorCode::Closed,
            ErrorCode::NotAdmitted => ApiErrorCode::Forbidden,
            ErrorCode::MeetingLocked => ApiErrorCode::MeetingLocked,
            ErrorCode::MeetingCancelled => ApiErrorCode::MeetingCancelled,
            ErrorCode::SignInRequired => ApiErrorCode::SignInRequired,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("record"),
            StoreError::Conflict(what) => ApiError::conflict(
                what.into(),
                format!("refused: {}", what.as_str().replace('_', " ")),
            ),
            other => ApiError::internal("database error", other),
        }
    }
}
