//! Contacts: user search, contact requests, the contact list with live presence, blocking,
//! and calling a contact (an instant meeting that rings on their side).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use stoa_store::{MeetingDraft, RequestOutcome};
use utoipa::{IntoParams, ToSchema};

use super::accounts::Authed;
use super::meetings::{insert_meeting, instant_draft, meeting_out, MeetingOut};
use super::validate::{id, line};
use super::{paged, probe, ErrorBody, JsonBody, ListQuery, QueryArgs, UserOut};
use crate::clock::unix_ms;
use crate::error::ApiError;
use crate::http::AppState;
use crate::presence::{PresenceState, UserEvent};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// 2 to 100 characters of a name or email, on one line.
    #[param(
        min_length = 2,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    q: String,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    items: Vec<UserOut>,
    next_offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Contact {
    id: String,
    email: String,
    display_name: String,
    presence: PresenceState,
}

#[derive(Serialize, ToSchema)]
pub struct ContactList {
    items: Vec<Contact>,
    next_offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestsOut {
    incoming: Vec<UserOut>,
    outgoing: Vec<UserOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct RequestStatus {
    /// `pending`, or `accepted` when that user had already asked.
    status: String,
}

/// Anyone whose email is exactly `q`, and people the user already knows (contacts, contact
/// requests, a shared meeting) whose name or email contains it.
#[utoipa::path(get, path = "/api/v1/users", tag = "contacts", params(SearchQuery),
    responses((status = 200, body = UserList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    auth: Authed,
    QueryArgs(query): QueryArgs<SearchQuery>,
) -> Result<Json<UserList>, ApiError> {
    let q = line("q", &query.q, 2, 100)?;
    let page = ListQuery::new(query.limit, query.offset).page()?;
    let users = state
        .store
        .search_users(&auth.user.id, &q, probe(page))
        .await?;
    let (users, next) = paged(page, users);
    Ok(Json(UserList {
        items: users.into_iter().map(UserOut::from).collect(),
        next_offset: next,
    }))
}

/// The user's contacts with their presence.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ListQuery),
    responses((status = 200, body = ContactList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<ContactList>, ApiError> {
    let page = query.page()?;
    let contacts = state.store.contacts(&auth.user.id, probe(page)).await?;
    let (contacts, next) = paged(page, contacts);
    let items = contacts
        .into_iter()
        .map(|c| Contact {
            presence: state.presence.state(&c.id),
            id: c.id,
            email: c.email,
            display_name: c.display_name,
        })
        .collect();
    Ok(Json(ContactList {
        items,
        next_offset: next,
    }))
}

/// Pending requests to and from the user.
#[utoipa::path(get, path = "/api/v1/contacts/requests", tag = "contacts",
    responses((status = 200, body = RequestsOut), (status = 401, body = ErrorBody)))]
pub async fn requests(
    State(state): State<AppState>,
    auth: Authed,
) -> Result<Json<RequestsOut>, ApiError> {
    let r = state.store.contact_requests(&auth.user.id).await?;
    Ok(Json(RequestsOut {
        incoming: r.incoming.into_iter().map(UserOut::from).collect(),
        outgoing: r.outgoing.into_iter().map(UserOut::from).collect(),
    }))
}

/// Asks another user to become a contact.
#[utoipa::path(post, path = "/api/v1/contacts/requests", tag = "contacts", request_body = UserRef,
    responses((status = 201, body = RequestStatus), (status = 200, description = "accepted at once", body = RequestStatus),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "self, blocked, already_contacts or already_requested", body = ErrorBody)))]
pub async fn request(
    State(state): State<AppState>,
    auth: Authed,
    JsonBody(body): JsonBody<UserRef>,
) -> Result<Response, ApiError> {
    let other = id("user_id", &body.user_id)?;
    let outcome = state
        .store
        .request_contact(&auth.user.id, &other, unix_ms())
        .await
        .map_err(not_found("user"))?;
    changed(&state, &auth.user.id, &other);
    if outcome == RequestOutcome::Pending {
        let from = UserOut::from(&auth.user);
        state
            .presence
            .notify(&other, UserEvent::ContactRequest { from });
    }
    let (status, word) = match outcome {
        RequestOutcome::Pending => (StatusCode::CREATED, "pending"),
        RequestOutcome::Accepted => (StatusCode::OK, "accepted"),
    };
    Ok((
        status,
        Json(RequestStatus {
            status: word.into(),
        }),
    )
        .into_response())
}

/// Accepts a request from `user_id`.
#[utoipa::path(post, path = "/api/v1/contacts/requests/{user_id}/accept", tag = "contacts",
    params(("user_id" = String, Path, description = "who asked")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let other = path_id(&user_id, "contact request")?;
    state
        .store
        .accept_contact(&auth.user.id, &other, unix_ms())
        .await
        .map_err(not_found("contact request"))?;
    changed(&state, &auth.user.id, &other);
    Ok(StatusCode::NO_CONTENT)
}

/// Declines a request from `user_id`.
#[utoipa::path(post, path = "/api/v1/contacts/requests/{user_id}/decline", tag = "contacts",
    params(("user_id" = String, Path, description = "who asked")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let other = path_id(&user_id, "contact request")?;
    state
        .store
        .delete_contact_request(&other, &auth.user.id)
        .await
        .map_err(not_found("contact request"))?;
    changed(&state, &auth.user.id, &other);
    Ok(StatusCode::NO_CONTENT)
}

