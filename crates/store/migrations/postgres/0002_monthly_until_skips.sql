-- Monthly recurrence, an end date (`recurrence_until`, a local YYYY-MM-DD) and skipped
-- occurrences. PostgreSQL changes the CHECK on `recurrence` in place (the name is the one
-- PostgreSQL gave the column constraint of 0001); SQLite's version of this migration
-- rebuilds the table instead.
ALTER TABLE meetings DROP CONSTRAINT meetings_recurrence_check;
ALTER TABLE meetings ADD CONSTRAINT meetings_recurrence_check
    CHECK (recurrence IN ('none', 'daily', 'weekly', 'monthly'));
-- YYYY-MM-DD in time_zone, inclusive; NULL: no end date.
ALTER TABLE meetings ADD COLUMN recurrence_until TEXT;

-- Occurrences of a recurring meeting that do not take place: their start instants (Unix ms).
CREATE TABLE skipped_occurrences (
    meeting_id TEXT   NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    start_at   BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, start_at)
);
