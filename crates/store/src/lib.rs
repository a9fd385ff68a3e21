//! Stoa's database: users and their sessions, meetings and invitations, attendance
//! history, contacts and blocks.
//!
//! [`Store`] is the one interface the server uses. [`SqlStore`] implements it once over
//! sqlx's `Any` driver for both backends: SQLite (the default, a file in the data dir)
//! and PostgreSQL. Versioned migrations run on [`connect`]; every operation that changes
//! several rows runs in one transaction. Times are Unix milliseconds; ids are random
//! URL-safe strings made here.

mod sql;

pub use sql::{connect, SqlStore};

use async_trait::async_trait;

/// Unix time in milliseconds.
pub type Millis = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or state rule: e.g. the email is taken, the request already exists.
    #[error("conflict: {}", .0.as_str())]
    Conflict(Conflict),
    /// The database URL names no database the store can open.
    #[error("unsupported database URL {0:?}: expected sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The database failed or refused: connection, I/O, a rule not mapped to the above.
    #[error("database error: {0}")]
    Backend(BackendError),
    /// Bringing the schema up to date failed at start-up.
    #[error("migration failed: {0}")]
    Migrate(BackendError),
}

/// Which rule a refused write would have broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    EmailTaken,
    SessionExists,
    RoomTaken,
    /// A contact request to, or a block of, oneself.
    SelfRequest,
    /// Either side blocked the other.
    Blocked,
    AlreadyContacts,
    AlreadyRequested,
}

impl Conflict {
    /// The rule's name, as API errors carry it (`email_taken`, `self`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Conflict::EmailTaken => "email_taken",
            Conflict::SessionExists => "session_exists",
            Conflict::RoomTaken => "room_taken",
            Conflict::SelfRequest => "self",
            Conflict::Blocked => "blocked",
            Conflict::AlreadyContacts => "already_contacts",
            Conflict::AlreadyRequested => "already_requested",
        }
    }
}

/// A failure of the database underneath, opaque so that users of the store do not depend on
/// its driver; its message and source chain are kept for the logs.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(BackendError(Box::new(e)))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(BackendError(Box::new(e)))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One page of a list: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// Stored lower-cased; unique.
    pub email: String,
    pub display_name: String,
    /// An argon2 PHC string; the store never sees a password.
    pub password_hash: String,
    pub created_at: Millis,
}

/// What other users may see of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
}

/// A log-in session. Only a hash of the bearer secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    None,
    Daily,
    Weekly,
    /// The same day of the month; months without that day (the 31st, February 30) have no
    /// occurrence, as with RFC 5545's `FREQ=MONTHLY`.
    Monthly,
}

impl Recurrence {
    pub fn as_str(self) -> &'static str {
        match self {
            Recurrence::None => "none",
            Recurrence::Daily => "daily",
            Recurrence::Weekly => "weekly",
            Recurrence::Monthly => "monthly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Recurrence::None),
            "daily" => Some(Recurrence::Daily),
            "weekly" => Some(Recurrence::Weekly),
            "monthly" => Some(Recurrence::Monthly),
            _ => None,
        }
    }
}

/// The fields of a meeting its host chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingDraft {
    pub title: String,
    pub description: String,
    /// `None` for an instant meeting.
    pub start_at: Option<Millis>,
    /// IANA name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub duration_min: i64,
    pub recurrence: Recurrence,
    /// Number of occurrences for a recurring meeting (skipped ones count); `None` = no end
    /// by count.
    pub recurrence_count: Option<i64>,
    /// The last day of a recurring meeting, `YYYY-MM-DD` in `time_zone`, inclusive; `None` =
    /// no end date.
    pub recurrence_until: Option<String>,
    /// Start instants of occurrences that do not take place. The store keeps them sorted and
    /// without duplicates, in a table of their own.
    pub skipped_occurrences: Vec<Millis>,
    /// Guests without an account may not join.
    pub require_sign_in: bool,
    /// Joiners wait until the host admits them.
    pub lobby: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: String,
    /// The room name of the meeting link (`/m/{room}`); unique.
    pub room: String,
    pub host_id: String,
    pub draft: MeetingDraft,
    /// Nobody new may join.
    pub locked: bool,
    pub cancelled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One stay of one person in a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendance {
    pub id: String,
    pub meeting_id: String,
    /// `None` for a guest.
    pub user_id: Option<String>,
    pub name: String,
    pub joined_at: Millis,
    /// `None` while still in the meeting.
    pub left_at: Option<Millis>,
}

/// A meeting a user attended, with everyone's attendance in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastMeeting {
    pub meeting: Meeting,
    /// All attendance rows of the meeting, oldest first.
    pub attendance: Vec<Attendance>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequests {
    pub incoming: Vec<UserSummary>,
    pub outgoing: Vec<UserSummary>,
}

