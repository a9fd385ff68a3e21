//! Meetings: instant and scheduled, invitations, editing and cancelling, the `.ics` export,
//! attendance history, and the door of a call: `POST /rooms/{room}/join`, which turns a
//! signed-in user or a named guest into a room access token if the meeting admits them.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use stoa_proto::{Grants, RoomName};
use stoa_store::{Conflict, Meeting, MeetingDraft, Recurrence, StoreError};
use utoipa::ToSchema;

use super::accounts::{Authed, MaybeAuthed};
use super::recurrence::{self, End, Series};
use super::validate::{display_name, id, line, text};
use super::{ics, paged, probe, ErrorBody, JsonBody, ListQuery, OptionalJson, QueryArgs, UserOut};
use crate::auth::{identity_user, user_identity};
use crate::clock::unix_ms;
use crate::door;
use crate::error::{ApiError, ApiErrorCode};
use crate::http::{random_room_name, AppState};

/// How long a room access token from the join endpoint stays valid.
const JOIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_INVITEES: usize = 200;
const MAX_SKIPPED: usize = 100;

/// The fields a host sets when creating a meeting (all optional when editing).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingIn {
    /// 1 to 200 characters on one line; default "Meeting".
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: Option<String>,
    /// Up to 5000 characters; no control characters but line breaks and tabs.
    #[schema(max_length = 5000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    /// RFC 3339 with an offset, in the years 2000 to 2199 (fractions of a second are dropped);
    /// absent for an instant meeting.
    #[schema(format = DateTime, pattern = "^2[01][0-9]{2}-")]
    start_at: Option<String>,
    /// IANA time zone the meeting recurs in, e.g. `Europe/Berlin`; default `UTC`.
    time_zone: Option<String>,
    /// 1 to 1440; default 60.
    #[schema(minimum = 1, maximum = 1440)]
    #[serde(default, deserialize_with = "super::whole_number")]
    duration_minutes: Option<i64>,
    /// `none`, `daily`, `weekly` or `monthly` (the same day of the month; months without it
    /// are left out); recurring meetings need `start_at`.
    #[schema(pattern = "^(none|daily|weekly|monthly)$")]
    recurrence: Option<String>,
    /// Ends the series after 1 to 1000 occurrences (skipped ones count); `null` for no end by
    /// count. Not together with `recurrence_until`: giving one replaces the other.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::nullable_whole_number")]
    recurrence_count: Option<Option<i64>>,
    /// Ends the series on this date in `time_zone` (`YYYY-MM-DD`, years 2000 to 2199, not
    /// before the first occurrence): an occurrence that starts on it still takes place. `null`
    /// for no end date.
    #[schema(format = Date, pattern = "^2[01][0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    #[serde(default, deserialize_with = "super::nullable")]
    recurrence_until: Option<Option<String>>,
    /// Start instants (RFC 3339, as `start_at`) of occurrences that do not take place; each
    /// must be an occurrence of the series. Replaces the list; absent keeps it, less any that
    /// a change of the series leaves no longer an occurrence.
    #[schema(max_items = 100)]
    skipped_occurrences: Option<Vec<String>>,
    require_sign_in: Option<bool>,
    lobby: Option<bool>,
    /// Only when editing.
    locked: Option<bool>,
    /// User ids; each must be one of the host's contacts.
    #[schema(max_items = 200)]
    invitees: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct MeetingOut {
    id: String,
    room: String,
    url: String,
    title: String,
    description: String,
    start_at: Option<String>,
    time_zone: String,
    duration_minutes: i64,
    recurrence: String,
    recurrence_count: Option<i64>,
    /// The last day of the series, `YYYY-MM-DD` in `time_zone`, inclusive.
    #[schema(format = Date)]
    recurrence_until: Option<String>,
    /// Start instants of occurrences that do not take place, earliest first.
    skipped_occurrences: Vec<String>,
    require_sign_in: bool,
    lobby: bool,
    locked: bool,
    cancelled: bool,
    host: UserOut,
    invitees: Vec<UserOut>,
    is_host: bool,
    created_at: String,
    /// Who is in the call now (detail view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<Vec<LiveParticipant>>,
}

