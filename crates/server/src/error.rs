//! The one error shape of every HTTP endpoint: a status and the JSON [`ErrorBody`]
//! (`{error, message, field?}`), with conversions from the errors of the layers below.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use stoa_proto::ErrorBody;
use stoa_sfu::SfuError;
use stoa_store::StoreError;

use crate::auth::TokenError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                message: message.into(),
                field: None,
            },
        }
    }

    /// `400 invalid_field`: what was wrong with which request field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_field", message);
        e.body.field = Some(field.into());
        e
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in first: a session cookie or bearer token is required",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(error: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error, message)
    }

    /// A failure of ours; the details go to the log, not to the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
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
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    }
}

impl From<SfuError> for ApiError {
    fn from(e: SfuError) -> Self {
        let status = match e {
            SfuError::UnknownParticipant | SfuError::UnknownRoom => StatusCode::NOT_FOUND,
            SfuError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let code = serde_json::to_value(e.code())
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        ApiError::new(
            status,
            code.as_deref().unwrap_or("bad_request"),
            e.to_string(),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("record"),
            StoreError::Conflict(what) => {
                ApiError::conflict(what, format!("refused: {}", what.replace('_', " ")))
            }
            other => ApiError::internal("database error", other),
        }
    }
}
