//! [`SqlStore`]: the one [`Store`] implementation, over sqlx's `Any` driver, for SQLite
//! and PostgreSQL alike.
//!
//! This module owns the connection pool, the schema migrations and every SQL statement.
//! Migrations live in `migrations/sqlite` and `migrations/postgres`: their 0001 is the same
//! portable file (byte for byte, so databases made before the split keep their checksums);
//! later ones differ where the backends do, e.g. SQLite must rebuild a table to change a
//! CHECK. What keeps one set of statements valid on both backends:
//! - `$n` placeholders, which SQLite accepts as well as PostgreSQL;
//! - integers, flags (0/1) and Unix-ms times are BIGINT, everything else TEXT: the `Any`
//!   driver decodes few types, and `i64` and `String` are the ones both share;
//! - no boolean results: an existence check fetches an optional row instead;
//! - `ON CONFLICT DO NOTHING` for idempotent inserts, which both understand.
//!
//! Each transaction begins with a write, so that SQLite takes the write lock (waiting for
//! it under the busy timeout) rather than failing to upgrade a read lock.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row};

use crate::{
    Attendance, Conflict, ContactRequests, Meeting, MeetingDraft, Millis, NewUser, Page,
    PastMeeting, Recurrence, RequestOutcome, Result, Session, Store, StoreError, User, UserSummary,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Run on every new SQLite connection: wait for locks instead of failing at once, enforce
/// foreign keys, and let readers work alongside the writer.
const SQLITE_PRAGMAS: [&str; 3] = [
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
];

/// The name that stays in other hosts' attendance records of a deleted account.
const DELETED_ACCOUNT_NAME: &str = "Deleted account";

// Column lists, as macros so that `concat!` can build whole statements at compile time.
// The names match what the `*_from` row mappers read.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.display_name, u.password_hash, u.created_at"
    };
}
macro_rules! summary_columns {
    () => {
        "u.id, u.email, u.display_name"
    };
}
macro_rules! meeting_columns {
    () => {
        "m.id, m.room, m.host_id, m.title, m.description, m.start_at, m.time_zone, \
         m.duration_min, m.recurrence, m.recurrence_count, m.recurrence_until, \
         m.require_sign_in, m.lobby, m.locked, m.cancelled, m.created_at, m.updated_at"
    };
}
macro_rules! attendance_columns {
    () => {
        "a.id, a.meeting_id, a.user_id, a.name, a.joined_at, a.left_at"
    };
}

const MEETING_BY_ID: &str = concat!(
    "SELECT ",
    meeting_columns!(),
    " FROM meetings m WHERE m.id = $1"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::UnsupportedUrl(format!("{scheme}:…")))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The store over a pool of SQLite or PostgreSQL connections. Made by [`connect`].
#[derive(Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

/// Opens the database at `url` and brings its schema up to date.
///
/// `sqlite://PATH` or `sqlite:PATH` opens a SQLite file, creating it if missing unless
/// the URL sets a `mode`; `postgres://…` or `postgresql://…` a PostgreSQL database. Any
/// other scheme is [`StoreError::UnsupportedUrl`].
pub async fn connect(url: &str) -> Result<SqlStore> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let pool = match backend {
        Backend::Sqlite => {
            create_private(url)?;
            migrate_sqlite(&with_create_mode(url)).await?;
            AnyPoolOptions::new()
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&with_create_mode(url))
                .await?
        }
        Backend::Postgres => AnyPoolOptions::new().connect(url).await?,
    };
    if backend == Backend::Postgres {
        POSTGRES_MIGRATOR.run(&pool).await?;
    }
    Ok(SqlStore { pool, backend })
}