#[derive(Serialize, ToSchema)]
pub struct LiveParticipant {
    name: String,
    user_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MeetingList {
    items: Vec<MeetingOut>,
    next_offset: Option<i64>,
}

/// An ad-hoc meeting link for someone not signed in; nothing is stored. The room name carries
/// the server's signature, so only links made here hand out guest tokens.
#[derive(Serialize, ToSchema)]
pub struct AdHocMeeting {
    room: String,
    url: String,
    /// Makes its holder a host of this room: pass it as `host_key` when joining.
    #[schema(min_length = 24, max_length = 24)]
    host_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct Attendee {
    name: String,
    user_id: Option<String>,
    joined_at: String,
    left_at: Option<String>,
    seconds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PastMeetingOut {
    meeting: MeetingOut,
    attendees: Vec<Attendee>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryList {
    items: Vec<PastMeetingOut>,
    next_offset: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinIn {
    /// Display name in the call; required for guests, defaults to the account's name.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// The `host_key` an ad-hoc meeting's creator was given: joins as its host.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9]+$")]
    host_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JoinOut {
    /// The room access token for `/ws`, WHIP and WHEP.
    token: String,
    room: String,
    identity: String,
    name: String,
    /// The token carries room-admin: host powers in the call.
    host: bool,
}

/// Who is in a call, for the screen before joining it, or why joining would be refused.
#[derive(Serialize, ToSchema)]
pub struct PeopleOut {
    /// People in the call now (WHEP viewers, who are not seen, not counted); 0 when refused.
    count: usize,
    /// The names of the first few of them, in join order.
    names: Vec<String>,
    /// Why `POST /rooms/{room}/join` would refuse this person now (`no_such_meeting`,
    /// `meeting_cancelled`, `meeting_locked`, `sign_in_required`), with its message; absent
    /// when they may join (waiting in a lobby counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<ErrorBody>,
}

/// How many names [`room_people`] shows.
const PEOPLE_SHOWN: usize = 6;

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Creates a meeting: stored (instant or scheduled) for a signed-in user, an ad-hoc link
/// otherwise.
#[utoipa::path(post, path = "/api/v1/meetings", tag = "meetings", request_body = Option<MeetingIn>,
    security((), ("bearer" = []), ("session_cookie" = [])),
    responses((status = 201, description = "the meeting (signed in) or an ad-hoc link (signed out)", body = MeetingOut),
              (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    MaybeAuthed(auth): MaybeAuthed,
    OptionalJson(input): OptionalJson<MeetingIn>,
) -> Result<Response, ApiError> {
    let Some(auth) = auth else {
        let room = state.keys.sign_room(&random_room_name());
        let url = format!("/m/{room}");
        let host_key = state
            .keys
            .host_key(&RoomName::new(room.clone()).expect("generated room names are valid"));
        let out = AdHocMeeting {
            room,
            url,
            host_key,
        };
        return Ok((StatusCode::CREATED, Json(out)).into_response());
    };
    if input.locked.is_some() {
        return Err(ApiError::field("locked", "a new meeting cannot be locked"));
    }
    let draft = draft(&input, None)?;
    let invitees = invitees(&state, &auth.user.id, input.invitees.as_deref()).await?;
    let meeting = insert_meeting(&state, &auth.user.id, draft, &invitees).await?;
    let out = meeting_out(&state, &auth.user.id, meeting).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Stores a meeting under a fresh room name (retrying the rare name collision).
pub async fn insert_meeting(
    state: &AppState,
    host_id: &str,
    draft: MeetingDraft,
    invitees: &[String],
) -> Result<Meeting, ApiError> {
    for _ in 0..5 {
        let room = random_room_name();
        match state
            .store
            .create_meeting(host_id, &room, draft.clone(), invitees, unix_ms())
            .await
        {
            Err(StoreError::Conflict(Conflict::RoomTaken)) => continue,
            other => return Ok(other?),
        }
    }
    Err(ApiError::internal(
        "meeting room names",
        "five collisions in a row",
    ))
}

/// Meetings the user hosts or is invited to, newest first.
#[utoipa::path(get, path = "/api/v1/meetings", tag = "meetings", params(ListQuery),
    responses((status = 200, body = MeetingList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<MeetingList>, ApiError> {
    let page = query.page()?;
    let meetings = state.store.meetings_for(&auth.user.id, probe(page)).await?;
    let (meetings, next) = paged(page, meetings);
    let mut items = Vec::with_capacity(meetings.len());
    for m in meetings {
        items.push(meeting_out(&state, &auth.user.id, m).await?);
    }
    Ok(Json(MeetingList {
        items,
        next_offset: next,
    }))
}

/// One meeting, with who is in its call now. Hosts and invitees only.
#[utoipa::path(get, path = "/api/v1/meetings/{id}", tag = "meetings",
    params(("id" = String, Path, description = "meeting id")),
    responses((status = 200, body = MeetingOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    auth: Authed,
    Path(meeting_id): Path<String>,
) -> Result<Json<MeetingOut>, ApiError> {
    let meeting = visible_meeting(&state, &auth.user.id, &meeting_id).await?;
    let room = meeting.room.clone();
    let mut out = meeting_out(&state, &auth.user.id, meeting).await?;
    out.live = Some(live_participants(&state, &room).await);
    Ok(Json(out))
}

/// Changes a meeting. Host only.
#[utoipa::path(patch, path = "/api/v1/meetings/{id}", tag = "meetings", request_body = MeetingIn,
    params(("id" = String, Path, description = "meeting id")),
    responses((status = 200, body = MeetingOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "meeting_cancelled", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(meeting_id): Path<String>,
    JsonBody(input): JsonBody<MeetingIn>,
) -> Result<Json<MeetingOut>, ApiError> {
    let meeting = hosted_meeting(&state, &auth.user.id, &meeting_id).await?;
    if meeting.cancelled {
        return Err(ApiError::conflict(
            ApiErrorCode::MeetingCancelled,
            "a cancelled meeting cannot be changed",
        ));
    }
    let draft = draft(&input, Some(&meeting.draft))?;
    let invitees = match &input.invitees {
        Some(list) => Some(invitees(&state, &auth.user.id, Some(list)).await?),
        None => None,
    };
    let mut updated = state
        .store
        .update_meeting(&meeting.id, draft, invitees.as_deref(), unix_ms())
        .await?;
    if let Some(locked) = input.locked {
        state
            .store
            .set_locked(&meeting.id, locked, unix_ms())
            .await?;
        updated.locked = locked;
        if let Ok(room) = stoa_proto::RoomName::new(meeting.room.clone()) {
            state.media.set_locked(room, locked);
        }
        let action = if locked {
            "lock the meeting"
        } else {
            "unlock the meeting"
        };
        crate::ws::audit(&auth.user.id, &meeting.room, action);
    }
    Ok(Json(meeting_out(&state, &auth.user.id, updated).await?))
}

/// Cancels a meeting: it stays in lists, marked cancelled, and its link admits nobody.
#[utoipa::path(delete, path = "/api/v1/meetings/{id}", tag = "meetings",
    params(("id" = String, Path, description = "meeting id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authed,
    Path(meeting_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let meeting = hosted_meeting(&state, &auth.user.id, &meeting_id).await?;
    state.store.cancel_meeting(&meeting.id, unix_ms()).await?;
    crate::ws::audit(&auth.user.id, &meeting.room, "cancel the meeting");
    Ok(StatusCode::NO_CONTENT)
}

/// The meeting as an iCalendar file (RFC 5545).
#[utoipa::path(get, path = "/api/v1/meetings/{id}/calendar.ics", tag = "meetings",
    params(("id" = String, Path, description = "meeting id")),
    responses((status = 200, content_type = "text/calendar", body = String),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AppState>,
    auth: Authed,
    Path(meeting_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meeting = visible_meeting(&state, &auth.user.id, &meeting_id).await?;
    let host = state
        .store
        .user(&meeting.host_id)
        .await?
        .ok_or_else(|| ApiError::not_found("host"))?;
    let invitees = state.store.invitees(&meeting.id).await?;
    let base = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let body = ics::render(&meeting, &host, &invitees, &base, unix_ms());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"stoa-{}.ics\"", meeting.room),
            ),
        ],
        body,
    )
        .into_response())
}

/// Past meetings the user hosted, was invited to or attended, with everyone's attendance.
#[utoipa::path(get, path = "/api/v1/history", tag = "meetings", params(ListQuery),
    responses((status = 200, body = HistoryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    auth: Authed,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<HistoryList>, ApiError> {
    let page = query.page()?;
    let past = state.store.history(&auth.user.id, probe(page)).await?;
    let (past, next) = paged(page, past);
    let now = unix_ms();
    let mut items = Vec::with_capacity(past.len());
    for p in past {
        let attendees = p
            .attendance
            .into_iter()
            .map(|a| Attendee {
                seconds: (a.left_at.unwrap_or(now) - a.joined_at).max(0) / 1000,
                name: a.name,
                user_id: a.user_id,
                joined_at: rfc3339(a.joined_at),
                left_at: a.left_at.map(rfc3339),
            })
            .collect();
        items.push(PastMeetingOut {
            meeting: meeting_out(&state, &auth.user.id, p.meeting).await?,
            attendees,
        });
    }
    Ok(Json(HistoryList {
        items,
        next_offset: next,
    }))
}

/// A room access token for a call, if the meeting admits this person.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/join", tag = "meetings", request_body = Option<JoinIn>,
    security((), ("bearer" = []), ("session_cookie" = [])),
    params(("room" = String, Path, description = "room name from the meeting link")),
    responses((status = 200, body = JoinOut), (status = 400, body = ErrorBody),
              (status = 401, description = "sign_in_required", body = ErrorBody),
              (status = 403, description = "meeting_locked", body = ErrorBody),
              (status = 404, description = "no_such_meeting: neither a stored meeting nor an ad-hoc room of this server", body = ErrorBody),
              (status = 410, description = "meeting_cancelled", body = ErrorBody)))]
pub async fn join_room(
    State(state): State<AppState>,
    MaybeAuthed(auth): MaybeAuthed,
    Path(room): Path<String>,
    OptionalJson(input): OptionalJson<JoinIn>,
) -> Result<Json<JoinOut>, ApiError> {
    let room = RoomName::new(room).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::InvalidRoom,
            e.to_string(),
        )
    })?;
    // The request is checked before the meeting: a bad one is refused the same either way.
    let (identity, name) = match (&auth, input.name.as_deref()) {
        (Some(a), None) => (user_identity(&a.user.id), a.user.display_name.clone()),
        (Some(a), Some(name)) => (user_identity(&a.user.id), display_name("name", name)?),
        (None, Some(name)) => (
            format!("guest-{:016x}", rand::random::<u64>()),
            display_name("name", name)?,
        ),
        (None, None) => return Err(ApiError::field("name", "a guest must give a name")),
    };
    if let Some(key) = input.host_key.as_deref() {
        if key.is_empty()
            || key.len() > 64
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(ApiError::field(
                "host_key",
                "A host key is 1 to 64 lower-case letters and digits.",
            ));
        }
    }
    let meeting = guest_meeting(&state, &room).await?;
    let host = match &meeting {
        Some(m) => auth.as_ref().is_some_and(|a| a.user.id == m.host_id),
        None => input
            .host_key
            .as_deref()
            .is_some_and(|key| state.keys.is_host_key(&room, key)),
    };
    let grants = Grants {
        room_admin: host,
        ..Grants::default()
    };
    door::check_meeting(meeting, &identity, &grants)?;
    let token = state
        .keys
        .mint(&room, &identity, &name, grants, JOIN_TOKEN_TTL);
    Ok(Json(JoinOut {
        token,
        room: room.to_string(),
        identity,
        name,
        host,
    }))
}

/// Who is in the call of a meeting link now, for anyone the meeting would let in (lobby
/// meetings included); for anyone else, which refusal [`join_room`] would give. A refusal is
/// part of the answer, not an error status: the page before joining asks this of every link
/// it is opened on, a mistyped one included, and says at once what joining would say.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/people", tag = "meetings",
    security((), ("bearer" = []), ("session_cookie" = [])),
    params(("room" = String, Path, description = "room name from the meeting link")),
    responses((status = 200, body = PeopleOut), (status = 400, description = "invalid_room", body = ErrorBody)))]
pub async fn room_people(
    State(state): State<AppState>,
    MaybeAuthed(auth): MaybeAuthed,
    Path(room): Path<String>,
) -> Result<Json<PeopleOut>, ApiError> {
    let room = RoomName::new(room).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ApiErrorCode::InvalidRoom,
            e.to_string(),
        )
    })?;
    let refused = |e: ApiError| PeopleOut {
        count: 0,
        names: Vec::new(),
        refusal: Some(e.body),
    };
    let meeting = match guest_meeting(&state, &room).await {
        Ok(m) => m,
        Err(e) if e.status.is_client_error() => return Ok(Json(refused(e))),
        Err(e) => return Err(e),
    };
    let identity = auth
        .as_ref()
        .map_or("guest".into(), |a| user_identity(&a.user.id));
    let host = auth
        .as_ref()
        .zip(meeting.as_ref())
        .is_some_and(|(a, m)| m.host_id == a.user.id);
    let grants = Grants {
        room_admin: host,
        ..Grants::default()
    };
    if let Err(e) = door::check_meeting(meeting, &identity, &grants) {
        return Ok(Json(refused(e)));
    }
    let (report, _) = state.media.report(room).await;
    let names: Vec<String> = report
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.kind.is_visible())
        .map(|p| p.name)
        .collect();
    Ok(Json(PeopleOut {
        count: names.len(),
        names: names.into_iter().take(PEOPLE_SHOWN).collect(),
        refusal: None,
    }))
}

