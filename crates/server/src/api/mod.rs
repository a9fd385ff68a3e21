//! The REST API under `/api/v1` for accounts, meetings, contacts, presence and a call's
//! diagnostics (`docs/api.md`), and its OpenAPI document, generated from the handlers'
//! annotations and served at `/api/v1/openapi.json`.

pub mod accounts;
pub mod contacts;
pub mod events;
mod ics;
pub mod limits;
pub mod meetings;
pub mod nettest;
mod recurrence;
pub mod stats;
mod validate;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
pub use stoa_proto::ErrorBody;
use stoa_store::{Page, User, UserSummary};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, ApiErrorCode};
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    use accounts as a;
    use contacts as c;
    use meetings as m;
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(|| async { Json(openapi_document()) }),
        )
        .route("/api/v1/auth/signup", post(a::signup))
        .route("/api/v1/auth/login", post(a::login))
        .route("/api/v1/auth/logout", post(a::logout))
        .route("/api/v1/me", get(a::me).delete(a::delete_account))
        .route("/api/v1/session", get(a::session))
        .route("/api/v1/me/password", put(a::change_password))
        .route("/api/v1/meetings", post(m::create).get(m::list))
        .route(
            "/api/v1/meetings/{id}",
            get(m::detail).patch(m::update).delete(m::cancel),
        )
        .route("/api/v1/meetings/{id}/calendar.ics", get(m::calendar))
        .route("/api/v1/meetings/{id}/decline", post(c::decline_call))
        .route("/api/v1/history", get(m::history))
        .route("/api/v1/rooms/{room}/join", post(m::join_room))
        .route("/api/v1/rooms/{room}/people", get(m::room_people))
        .route("/api/v1/rooms/{room}/stats", get(stats::room_stats))
        .route("/api/v1/rooms/{room}/counters", get(stats::room_counters))
        .route("/api/v1/nettest", get(nettest::nettest_config))
        .route(
            "/api/v1/rooms/{room}/limits",
            get(limits::room_limits).put(limits::set_room_limits),
        )
        .route(
            "/api/v1/rooms/{room}/participants/{participant}/limits",
            put(limits::set_participant_limits),
        )
        .route("/api/v1/users", get(c::search))
        .route("/api/v1/contacts", get(c::list))
        .route("/api/v1/contacts/{user_id}", delete(c::remove))
        .route("/api/v1/contacts/{user_id}/call", post(c::call))
        .route(
            "/api/v1/contacts/requests",
            get(c::requests).post(c::request),
        )
        .route("/api/v1/contacts/requests/{user_id}", delete(c::withdraw))
        .route(
            "/api/v1/contacts/requests/{user_id}/accept",
            post(c::accept),
        )
        .route(
            "/api/v1/contacts/requests/{user_id}/decline",
            post(c::decline),
        )
        .route("/api/v1/blocks", get(c::blocks).post(c::block))
        .route("/api/v1/blocks/{user_id}", delete(c::unblock))
        .route("/api/v1/events", get(events::upgrade))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Stoa API", description = "Accounts, meetings, contacts and presence of a Stoa server. Signaling inside a call is described in docs/signaling.md."),
    paths(
        accounts::signup, accounts::login, accounts::logout, accounts::me, accounts::session,
        accounts::change_password, accounts::delete_account,
        meetings::create, meetings::list, meetings::detail, meetings::update, meetings::cancel,
        meetings::calendar, meetings::history, meetings::join_room, meetings::room_people,
        contacts::search, contacts::list, contacts::remove, contacts::call, contacts::requests,
        contacts::request, contacts::withdraw, contacts::accept, contacts::decline,
        contacts::decline_call,
        contacts::blocks, contacts::block, contacts::unblock,
        stats::room_stats, stats::room_counters, nettest::nettest_config, limits::room_limits, limits::set_room_limits,
        limits::set_participant_limits,
    ),
    components(schemas(ErrorBody, ApiErrorCode)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session_cookie" = [])),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(accounts::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Room names and the ids in paths, as the server accepts them.
const NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// A participant id, with or without its `p` prefix.
const PARTICIPANT_PATTERN: &str = "^p?[0-9]{1,19}$";

/// The OpenAPI document: the handlers' annotations plus what every operation shares, so no
/// handler has to repeat it: the shape of path parameters, the refusals of a JSON body (413
/// too large, 415 not JSON) and of a missing or wrong credential (401).
pub fn openapi_document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let error = serde_json::json!({
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    let refusal = |description: &str| {
        let mut r = error.clone();
        r["description"] = description.into();
        r
    };
    // Every name chrono-tz knows, as `time_zone` accepts them.
    let mut zones: Vec<serde_json::Value> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name().into())
        .collect();
    zones.push(serde_json::Value::Null);
    // The wire type keeps `error` a string (clients accept codes added later); the document
    // lists the codes this server sends.
    if let Some(error) = doc.pointer_mut("/components/schemas/ErrorBody/properties/error") {
        *error = serde_json::json!({"$ref": "#/components/schemas/ApiErrorCode"});
    }
    let meeting_in = "/components/schemas/MeetingIn/properties";
    extend(
        &mut doc,
        &format!("{meeting_in}/time_zone"),
        serde_json::json!({"enum": zones}),
    );
    extend(
        &mut doc,
        &format!("{meeting_in}/invitees/items"),
        serde_json::json!({"pattern": NAME_PATTERN}),
    );
    extend(
        &mut doc,
        &format!("{meeting_in}/skipped_occurrences/items"),
        serde_json::json!({"format": "date-time", "pattern": "^2[01][0-9]{2}-"}),
    );
    extend(
        &mut doc,
        "/components/schemas/MeetingOut/properties/skipped_occurrences/items",
        serde_json::json!({"format": "date-time"}),
    );
    let global_security = doc["security"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for operation in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
    {
        let params = operation
            .get_mut("parameters")
            .and_then(|p| p.as_array_mut());
        for param in params.into_iter().flatten() {
            if param["in"] == "path" {
                let pattern = match param["name"].as_str() {
                    Some("participant") => PARTICIPANT_PATTERN,
                    _ => NAME_PATTERN,
                };
                param["schema"]["pattern"] = pattern.into();
            }
        }
        let has_body = operation.get("requestBody").is_some();
        let needs_credential = operation
            .get("security")
            .unwrap_or(&global_security)
            .as_array()
            .is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            });
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        if has_body {
            responses
                .entry("413")
                .or_insert_with(|| refusal("the body is too large"));
            responses
                .entry("415")
                .or_insert_with(|| refusal("the body is not `application/json`"));
        }
        // Also where signing in is optional: a wrong credential is refused, not ignored.
        if needs_credential {
            responses
                .entry("401")
                .or_insert_with(|| refusal("a missing, wrong or expired credential"));
        }
    }
    doc
}