/// Brings a SQLite schema up to date over a connection of its own with foreign keys off, as
/// SQLite's procedure for rebuilding a table requires: dropping the old table would otherwise
/// delete every row that references it. sqlx runs each migration in a transaction, where the
/// pragma cannot change, so the connection is opened with it off; the store's own connections
/// never are.
async fn migrate_sqlite(url: &str) -> Result<()> {
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = OFF").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    let migrated = SQLITE_MIGRATOR.run(&pool).await;
    pool.close().await;
    Ok(migrated?)
}

/// Creates a missing SQLite file readable by its owner only (SQLite gives its journal files
/// the database's permissions). `:memory:` and URLs with a `mode` are left alone.
fn create_private(url: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(':') || params.split('&').any(|p| p.starts_with("mode="))
    {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(sqlx::Error::Io(e).into()),
    }
}

/// Adds `mode=rwc` (create the file if missing) to a SQLite URL that names no mode.
fn with_create_mode(url: &str) -> String {
    match url.split_once('?') {
        None => format!("{url}?mode=rwc"),
        Some((_, params)) if params.split('&').any(|p| p.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
    }
}

impl SqlStore {
    /// Closes every connection; for a clean shutdown. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn exists<'q>(&self, query: Query<'q, Any, AnyArguments<'q>>) -> Result<bool> {
        Ok(query.fetch_optional(&self.pool).await?.is_some())
    }

    async fn summaries<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Vec<UserSummary>> {
        Ok(query.try_map(summary_from).fetch_all(&self.pool).await?)
    }

    /// Every attendance row of the given meetings, oldest first, by meeting id.
    async fn attendance_of(
        &self,
        meetings: &[Meeting],
    ) -> Result<HashMap<String, Vec<Attendance>>> {
        let sql = format!(
            concat!(
                "SELECT ",
                attendance_columns!(),
                " FROM attendance a WHERE a.meeting_id IN ({}) ORDER BY a.joined_at, a.id"
            ),
            placeholders(meetings.len())
        );
        let rows = meetings
            .iter()
            .fold(sqlx::query(&sql), |query, meeting| query.bind(&meeting.id))
            .try_map(attendance_from)
            .fetch_all(&self.pool)
            .await?;
        let mut by_meeting: HashMap<String, Vec<Attendance>> = HashMap::new();
        for row in rows {
            by_meeting
                .entry(row.meeting_id.clone())
                .or_default()
                .push(row);
        }
        Ok(by_meeting)
    }

    /// The meetings of `query`, each with its skipped occurrences.
    async fn meetings<'q>(&self, query: Query<'q, Any, AnyArguments<'q>>) -> Result<Vec<Meeting>> {
        let mut meetings = query.try_map(meeting_from).fetch_all(&self.pool).await?;
        self.attach_skips(&mut meetings).await?;
        Ok(meetings)
    }

    /// The meeting of `query`, if any, with its skipped occurrences.
    async fn one_meeting<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Option<Meeting>> {
        Ok(self.meetings(query).await?.pop())
    }

    /// Fills in each meeting's skipped occurrences, in order, with one query for all of them.
    async fn attach_skips(&self, meetings: &mut [Meeting]) -> Result<()> {
        if meetings.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT meeting_id, start_at FROM skipped_occurrences WHERE meeting_id IN ({}) \
             ORDER BY start_at",
            placeholders(meetings.len())
        );
        let rows: Vec<(String, Millis)> = meetings
            .iter()
            .fold(sqlx::query(&sql), |query, meeting| query.bind(&meeting.id))
            .try_map(|row: AnyRow| Ok((row.try_get("meeting_id")?, row.try_get("start_at")?)))
            .fetch_all(&self.pool)
            .await?;
        for meeting in meetings.iter_mut() {
            meeting.draft.skipped_occurrences = rows
                .iter()
                .filter(|(id, _)| *id == meeting.id)
                .map(|(_, at)| *at)
                .collect();
        }
        Ok(())
    }
}

// ---- row mapping

fn user_from(row: AnyRow) -> sqlx::Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

fn summary_from(row: AnyRow) -> sqlx::Result<UserSummary> {
    Ok(UserSummary {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
    })
}