/// The stored meeting of a room a guest may be given a token for (`None`: an ad-hoc room
/// this server made); `no_such_meeting` for any other room.
async fn guest_meeting(state: &AppState, room: &RoomName) -> Result<Option<Meeting>, ApiError> {
    match state.store.meeting_by_room(room.as_str()).await? {
        Some(m) => Ok(Some(m)),
        None if state.keys.is_signed_room(room.as_str()) => Ok(None),
        None => Err(no_such_meeting()),
    }
}

/// A room that is neither a stored meeting nor an ad-hoc room made by this server (rooms of
/// integrations that mint their own tokens with `stoa token` hand out no guest tokens).
fn no_such_meeting() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiErrorCode::NoSuchMeeting,
        "There is no meeting at this link. Check the link, or start a new meeting.",
    )
}

/// The meeting if the user hosts it or is invited; `404` otherwise, so ids leak nothing.
async fn visible_meeting(
    state: &AppState,
    user_id: &str,
    meeting_id: &str,
) -> Result<Meeting, ApiError> {
    let meeting_id = id("id", meeting_id).map_err(|_| ApiError::not_found("meeting"))?;
    let meeting = state
        .store
        .meeting(&meeting_id)
        .await?
        .ok_or_else(|| ApiError::not_found("meeting"))?;
    if meeting.host_id == user_id || state.store.is_invited(&meeting.id, user_id).await? {
        Ok(meeting)
    } else {
        Err(ApiError::not_found("meeting"))
    }
}

