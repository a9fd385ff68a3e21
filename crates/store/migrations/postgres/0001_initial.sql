-- The initial schema. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Integers, flags (0/1) and times (Unix ms) are BIGINT; ids are TEXT made by the store.

CREATE TABLE users (
    id            TEXT   NOT NULL PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE, -- lower-cased
    display_name  TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE meetings (
    id               TEXT   NOT NULL PRIMARY KEY,
    room             TEXT   NOT NULL UNIQUE,
    host_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            TEXT   NOT NULL,
    description      TEXT   NOT NULL,
    start_at         BIGINT,
    time_zone        TEXT   NOT NULL,
    duration_min     BIGINT NOT NULL,
    recurrence       TEXT   NOT NULL CHECK (recurrence IN ('none', 'daily', 'weekly')),
    recurrence_count BIGINT,
    require_sign_in  BIGINT NOT NULL,
    lobby            BIGINT NOT NULL,
    locked           BIGINT NOT NULL DEFAULT 0,
    cancelled        BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX meetings_host ON meetings (host_id);

CREATE TABLE invitations (
    meeting_id TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX invitations_user ON invitations (user_id);

CREATE TABLE attendance (
    id         TEXT   NOT NULL PRIMARY KEY,
    meeting_id TEXT   NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    user_id    TEXT   REFERENCES users (id) ON DELETE SET NULL, -- NULL for a guest
    name       TEXT   NOT NULL,
    joined_at  BIGINT NOT NULL,
    left_at    BIGINT
);
CREATE INDEX attendance_meeting ON attendance (meeting_id, joined_at);
CREATE INDEX attendance_user ON attendance (user_id);

CREATE TABLE contact_requests (
    from_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id),
    CHECK (from_id <> to_id)
);
CREATE INDEX contact_requests_to ON contact_requests (to_id);

-- Two rows per pair, one from each side.
CREATE TABLE contacts (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_id),
    CHECK (user_id <> contact_id)
);

CREATE TABLE blocks (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_id),
    CHECK (user_id <> blocked_id)
);
