//! Databases made before a schema change keep their data: a database at migration 0001 (as
//! every server before monthly recurrence left it), with users, a meeting, its invitation and
//! attendance, is opened by the current store on SQLite and on PostgreSQL, which brings it up
//! to date; everything is still there, and the foreign keys still hold.
//!
//! The PostgreSQL test needs a server, as in `story.rs`: `STOA_TEST_POSTGRES_URL`, by
//! default `postgres://postgres@127.0.0.1:5432/postgres`.

use std::borrow::Cow;
use std::path::PathBuf;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::{AnyPool, Row};
use stoa_store::{connect, MeetingDraft, Page, Recurrence, Store, StoreError};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// SHA-384 of `0001_initial.sql` as servers before the split into per-backend directories
/// recorded it in `_sqlx_migrations`; sqlx refuses to start on a database whose applied
/// migration no longer matches, so this file must never change.
const CHECKSUM_0001: &str = "48076fe2c51224a800d3e0efaf6f57e84a48b4fb4a3b4ed664416a1a03fcbbe3\
                             34098958847f12454e6aabc50b04c8e6";

const ALL: Page = Page {
    limit: 100,
    offset: 0,
};

#[test]
fn both_backends_keep_the_first_migration_as_it_was() {
    for migrator in [
        sqlx::migrate!("./migrations/sqlite"),
        sqlx::migrate!("./migrations/postgres"),
    ] {
        let first = migrator.iter().next().expect("a first migration");
        assert_eq!(first.version, 1);
        assert_eq!(hex(&first.checksum), CHECKSUM_0001);
    }
}

#[tokio::test]
async fn a_sqlite_database_at_0001_migrates_with_its_data() {
    sqlx::any::install_default_drivers();
    let dir = TempDir::new();
    let url = format!("sqlite://{}?mode=rwc", dir.path.join("stoa.db").display());
    create_at_0001(&url, sqlx::migrate!("./migrations/sqlite")).await;
    check_migrated(&url).await;
    let pool = AnyPool::connect(&url).await.unwrap();
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(broken.is_empty(), "no row lost what it refers to");
    pool.close().await;
}

#[tokio::test]
async fn a_postgres_database_at_0001_migrates_with_its_data() {
    sqlx::any::install_default_drivers();
    let server =
        std::env::var("STOA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let url = with_database(&server, &format!("stoa_migration_{}", random_hex()));
    sqlx::Any::create_database(&url)
        .await
        .expect("PostgreSQL is needed for this test (see the module comment)");
    let run = tokio::spawn({
        let url = url.clone();
        async move {
            create_at_0001(&url, sqlx::migrate!("./migrations/postgres")).await;
            check_migrated(&url).await;
        }
    })
    .await;
    sqlx::Any::force_drop_database(&url)
        .await
        .expect("drop the test database");
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Applies only migration 0001 of `migrator`, with sqlx's bookkeeping, as an older server
/// did, and writes rows into every table a meeting has in that schema.
async fn create_at_0001(url: &str, mut migrator: Migrator) {
    migrator.migrations = Cow::Owned(migrator.migrations[..1].to_vec());
    let pool = AnyPool::connect(url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    for statement in [
        "INSERT INTO users (id, email, display_name, password_hash, created_at) VALUES \
         ('ann', 'ann@old.test', 'Ann', 'hash', 1), ('bob', 'bob@old.test', 'Bob', 'hash', 1)",
        "INSERT INTO meetings (id, room, host_id, title, description, start_at, time_zone, \
         duration_min, recurrence, recurrence_count, require_sign_in, lobby, locked, cancelled, \
         created_at, updated_at) VALUES ('m1', 'old-room', 'ann', 'Old weekly', 'kept', \
         1796115600000, 'Europe/Berlin', 30, 'weekly', 10, 1, 1, 1, 0, 2, 3)",
        "INSERT INTO invitations (meeting_id, user_id) VALUES ('m1', 'bob')",
        "INSERT INTO attendance (id, meeting_id, user_id, name, joined_at, left_at) VALUES \
         ('a1', 'm1', 'bob', 'Bob', 10, 20), ('a2', 'm1', NULL, 'Guest', 30, NULL)",
        "INSERT INTO contacts (user_id, contact_id, created_at) VALUES \
         ('ann', 'bob', 4), ('bob', 'ann', 4)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// Opens the database with the current store (which migrates it) and checks the rows of
/// [`create_at_0001`], the new columns and table, and that deletes still cascade.
async fn check_migrated(url: &str) {
    let store = connect(url)
        .await
        .expect("the store migrates the old database");
    let meeting = store.meeting_by_room("old-room").await.unwrap().unwrap();
    assert_eq!(
        meeting.draft,
        MeetingDraft {
            title: "Old weekly".into(),
            description: "kept".into(),
            start_at: Some(1_796_115_600_000),
            time_zone: "Europe/Berlin".into(),
            duration_min: 30,
            recurrence: Recurrence::Weekly,
            recurrence_count: Some(10),
            recurrence_until: None,
            skipped_occurrences: Vec::new(),
            require_sign_in: true,
            lobby: true,
        }
    );
    assert!(meeting.locked && !meeting.cancelled);
    assert_eq!((meeting.created_at, meeting.updated_at), (2, 3));
    let invitees: Vec<String> = store
        .invitees("m1")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(invitees, ["bob"]);
    let history = store.history("bob", ALL).await.unwrap();
    let stays: Vec<(&str, Option<i64>)> = history[0]
        .attendance
        .iter()
        .map(|a| (a.name.as_str(), a.left_at))
        .collect();
    assert_eq!(stays, [("Bob", Some(20)), ("Guest", None)]);
    assert!(store.are_contacts("ann", "bob").await.unwrap());

    // The new schema: monthly meetings, an end date, skipped occurrences.
    let monthly = MeetingDraft {
        recurrence: Recurrence::Monthly,
        recurrence_count: None,
        recurrence_until: Some("2027-06-30".into()),
        skipped_occurrences: vec![1_798_794_000_000],
        ..meeting.draft
    };
    let updated = store
        .update_meeting("m1", monthly.clone(), None, 5)
        .await
        .unwrap();
    assert_eq!(updated.draft, monthly);

    // Foreign keys still hold on the store's connections, and deleting cascades.
    match store.record_join("no-such-meeting", None, "Ghost", 6).await {
        Err(StoreError::NotFound) => {}
        other => panic!("a join to no meeting must be refused, got {other:?}"),
    }
    store.delete_user("ann").await.unwrap();
    assert_eq!(store.meeting("m1").await.unwrap(), None);
    store.close().await;
    let pool = AnyPool::connect(url).await.unwrap();
    for table in ["invitations", "attendance", "skipped_occurrences"] {
        let rows: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(rows, 0, "{table} rows go with the host's meeting");
    }
    pool.close().await;

    // Opening it again applies nothing twice.
    connect(url).await.expect("reopen").close().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `server`'s URL naming the database `name` instead of its own.
fn with_database(server: &str, name: &str) -> String {
    let (base, params) = server.split_once('?').unwrap_or((server, ""));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let params = if params.is_empty() {
        String::new()
    } else {
        format!("?{params}")
    };
    format!("{}/{name}{params}", &base[..host_end])
}

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("stoa-migration-{}", random_hex()));
        std::fs::create_dir(&path).expect("create a temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