async fn hosted_meeting(
    state: &AppState,
    user_id: &str,
    meeting_id: &str,
) -> Result<Meeting, ApiError> {
    let meeting = visible_meeting(state, user_id, meeting_id).await?;
    if meeting.host_id != user_id {
        return Err(ApiError::forbidden("only the host can change this meeting"));
    }
    Ok(meeting)
}

async fn live_participants(state: &AppState, room: &str) -> Vec<LiveParticipant> {
    let Ok(room) = RoomName::new(room) else {
        return Vec::new();
    };
    let (report, _) = state.media.report(room).await;
    report
        .unwrap_or_default()
        .into_iter()
        .map(|p| LiveParticipant {
            user_id: identity_user(&p.identity).map(String::from),
            name: p.name,
        })
        .collect()
}

pub async fn meeting_out(
    state: &AppState,
    viewer: &str,
    m: Meeting,
) -> Result<MeetingOut, ApiError> {
    let host = state
        .store
        .user(&m.host_id)
        .await?
        .map(|u| UserOut::from(&u))
        .ok_or_else(|| ApiError::internal("meeting host", "host account missing"))?;
    let invitees = state
        .store
        .invitees(&m.id)
        .await?
        .into_iter()
        .map(UserOut::from)
        .collect();
    Ok(MeetingOut {
        url: format!("/m/{}", m.room),
        is_host: m.host_id == viewer,
        id: m.id,
        room: m.room,
        title: m.draft.title,
        description: m.draft.description,
        start_at: m.draft.start_at.map(rfc3339),
        time_zone: m.draft.time_zone,
        duration_minutes: m.draft.duration_min,
        recurrence: m.draft.recurrence.as_str().to_string(),
        recurrence_count: m.draft.recurrence_count,
        recurrence_until: m.draft.recurrence_until,
        skipped_occurrences: m
            .draft
            .skipped_occurrences
            .into_iter()
            .map(rfc3339)
            .collect(),
        require_sign_in: m.draft.require_sign_in,
        lobby: m.draft.lobby,
        locked: m.locked,
        cancelled: m.cancelled,
        host,
        invitees,
        created_at: rfc3339(m.created_at),
        live: None,
    })
}