/// Adds `fields` to the schema object at `pointer` in the OpenAPI document.
fn extend(doc: &mut serde_json::Value, pointer: &str, fields: serde_json::Value) {
    let target = doc.pointer_mut(pointer).and_then(|p| p.as_object_mut());
    if let (Some(target), serde_json::Value::Object(fields)) = (target, fields) {
        target.extend(fields);
    }
}

/// A user as other users see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub display_name: String,
}

/// `GET /api/v1/session`: the signed-in user, or null.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionState {
    pub user: Option<UserOut>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
        }
    }
}

impl From<UserSummary> for UserOut {
    fn from(u: UserSummary) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
        }
    }
}

/// A JSON object request body whose rejection is an [`ApiError`]: 415 without a JSON
/// content type, 413 over the size limit, 400 for bad JSON, anything but an object (serde
/// would read a struct from an array too) or fields that do not fit.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(not_an_object());
        }
        from_value(value).map(Self)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let status = match e {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, ApiErrorCode::InvalidBody, e.body_text())
    }
}

fn not_an_object() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ApiErrorCode::InvalidBody,
        "the body must be a JSON object",
    )
}

fn invalid_json(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ApiErrorCode::InvalidBody,
        format!("invalid JSON body: {e}"),
    )
}

fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(invalid_json)
}

/// A JSON object body that may be left out entirely or be `null` (then `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ApiErrorCode::InvalidBody,
                    e.body_text(),
                )
            })?;
        // Left out means no bytes at all; whitespace alone is not JSON.
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid_json)?;
        match value {
            serde_json::Value::Null => Ok(Self(T::default())),
            serde_json::Value::Object(_) => from_value(value).map(Self),
            _ => Err(not_an_object()),
        }
    }
}

/// Query parameters whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryArgs<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::InvalidQuery,
            e.body_text(),
        )
    }
}

/// An optional integer field that JSON may also spell with a zero fraction (`5.0`), as JSON
/// Schema's `integer` allows.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(D::Error::custom(format!(
            "{n} is not a whole number in range"
        ))),
    }
}

/// Like [`whole_number`], telling a field given as `null` (`Some(None)`) from one left out
/// (`None`, with `#[serde(default)]`).
pub fn nullable_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    whole_number(d).map(Some)
}

/// A field that may be given as `null` (`Some(None)`) or left out (`None`, with
/// `#[serde(default)]`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Like [`whole_number`], where `null` is no value.
pub fn whole_number_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    whole_number(d)?.ok_or_else(|| D::Error::custom("null is not a whole number"))
}

/// `?limit=&offset=` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
}

impl ListQuery {
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Self {
        Self { limit, offset }
    }

    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be 1 to 100"));
        }
        if !(0..=1_000_000).contains(&offset) {
            return Err(ApiError::field("offset", "offset must be 0 to 1000000"));
        }
        Ok(Page { limit, offset })
    }
}

/// The page to ask the store for: one row more than asked, to learn whether more follow.
pub fn probe(page: Page) -> Page {
    Page {
        limit: page.limit + 1,
        offset: page.offset,
    }
}

/// Cuts a [`probe`]d result to the page and says where the next page starts, if any.
pub fn paged<T>(page: Page, mut rows: Vec<T>) -> (Vec<T>, Option<i64>) {
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    (rows, more.then_some(page.offset + page.limit))
}
