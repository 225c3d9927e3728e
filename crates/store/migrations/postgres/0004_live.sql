-- Stop arrivals and departures detected from vehicle positions: the history
-- that predictions and road speeds learn from. Append-only.
CREATE TABLE stop_events (
    service_date  TEXT   NOT NULL,
    trip_id       TEXT   NOT NULL,
    stop_sequence BIGINT NOT NULL,
    stop_id       TEXT   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('arrival', 'departure')),
    at            BIGINT NOT NULL,
    observed      BIGINT NOT NULL,
    PRIMARY KEY (service_date, trip_id, stop_sequence, kind)
);
CREATE INDEX stop_events_at ON stop_events (at);

-- Disruptions: created by operators, or proposed by the system (a stalled
-- or bunched vehicle) for an operator to confirm. The body is the incident
-- as JSON written by the server; status and times are columns to filter on.
CREATE TABLE incidents (
    id          BIGSERIAL PRIMARY KEY,
    status      TEXT   NOT NULL CHECK (status IN ('proposed', 'active', 'resolved', 'dismissed')),
    source      TEXT   NOT NULL,
    -- What an automatic incident is about (e.g. `stalled:bus-12`), so one
    -- condition proposes one incident; NULL for operators' incidents.
    detection_key TEXT,
    body        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, updated_at);
CREATE UNIQUE INDEX incidents_open_key ON incidents (detection_key) WHERE status IN ('proposed', 'active');

-- What the real-time engine learned about link times by time of day and day
-- type (postcard bytes written by the server), so a restart keeps it.
CREATE TABLE realtime_history (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    saved_at BIGINT NOT NULL,
    body     BYTEA  NOT NULL
);
