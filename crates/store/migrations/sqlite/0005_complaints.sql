-- Citizen complaints (Open311 service requests) and the desk's work on them.
-- Coordinates are integer microdegrees; every time is Unix seconds.
CREATE TABLE complaints (
    id             INTEGER PRIMARY KEY,
    service_code   TEXT NOT NULL,
    status         TEXT NOT NULL,
    open           INTEGER NOT NULL,
    description    TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    lat_e6         INTEGER,
    lon_e6         INTEGER,
    h3_cell        INTEGER,
    address        TEXT,
    address_id     TEXT,
    media_url      TEXT,
    reporter_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    reporter_email TEXT,
    reporter_name  TEXT,
    reporter_phone TEXT,
    anonymous      INTEGER NOT NULL DEFAULT 0,
    department     TEXT NOT NULL,
    district       TEXT,
    assignee       TEXT,
    requested_at   INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    expected_at    INTEGER NOT NULL,
    resolved_at    INTEGER,
    status_notes   TEXT,
    merged_into    INTEGER REFERENCES complaints(id),
    token          TEXT UNIQUE,
    visible        INTEGER NOT NULL DEFAULT 1,
    moderation     TEXT NOT NULL DEFAULT 'none',
    breach_alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX complaints_requested ON complaints(requested_at, id);
CREATE INDEX complaints_service ON complaints(service_code, requested_at, id);
CREATE INDEX complaints_department ON complaints(department, open, requested_at);
-- Covers the duplicate check: the box is tested inside the index, rows are read only for matches.
CREATE INDEX complaints_near ON complaints(service_code, lat_e6, lon_e6, requested_at) WHERE open = 1;
CREATE INDEX complaints_deadline ON complaints(expected_at) WHERE open = 1 AND breach_alerted = 0;
CREATE INDEX complaints_reporter ON complaints(reporter_id);
CREATE INDEX complaints_moderation ON complaints(moderation) WHERE moderation = 'pending';
-- Everyone who reported a complaint, including those of duplicates merged into it.
CREATE TABLE complaint_reporters (
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    reporter_key TEXT NOT NULL,
    user_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    email        TEXT,
    at           INTEGER NOT NULL,
    PRIMARY KEY (complaint_id, reporter_key)
);
CREATE INDEX complaint_reporters_user ON complaint_reporters(user_id);
-- The history of a complaint: status changes, public updates and internal notes.
CREATE TABLE complaint_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT,
    text         TEXT NOT NULL,
    public       INTEGER NOT NULL,
    author       TEXT
);
CREATE INDEX complaint_events_complaint ON complaint_events(complaint_id, id);
CREATE TABLE complaint_photos (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    content_type TEXT NOT NULL,
    byte_len     INTEGER NOT NULL,
    path         TEXT NOT NULL,
    thumb_path   TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX complaint_photos_complaint ON complaint_photos(complaint_id);
-- In-app notifications, and the state of the email sent for each.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    email        TEXT,
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    text         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    read_at      INTEGER,
    email_state  TEXT NOT NULL
);
CREATE INDEX notifications_user ON notifications(user_id, id);