/// What a new meeting is unless its host says otherwise: instant, an hour, open to guests.
pub fn instant_draft() -> MeetingDraft {
    MeetingDraft {
        title: "Meeting".into(),
        description: String::new(),
        start_at: None,
        time_zone: "UTC".into(),
        duration_min: 60,
        recurrence: Recurrence::None,
        recurrence_count: None,
        recurrence_until: None,
        skipped_occurrences: Vec::new(),
        require_sign_in: false,
        lobby: false,
    }
}

/// Validates the input over `base` (the stored draft when editing, defaults otherwise).
fn draft(input: &MeetingIn, base: Option<&MeetingDraft>) -> Result<MeetingDraft, ApiError> {
    let mut d = base.cloned().unwrap_or_else(instant_draft);
    if let Some(t) = &input.title {
        d.title = line("title", t, 1, 200)?;
    }
    if let Some(t) = &input.description {
        d.description = text("description", t, 0, 5000)?;
    }
    if let Some(s) = &input.start_at {
        d.start_at = Some(instant("start_at", s)?);
    }
    if let Some(tz) = &input.time_zone {
        chrono_tz::Tz::from_str(tz).map_err(|_| {
            ApiError::field(
                "time_zone",
                "time_zone must be an IANA name like Europe/Berlin",
            )
        })?;
        d.time_zone = tz.clone();
    }
    if let Some(n) = input.duration_minutes {
        if !(1..=1440).contains(&n) {
            return Err(ApiError::field(
                "duration_minutes",
                "duration_minutes must be 1 to 1440",
            ));
        }
        d.duration_min = n;
    }
    recurrence(input, &mut d)?;
    d.require_sign_in = input.require_sign_in.unwrap_or(d.require_sign_in);
    d.lobby = input.lobby.unwrap_or(d.lobby);
    Ok(d)
}

