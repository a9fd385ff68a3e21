-- Monthly recurrence, an end date (`recurrence_until`, a local YYYY-MM-DD) and skipped
-- occurrences. SQLite cannot change the CHECK on `recurrence`, so `meetings` is rebuilt by
-- SQLite's documented procedure (create the new table, copy, drop the old, rename). With
-- foreign keys on, dropping `meetings` would delete every invitation and attendance row, so
-- the store runs SQLite migrations on a connection with foreign keys off (sqlx runs each
-- migration in a transaction, where PRAGMA foreign_keys cannot change), and this migration
-- refuses to run otherwise.
CREATE TEMP TABLE migration_needs_foreign_keys_off (enforced BIGINT CHECK (enforced = 0));
INSERT INTO migration_needs_foreign_keys_off SELECT foreign_keys FROM pragma_foreign_keys;
DROP TABLE migration_needs_foreign_keys_off;

CREATE TABLE meetings_rebuilt (
    id               TEXT   NOT NULL PRIMARY KEY,
    room             TEXT   NOT NULL UNIQUE,
    host_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            TEXT   NOT NULL,
    description      TEXT   NOT NULL,
    start_at         BIGINT,
    time_zone        TEXT   NOT NULL,
    duration_min     BIGINT NOT NULL,
    recurrence       TEXT   NOT NULL CHECK (recurrence IN ('none', 'daily', 'weekly', 'monthly')),
    recurrence_count BIGINT,
    require_sign_in  BIGINT NOT NULL,
    lobby            BIGINT NOT NULL,
    locked           BIGINT NOT NULL DEFAULT 0,
    cancelled        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    recurrence_until TEXT -- YYYY-MM-DD in time_zone, inclusive; NULL: no end date
);
INSERT INTO meetings_rebuilt (id, room, host_id, title, description, start_at, time_zone,
    duration_min, recurrence, recurrence_count, require_sign_in, lobby, locked, cancelled,
    created_at, updated_at)
SELECT id, room, host_id, title, description, start_at, time_zone,
    duration_min, recurrence, recurrence_count, require_sign_in, lobby, locked, cancelled,
    created_at, updated_at
FROM meetings;
DROP TABLE meetings;
ALTER TABLE meetings_rebuilt RENAME TO meetings;
CREATE INDEX meetings_host ON meetings (host_id);

-- Occurrences of a recurring meeting that do not take place: their start instants (Unix ms).
CREATE TABLE skipped_occurrences (
    meeting_id TEXT   NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    start_at   BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, start_at)
);