/// What happened to a contact request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Waiting for the other user.
    Pending,
    /// The other user had already asked: now both are contacts.
    Accepted,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    // ---- users
    /// `Conflict(EmailTaken)` when the (lower-cased) email exists.
    async fn create_user(&self, new: NewUser, now: Millis) -> Result<User>;
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// Case-insensitive.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Changes the hash and ends every session of the user except `keep_session`, in one
    /// transaction. `NotFound` if there is no such user.
    async fn set_password(&self, user_id: &str, hash: &str, keep_session: &str) -> Result<()>;
    /// Deletes the user and what is theirs, in one transaction: sessions, the meetings they
    /// host (with those meetings' invitations and attendance), their invitations, contacts,
    /// contact requests and blocks. Their attendance of other people's meetings stays for
    /// those hosts' history, without their account or name. `NotFound` if there is no such user.
    async fn delete_user(&self, user_id: &str) -> Result<()>;
    /// Users whose email is exactly `query`, and users `viewer` already knows (contacts,
    /// contact requests, a shared meeting) whose display name or email contains it (both
    /// case-insensitive); never `viewer` nor anyone who blocked `viewer`; by display name.
    async fn search_users(&self, viewer: &str, query: &str, page: Page)
        -> Result<Vec<UserSummary>>;

    // ---- sessions
    /// `NotFound` if the user does not exist.
    async fn create_session(&self, session: Session) -> Result<()>;
    /// The session if it exists and `expires_at > now`.
    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    /// Removes expired sessions; returns how many.
    async fn purge_sessions(&self, now: Millis) -> Result<u64>;

    // ---- meetings
    /// Inserts the meeting, its skipped occurrences and its invitations in one transaction.
    /// `Conflict(RoomTaken)` when the room name exists; `NotFound` if the host or an
    /// invitee does not exist. Nothing is written when it fails.
    async fn create_meeting(
        &self,
        host_id: &str,
        room: &str,
        draft: MeetingDraft,
        invitees: &[String],
        now: Millis,
    ) -> Result<Meeting>;
    async fn meeting(&self, id: &str) -> Result<Option<Meeting>>;
    async fn meeting_by_room(&self, room: &str) -> Result<Option<Meeting>>;
    /// Replaces the draft (skipped occurrences included) and, when `invitees` is `Some`, the
    /// invitation list, in one transaction. `NotFound` if there is no such meeting or an invitee does not exist.
    async fn update_meeting(
        &self,
        id: &str,
        draft: MeetingDraft,
        invitees: Option<&[String]>,
        now: Millis,
    ) -> Result<Meeting>;
    /// `NotFound` if there is no such meeting.
    async fn set_locked(&self, id: &str, locked: bool, now: Millis) -> Result<()>;
    /// `NotFound` if there is no such meeting.
    async fn cancel_meeting(&self, id: &str, now: Millis) -> Result<()>;
    /// Meetings the user hosts or is invited to, cancelled ones included, ordered by
    /// start time (instant meetings by creation time), newest first.
    async fn meetings_for(&self, user_id: &str, page: Page) -> Result<Vec<Meeting>>;
    /// Ordered by display name.
    async fn invitees(&self, meeting_id: &str) -> Result<Vec<UserSummary>>;
    async fn is_invited(&self, meeting_id: &str, user_id: &str) -> Result<bool>;

    // ---- attendance
    /// Returns the new attendance id. `NotFound` if the meeting or the user does not exist.
    async fn record_join(
        &self,
        meeting_id: &str,
        user_id: Option<&str>,
        name: &str,
        at: Millis,
    ) -> Result<String>;
    /// `NotFound` if there is no such row. Leaving twice keeps the first time.
    async fn record_leave(&self, attendance_id: &str, at: Millis) -> Result<()>;
    /// Closes rows left open by a server that stopped; returns how many.
    async fn close_open_attendance(&self, at: Millis) -> Result<u64>;
    /// Meetings the user attended, hosted or was invited to that have attendance rows,
    /// most recent first, with every attendance row of each.
    async fn history(&self, user_id: &str, page: Page) -> Result<Vec<PastMeeting>>;

    // ---- contacts
    /// `Conflict(SelfRequest)`, `Conflict(Blocked)` (either side blocked the other),
    /// `Conflict(AlreadyContacts)`, `Conflict(AlreadyRequested)`; `NotFound` if
    /// `to` does not exist. If `to` had already asked `from`, both become contacts.
    async fn request_contact(&self, from: &str, to: &str, now: Millis) -> Result<RequestOutcome>;
    /// Requests to and from the user, newest first.
    async fn contact_requests(&self, user_id: &str) -> Result<ContactRequests>;
    /// Makes both contacts and deletes the request, in one transaction. `NotFound` if
    /// `from` has not asked `to`.
    async fn accept_contact(&self, to: &str, from: &str, now: Millis) -> Result<()>;
    /// Deletes the request `from` → `to`; `NotFound` if there is none.
    async fn delete_contact_request(&self, from: &str, to: &str) -> Result<()>;
    /// Ordered by display name.
    async fn contacts(&self, user_id: &str, page: Page) -> Result<Vec<UserSummary>>;
    async fn are_contacts(&self, a: &str, b: &str) -> Result<bool>;
    /// `NotFound` if they are not contacts.
    async fn remove_contact(&self, a: &str, b: &str) -> Result<()>;
    /// Blocks `other`: ends the contact and any requests between them, in one transaction.
    /// Blocking again changes nothing. `Conflict(SelfRequest)`; `NotFound` if `other` does not
    /// exist.
    async fn block(&self, user_id: &str, other: &str, now: Millis) -> Result<()>;
    /// Nothing happens if `other` was not blocked.
    async fn unblock(&self, user_id: &str, other: &str) -> Result<()>;
    /// The users `user_id` blocked, ordered by display name.
    async fn blocked(&self, user_id: &str) -> Result<Vec<UserSummary>>;
    /// Whether either user blocked the other.
    async fn is_blocked_between(&self, a: &str, b: &str) -> Result<bool>;
}
