-- 0001_init: the application schema.
-- Times are BIGINT Unix microseconds (UTC); NULL means "not set".
-- JSON values are TEXT; opaque bytes are BLOB.

CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    labels             TEXT,
    first_seen         BIGINT,
    last_seen          BIGINT,
    report_interval_us BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX devices_last_seen ON devices (last_seen);

CREATE TABLE detector_configs (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    detector       TEXT NOT NULL,
    scope_kind     TEXT NOT NULL,
    scope_target   TEXT NOT NULL,
    scope_selector TEXT,
    params         TEXT,
    enabled        BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX detector_configs_created ON detector_configs (created_at, id);
CREATE INDEX detector_configs_scope ON detector_configs (scope_kind, scope_target);

CREATE TABLE anomalies (
    id            TEXT PRIMARY KEY,
    series_key    TEXT NOT NULL,
    device        TEXT NOT NULL,
    start_at      BIGINT NOT NULL,
    end_at        BIGINT,
    peak_score    DOUBLE PRECISION NOT NULL,
    severity      TEXT NOT NULL,
    detectors     TEXT,
    sensors       TEXT,
    model_version TEXT NOT NULL,
    state         TEXT NOT NULL,
    assignee      TEXT NOT NULL,
    comments      TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL
);
CREATE INDEX anomalies_start ON anomalies (start_at, id);
CREATE INDEX anomalies_device_start ON anomalies (device, start_at, id);
CREATE INDEX anomalies_series_start ON anomalies (series_key, start_at, id);
CREATE INDEX anomalies_state_start ON anomalies (state, start_at, id);

CREATE TABLE maintenance_windows (
    id             TEXT PRIMARY KEY,
    scope_kind     TEXT NOT NULL,
    scope_target   TEXT NOT NULL,
    scope_selector TEXT,
    start_at       BIGINT NOT NULL,
    end_at         BIGINT NOT NULL,
    reason         TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);
CREATE INDEX maintenance_windows_start ON maintenance_windows (start_at, id);

CREATE TABLE model_meta (
    name           TEXT NOT NULL,
    model_version  BIGINT NOT NULL,
    detector       TEXT NOT NULL,
    scope_kind     TEXT NOT NULL,
    scope_target   TEXT NOT NULL,
    scope_selector TEXT,
    stage          TEXT NOT NULL,
    checksum       TEXT NOT NULL,
    artifact_key   TEXT NOT NULL,
    training       TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    PRIMARY KEY (name, model_version)
);
CREATE INDEX model_meta_version ON model_meta (model_version, name);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    device_prefix TEXT NOT NULL,
    secret_hash   BLOB NOT NULL UNIQUE,
    last_used_at  BIGINT,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL
);
CREATE INDEX api_tokens_created ON api_tokens (created_at, id);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    topic           TEXT NOT NULL,
    msg_key         TEXT NOT NULL,
    payload         BLOB,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX outbox_created ON outbox (created_at, id);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

CREATE TABLE checkpoints (
    key            TEXT PRIMARY KEY,
    scored_through BIGINT,
    state          BLOB,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL
);

CREATE TABLE system_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