/// Withdraws the user's own request to `user_id`.
#[utoipa::path(delete, path = "/api/v1/contacts/requests/{user_id}", tag = "contacts",
    params(("user_id" = String, Path, description = "who was asked")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn withdraw(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let other = path_id(&user_id, "contact request")?;
    state
        .store
        .delete_contact_request(&auth.user.id, &other)
        .await
        .map_err(not_found("contact request"))?;
    changed(&state, &auth.user.id, &other);
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a contact, on both sides.
#[utoipa::path(delete, path = "/api/v1/contacts/{user_id}", tag = "contacts",
    params(("user_id" = String, Path, description = "the contact")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let other = path_id(&user_id, "contact")?;
    state
        .store
        .remove_contact(&auth.user.id, &other)
        .await
        .map_err(not_found("contact"))?;
    changed(&state, &auth.user.id, &other);
    Ok(StatusCode::NO_CONTENT)
}

/// Users the user blocked.
#[utoipa::path(get, path = "/api/v1/blocks", tag = "contacts",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody)))]
pub async fn blocks(
    State(state): State<AppState>,
    auth: Authed,
) -> Result<Json<UserList>, ApiError> {
    let users = state.store.blocked(&auth.user.id).await?;
    Ok(Json(UserList {
        items: users.into_iter().map(UserOut::from).collect(),
        next_offset: None,
    }))
}

/// Blocks a user: ends the contact and any requests; they can no longer find or ask you.
#[utoipa::path(post, path = "/api/v1/blocks", tag = "contacts", request_body = UserRef,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    auth: Authed,
    JsonBody(body): JsonBody<UserRef>,
) -> Result<StatusCode, ApiError> {
    let other = id("user_id", &body.user_id)?;
    if other == auth.user.id {
        return Err(ApiError::field("user_id", "you cannot block yourself"));
    }
    if state.store.user(&other).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    state.store.block(&auth.user.id, &other, unix_ms()).await?;
    changed(&state, &auth.user.id, &other);
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a block.
#[utoipa::path(delete, path = "/api/v1/blocks/{user_id}", tag = "contacts",
    params(("user_id" = String, Path, description = "the blocked user")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unblock(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let other = path_id(&user_id, "block")?;
    state
        .store
        .unblock(&auth.user.id, &other)
        .await
        .map_err(not_found("block"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts an instant meeting with a contact invited and rings them.
#[utoipa::path(post, path = "/api/v1/contacts/{user_id}/call", tag = "contacts",
    params(("user_id" = String, Path, description = "the contact to call")),
    responses((status = 201, body = MeetingOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn call(
    State(state): State<AppState>,
    auth: Authed,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let other = path_id(&user_id, "contact")?;
    if !state.store.are_contacts(&auth.user.id, &other).await? {
        return Err(ApiError::not_found("contact"));
    }
    let callee = state
        .store
        .user(&other)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    let draft = MeetingDraft {
        title: format!("{} and {}", auth.user.display_name, callee.display_name),
        require_sign_in: true,
        ..instant_draft()
    };
    let meeting =
        insert_meeting(&state, &auth.user.id, draft, std::slice::from_ref(&other)).await?;
    state.presence.notify(
        &other,
        UserEvent::Ring {
            from: UserOut::from(&auth.user),
            meeting_id: meeting.id.clone(),
            url: format!("/m/{}", meeting.room),
            room: meeting.room.clone(),
        },
    );
    let out = meeting_out(&state, &auth.user.id, meeting).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Declines a call: the meeting's host (the caller) is told, on every page that listens.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/decline", tag = "contacts",
    params(("id" = String, Path, description = "the meeting of the call")),
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 404, description = "no such meeting, or not invited to it", body = ErrorBody)))]
pub async fn decline_call(
    State(state): State<AppState>,
    auth: Authed,
    Path(meeting_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let meeting_id = id("id", &meeting_id).map_err(|_| ApiError::not_found("meeting"))?;
    let meeting = match state.store.meeting(&meeting_id).await? {
        Some(m) if state.store.is_invited(&m.id, &auth.user.id).await? => m,
        _ => return Err(ApiError::not_found("meeting")),
    };
    state.presence.notify(
        &meeting.host_id,
        UserEvent::CallDeclined {
            by: UserOut::from(&auth.user),
            meeting_id: meeting.id,
            room: meeting.room,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// A user id from the path; a malformed one cannot exist, so it is `404` like a missing one.
fn path_id(raw: &str, what: &'static str) -> Result<String, ApiError> {
    id("user_id", raw).map_err(|_| ApiError::not_found(what))
}

fn not_found(what: &'static str) -> impl Fn(stoa_store::StoreError) -> ApiError {
    move |e| match e {
        stoa_store::StoreError::NotFound => ApiError::not_found(what),
        e => e.into(),
    }
}

/// Both users' contact views changed; their presence may now be visible to each other.
fn changed(state: &AppState, a: &str, b: &str) {
    for user in [a, b] {
        state.presence.notify(user, UserEvent::ContactsChanged);
    }
}