/// The recurrence, its end and its skipped occurrences, checked against the series they make.
/// Without `skipped_occurrences`, the stored ones that are no longer occurrences are dropped.
fn recurrence(input: &MeetingIn, d: &mut MeetingDraft) -> Result<(), ApiError> {
    if let Some(r) = &input.recurrence {
        d.recurrence = Recurrence::parse(r).ok_or_else(|| {
            ApiError::field(
                "recurrence",
                "recurrence must be none, daily, weekly or monthly",
            )
        })?;
    }
    series_end(input, d)?;
    if d.recurrence == Recurrence::None {
        if input
            .skipped_occurrences
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::field(
                "skipped_occurrences",
                "only a recurring meeting has occurrences to skip",
            ));
        }
        d.recurrence_count = None;
        d.recurrence_until = None;
        d.skipped_occurrences.clear();
        return Ok(());
    }
    let series = Series::of(d)
        .ok_or_else(|| ApiError::field("start_at", "a recurring meeting needs a start time"))?;
    if let End::Until(last) = series.end() {
        if last < series.first_date() {
            return Err(ApiError::field(
                "recurrence_until",
                "recurrence_until must not be before the first occurrence",
            ));
        }
    }
    match &input.skipped_occurrences {
        Some(list) => d.skipped_occurrences = skipped(list, &series)?,
        None => d.skipped_occurrences.retain(|at| series.is_occurrence(*at)),
    }
    Ok(())
}