fn session_from(row: AnyRow) -> sqlx::Result<Session> {
    Ok(Session {
        token_hash: row.try_get("token_hash")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn meeting_from(row: AnyRow) -> sqlx::Result<Meeting> {
    let recurrence: String = row.try_get("recurrence")?;
    let recurrence = Recurrence::parse(&recurrence).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "recurrence".into(),
        source: format!("unknown recurrence {recurrence:?}").into(),
    })?;
    Ok(Meeting {
        id: row.try_get("id")?,
        room: row.try_get("room")?,
        host_id: row.try_get("host_id")?,
        draft: MeetingDraft {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            start_at: row.try_get("start_at")?,
            time_zone: row.try_get("time_zone")?,
            duration_min: row.try_get("duration_min")?,
            recurrence,
            recurrence_count: row.try_get("recurrence_count")?,
            recurrence_until: row.try_get("recurrence_until")?,
            skipped_occurrences: Vec::new(),
            require_sign_in: flag(&row, "require_sign_in")?,
            lobby: flag(&row, "lobby")?,
        },
        locked: flag(&row, "locked")?,
        cancelled: flag(&row, "cancelled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn attendance_from(row: AnyRow) -> sqlx::Result<Attendance> {
    Ok(Attendance {
        id: row.try_get("id")?,
        meeting_id: row.try_get("meeting_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        joined_at: row.try_get("joined_at")?,
        left_at: row.try_get("left_at")?,
    })
}

/// A BIGINT 0/1 column as a bool.
fn flag(row: &AnyRow, column: &str) -> sqlx::Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

// ---- helpers

/// `$1, $2, …, $n`, for an `IN (…)` list.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A random 128-bit id as 32 lower-case hex digits.
fn new_id() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `LIKE … ESCAPE '\'` pattern matching any text that contains `text`, lower-cased,
/// with `%`, `_` and `\` in it taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `NotFound` when an update or delete matched no row.
fn matched(result: AnyQueryResult) -> Result<()> {
    if result.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// For a failed insert: a foreign-key violation means the row named a user or meeting
/// that does not exist.
fn missing_reference(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => e.into(),
    }
}

/// For a failed insert: a unique violation is `Conflict(what)`; otherwise as
/// [`missing_reference`].
fn taken(what: Conflict) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => missing_reference(e),
    }
}

/// Binds `draft`'s columns as `$1`–`$10`, in the order the meeting statements name them
/// (its skipped occurrences live in their own table: [`replace_skips`]).
fn bind_draft<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    draft: &'q MeetingDraft,
) -> Query<'q, Any, AnyArguments<'q>> {
    query
        .bind(&draft.title)
        .bind(&draft.description)
        .bind(draft.start_at)
        .bind(&draft.time_zone)
        .bind(draft.duration_min)
        .bind(draft.recurrence.as_str())
        .bind(draft.recurrence_count)
        .bind(i64::from(draft.require_sign_in))
        .bind(i64::from(draft.lobby))
        .bind(draft.recurrence_until.as_deref())
}

/// Sorted, without duplicates: how the store keeps skipped occurrences.
fn normalized(mut skips: Vec<Millis>) -> Vec<Millis> {
    skips.sort_unstable();
    skips.dedup();
    skips
}

/// Makes `skips` the meeting's skipped occurrences.
async fn replace_skips(conn: &mut AnyConnection, meeting_id: &str, skips: &[Millis]) -> Result<()> {
    sqlx::query("DELETE FROM skipped_occurrences WHERE meeting_id = $1")
        .bind(meeting_id)
        .execute(&mut *conn)
        .await?;
    for start_at in skips {
        sqlx::query("INSERT INTO skipped_occurrences (meeting_id, start_at) VALUES ($1, $2)")
            .bind(meeting_id)
            .bind(start_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_invitations(
    conn: &mut AnyConnection,
    meeting_id: &str,
    invitees: &[String],
) -> Result<()> {
    for user_id in invitees {
        sqlx::query(
            "INSERT INTO invitations (meeting_id, user_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(meeting_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(missing_reference)?;
    }
    Ok(())
}

/// Makes `a` and `b` contacts: one row from each side.
async fn insert_contact_pair(
    conn: &mut AnyConnection,
    a: &str,
    b: &str,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO contacts (user_id, contact_id, created_at) VALUES ($1, $2, $3), ($2, $1, $3)",
    )
    .bind(a)
    .bind(b)
    .bind(now)
    .execute(conn)
    .await
    .map_err(taken(Conflict::AlreadyContacts))?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    // ---- users

    async fn create_user(&self, new: NewUser, now: Millis) -> Result<User> {
        let user = User {
            id: new_id(),
            email: new.email.to_lowercase(),
            display_name: new.display_name,
            password_hash: new.password_hash,
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(taken(Conflict::EmailTaken))?;
        Ok(user)
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        Ok(sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.id = $1"
        ))
        .bind(id)
        .try_map(user_from)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.email = $1"
        ))
        .bind(email.to_lowercase())
        .try_map(user_from)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_password(&self, user_id: &str, hash: &str, keep_session: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        matched(
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id)
                .execute(&mut *tx)
                .await?,
        )?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE attendance SET user_id = NULL, name = $1 WHERE user_id = $2")
            .bind(DELETED_ACCOUNT_NAME)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // The schema's ON DELETE CASCADE takes the rest.
        matched(
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?,
        )?;
        tx.commit().await?;
        Ok(())
    }

    async fn search_users(
        &self,
        viewer: &str,
        query: &str,
        page: Page,
    ) -> Result<Vec<UserSummary>> {
        // Emails are stored lower-cased already. Anyone is found by their exact address; by
        // part of a name or address, only people the viewer already knows: contacts, contact
        // requests either way, and hosts and invitees of a meeting the viewer is part of.
        self.summaries(
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                r" FROM users u
                WHERE u.id <> $1
                  AND NOT EXISTS (
                      SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = $1)
                  AND (u.email = $5
                    OR ((LOWER(u.display_name) LIKE $2 ESCAPE '\' OR u.email LIKE $2 ESCAPE '\')
                        AND (EXISTS (SELECT 1 FROM contacts c
                                     WHERE c.user_id = $1 AND c.contact_id = u.id)
                          OR EXISTS (SELECT 1 FROM contact_requests r
                                     WHERE (r.from_id = $1 AND r.to_id = u.id)
                                        OR (r.from_id = u.id AND r.to_id = $1))
                          OR EXISTS (SELECT 1 FROM meetings m
                                     WHERE (m.host_id = $1 OR EXISTS (SELECT 1 FROM invitations i
                                              WHERE i.meeting_id = m.id AND i.user_id = $1))
                                       AND (m.host_id = u.id OR EXISTS (SELECT 1 FROM invitations j
                                              WHERE j.meeting_id = m.id AND j.user_id = u.id))))))
                ORDER BY LOWER(u.display_name), u.id
                LIMIT $3 OFFSET $4"
            ))
            .bind(viewer)
            .bind(contains_pattern(query))
            .bind(page.limit)
            .bind(page.offset)
            .bind(query.trim().to_lowercase()),
        )
        .await
    }

    // ---- sessions

    async fn create_session(&self, session: Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session.token_hash)
        .bind(session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(taken(Conflict::SessionExists))?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<Session>> {
        Ok(sqlx::query(
            "SELECT token_hash, user_id, created_at, expires_at FROM sessions \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .try_map(session_from)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: Millis) -> Result<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    // ---- meetings

    async fn create_meeting(
        &self,
        host_id: &str,
        room: &str,
        mut draft: MeetingDraft,
        invitees: &[String],
        now: Millis,
    ) -> Result<Meeting> {
        draft.skipped_occurrences = normalized(draft.skipped_occurrences);
        let meeting = Meeting {
            id: new_id(),
            room: room.to_owned(),
            host_id: host_id.to_owned(),
            draft,
            locked: false,
            cancelled: false,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        bind_draft(
            sqlx::query(
                "INSERT INTO meetings (title, description, start_at, time_zone, duration_min, \
                 recurrence, recurrence_count, require_sign_in, lobby, recurrence_until, \
                 id, room, host_id, locked, cancelled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, $14, $14)",
            ),
            &meeting.draft,
        )
        .bind(&meeting.id)
        .bind(&meeting.room)
        .bind(&meeting.host_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(taken(Conflict::RoomTaken))?;
        replace_skips(&mut tx, &meeting.id, &meeting.draft.skipped_occurrences).await?;
        insert_invitations(&mut tx, &meeting.id, invitees).await?;
        tx.commit().await?;
        Ok(meeting)
    }

    async fn meeting(&self, id: &str) -> Result<Option<Meeting>> {
        self.one_meeting(sqlx::query(MEETING_BY_ID).bind(id)).await
    }

    async fn meeting_by_room(&self, room: &str) -> Result<Option<Meeting>> {
        self.one_meeting(
            sqlx::query(concat!(
                "SELECT ",
                meeting_columns!(),
                " FROM meetings m WHERE m.room = $1"
            ))
            .bind(room),
        )
        .await
    }

    async fn update_meeting(
        &self,
        id: &str,
        mut draft: MeetingDraft,
        invitees: Option<&[String]>,
        now: Millis,
    ) -> Result<Meeting> {
        draft.skipped_occurrences = normalized(draft.skipped_occurrences);
        let mut tx = self.pool.begin().await?;
        matched(
            bind_draft(
                sqlx::query(
                    "UPDATE meetings SET title = $1, description = $2, start_at = $3, \
                     time_zone = $4, duration_min = $5, recurrence = $6, recurrence_count = $7, \
                     require_sign_in = $8, lobby = $9, recurrence_until = $10, updated_at = $11 \
                     WHERE id = $12",
                ),
                &draft,
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?,
        )?;
        replace_skips(&mut tx, id, &draft.skipped_occurrences).await?;
        if let Some(invitees) = invitees {
            sqlx::query("DELETE FROM invitations WHERE meeting_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_invitations(&mut tx, id, invitees).await?;
        }
        let mut meeting = sqlx::query(MEETING_BY_ID)
            .bind(id)
            .try_map(meeting_from)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        meeting.draft.skipped_occurrences = draft.skipped_occurrences;
        Ok(meeting)
    }

    async fn set_locked(&self, id: &str, locked: bool, now: Millis) -> Result<()> {
        matched(
            sqlx::query("UPDATE meetings SET locked = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(locked))
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?,
        )
    }

    async fn cancel_meeting(&self, id: &str, now: Millis) -> Result<()> {
        matched(
            sqlx::query("UPDATE meetings SET cancelled = 1, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?,
        )
    }

    async fn meetings_for(&self, user_id: &str, page: Page) -> Result<Vec<Meeting>> {
        self.meetings(
            sqlx::query(concat!(
                "SELECT ",
                meeting_columns!(),
                " FROM meetings m
            WHERE m.host_id = $1
               OR EXISTS (SELECT 1 FROM invitations i WHERE i.meeting_id = m.id AND i.user_id = $1)
            ORDER BY COALESCE(m.start_at, m.created_at) DESC, m.id
            LIMIT $2 OFFSET $3"
            ))
            .bind(user_id)
            .bind(page.limit)
            .bind(page.offset),
        )
        .await
    }

    async fn invitees(&self, meeting_id: &str) -> Result<Vec<UserSummary>> {
        self.summaries(
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM users u JOIN invitations i ON i.user_id = u.id
                WHERE i.meeting_id = $1
                ORDER BY LOWER(u.display_name), u.id"
            ))
            .bind(meeting_id),
        )
        .await
    }

    async fn is_invited(&self, meeting_id: &str, user_id: &str) -> Result<bool> {
        self.exists(
            sqlx::query("SELECT 1 FROM invitations WHERE meeting_id = $1 AND user_id = $2")
                .bind(meeting_id)
                .bind(user_id),
        )
        .await
    }

    // ---- attendance

    async fn record_join(
        &self,
        meeting_id: &str,
        user_id: Option<&str>,
        name: &str,
        at: Millis,
    ) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO attendance (id, meeting_id, user_id, name, joined_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(meeting_id)
        .bind(user_id)
        .bind(name)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(missing_reference)?;
        Ok(id)
    }

    async fn record_leave(&self, attendance_id: &str, at: Millis) -> Result<()> {
        // The first leave counts; a repeated one matches the row but changes nothing.
        matched(
            sqlx::query("UPDATE attendance SET left_at = COALESCE(left_at, $1) WHERE id = $2")
                .bind(at)
                .bind(attendance_id)
                .execute(&self.pool)
                .await?,
        )
    }

    async fn close_open_attendance(&self, at: Millis) -> Result<u64> {
        let result = sqlx::query("UPDATE attendance SET left_at = $1 WHERE left_at IS NULL")
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn history(&self, user_id: &str, page: Page) -> Result<Vec<PastMeeting>> {
        let meetings = self
            .meetings(
                sqlx::query(concat!(
                    "SELECT ",
                    meeting_columns!(),
                    " FROM meetings m
            WHERE EXISTS (SELECT 1 FROM attendance a WHERE a.meeting_id = m.id)
              AND (m.host_id = $1
                   OR EXISTS (SELECT 1 FROM invitations i
                              WHERE i.meeting_id = m.id AND i.user_id = $1)
                   OR EXISTS (SELECT 1 FROM attendance a
                              WHERE a.meeting_id = m.id AND a.user_id = $1))
            ORDER BY (SELECT MAX(a.joined_at) FROM attendance a WHERE a.meeting_id = m.id) DESC,
                     m.id
            LIMIT $2 OFFSET $3"
                ))
                .bind(user_id)
                .bind(page.limit)
                .bind(page.offset),
            )
            .await?;
        if meetings.is_empty() {
            return Ok(Vec::new());
        }
        let mut attendance = self.attendance_of(&meetings).await?;
        Ok(meetings
            .into_iter()
            .map(|meeting| PastMeeting {
                attendance: attendance.remove(&meeting.id).unwrap_or_default(),
                meeting,
            })
            .collect())
    }

    // ---- contacts

    async fn request_contact(&self, from: &str, to: &str, now: Millis) -> Result<RequestOutcome> {
        if from == to {
            return Err(StoreError::Conflict(Conflict::SelfRequest));
        }
        if !self
            .exists(sqlx::query("SELECT 1 FROM users WHERE id = $1").bind(to))
            .await?
        {
            return Err(StoreError::NotFound);
        }
        if self.is_blocked_between(from, to).await? {
            return Err(StoreError::Conflict(Conflict::Blocked));
        }
        if self.are_contacts(from, to).await? {
            return Err(StoreError::Conflict(Conflict::AlreadyContacts));
        }
        let mut tx = self.pool.begin().await?;
        let reverse = sqlx::query("DELETE FROM contact_requests WHERE from_id = $1 AND to_id = $2")
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        let outcome = if reverse.rows_affected() > 0 {
            insert_contact_pair(&mut tx, from, to, now).await?;
            RequestOutcome::Accepted
        } else {
            sqlx::query(
                "INSERT INTO contact_requests (from_id, to_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(taken(Conflict::AlreadyRequested))?;
            RequestOutcome::Pending
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn contact_requests(&self, user_id: &str) -> Result<ContactRequests> {
        let incoming = self
            .summaries(
                sqlx::query(concat!(
                    "SELECT ",
                    summary_columns!(),
                    " FROM users u JOIN contact_requests r ON r.from_id = u.id
                    WHERE r.to_id = $1 ORDER BY r.created_at DESC, u.id"
                ))
                .bind(user_id),
            )
            .await?;
        let outgoing = self
            .summaries(
                sqlx::query(concat!(
                    "SELECT ",
                    summary_columns!(),
                    " FROM users u JOIN contact_requests r ON r.to_id = u.id
                    WHERE r.from_id = $1 ORDER BY r.created_at DESC, u.id"
                ))
                .bind(user_id),
            )
            .await?;
        Ok(ContactRequests { incoming, outgoing })
    }

    async fn accept_contact(&self, to: &str, from: &str, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        matched(
            sqlx::query("DELETE FROM contact_requests WHERE from_id = $1 AND to_id = $2")
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?,
        )?;
        insert_contact_pair(&mut tx, to, from, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_contact_request(&self, from: &str, to: &str) -> Result<()> {
        matched(
            sqlx::query("DELETE FROM contact_requests WHERE from_id = $1 AND to_id = $2")
                .bind(from)
                .bind(to)
                .execute(&self.pool)
                .await?,
        )
    }

    async fn contacts(&self, user_id: &str, page: Page) -> Result<Vec<UserSummary>> {
        self.summaries(
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM users u JOIN contacts c ON c.contact_id = u.id
                WHERE c.user_id = $1
                ORDER BY LOWER(u.display_name), u.id
                LIMIT $2 OFFSET $3"
            ))
            .bind(user_id)
            .bind(page.limit)
            .bind(page.offset),
        )
        .await
    }

    async fn are_contacts(&self, a: &str, b: &str) -> Result<bool> {
        self.exists(
            sqlx::query("SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2")
                .bind(a)
                .bind(b),
        )
        .await
    }

    async fn remove_contact(&self, a: &str, b: &str) -> Result<()> {
        // One statement removes both rows, so it is atomic without a transaction.
        matched(
            sqlx::query(
                "DELETE FROM contacts WHERE (user_id = $1 AND contact_id = $2) \
                 OR (user_id = $2 AND contact_id = $1)",
            )
            .bind(a)
            .bind(b)
            .execute(&self.pool)
            .await?,
        )
    }

    async fn block(&self, user_id: &str, other: &str, now: Millis) -> Result<()> {
        if user_id == other {
            return Err(StoreError::Conflict(Conflict::SelfRequest));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(other)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(missing_reference)?;
        for statement in [
            "DELETE FROM contacts WHERE (user_id = $1 AND contact_id = $2) \
             OR (user_id = $2 AND contact_id = $1)",
            "DELETE FROM contact_requests WHERE (from_id = $1 AND to_id = $2) \
             OR (from_id = $2 AND to_id = $1)",
        ] {
            sqlx::query(statement)
                .bind(user_id)
                .bind(other)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unblock(&self, user_id: &str, other: &str) -> Result<()> {
        sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2")
            .bind(user_id)
            .bind(other)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn blocked(&self, user_id: &str) -> Result<Vec<UserSummary>> {
        self.summaries(
            sqlx::query(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM users u JOIN blocks b ON b.blocked_id = u.id
                WHERE b.user_id = $1
                ORDER BY LOWER(u.display_name), u.id"
            ))
            .bind(user_id),
        )
        .await
    }

    async fn is_blocked_between(&self, a: &str, b: &str) -> Result<bool> {
        self.exists(
            sqlx::query(
                "SELECT 1 FROM blocks WHERE (user_id = $1 AND blocked_id = $2) \
                 OR (user_id = $2 AND blocked_id = $1)",
            )
            .bind(a)
            .bind(b),
        )
        .await
    }
}