/// `recurrence_count` or `recurrence_until`: giving one (not `null`) drops the other.
fn series_end(input: &MeetingIn, d: &mut MeetingDraft) -> Result<(), ApiError> {
    if let (Some(Some(_)), Some(Some(_))) = (input.recurrence_count, &input.recurrence_until) {
        return Err(ApiError::field(
            "recurrence_until",
            "give recurrence_count or recurrence_until, not both",
        ));
    }
    if let Some(count) = input.recurrence_count {
        if count.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(ApiError::field(
                "recurrence_count",
                "recurrence_count must be 1 to 1000",
            ));
        }
        d.recurrence_count = count;
        if count.is_some() {
            d.recurrence_until = None;
        }
    }
    if let Some(until) = &input.recurrence_until {
        d.recurrence_until = until.as_deref().map(end_date).transpose()?;
        if d.recurrence_until.is_some() {
            d.recurrence_count = None;
        }
    }
    Ok(())
}

fn end_date(s: &str) -> Result<String, ApiError> {
    match recurrence::parse_date(s) {
        Some(date) if (2000..=2199).contains(&date.year()) => Ok(s.to_string()),
        _ => Err(ApiError::field(
            "recurrence_until",
            "recurrence_until must be a date like 2027-03-31, in the years 2000 to 2199",
        )),
    }
}

/// The skipped occurrences as instants; each must be an occurrence of `series`.
fn skipped(list: &[String], series: &Series) -> Result<Vec<i64>, ApiError> {
    if list.len() > MAX_SKIPPED {
        return Err(ApiError::field(
            "skipped_occurrences",
            format!("at most {MAX_SKIPPED} skipped occurrences"),
        ));
    }
    list.iter()
        .map(|s| {
            let at = instant("skipped_occurrences", s)?;
            if series.is_occurrence(at) {
                Ok(at)
            } else {
                Err(ApiError::field(
                    "skipped_occurrences",
                    format!("{s} is not an occurrence of this meeting"),
                ))
            }
        })
        .collect()
}

/// An RFC 3339 time with an offset in the years 2000 to 2199, as Unix ms, to the second: answers
/// show no fractions, and the web app steps through occurrences in whole seconds.
fn instant(field: &str, s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::field(
            field,
            format!("{field} must be an RFC 3339 time with an offset, in the years 2000 to 2199"),
        )
    };
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
    if !(2000..=2199).contains(&t.year()) {
        return Err(bad());
    }
    Ok(t.timestamp() * 1000)
}

/// Checks an invitation list: known ids, no duplicates, each one a contact of the host.
async fn invitees(
    state: &AppState,
    host_id: &str,
    list: Option<&[String]>,
) -> Result<Vec<String>, ApiError> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_INVITEES {
        return Err(ApiError::field(
            "invitees",
            format!("at most {MAX_INVITEES} invitees"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let uid = id("invitees", raw)?;
        if out.contains(&uid) || uid == host_id {
            continue;
        }
        if !state.store.are_contacts(host_id, &uid).await? {
            return Err(ApiError::field(
                "invitees",
                format!("{uid} is not one of your contacts"),
            ));
        }
        out.push(uid);
    }
    Ok(out)
}
