//! Access control: API keys (a public id, a role, the SHA-256 of the secret; never the secret),
//! the audit log of every mutation, and the stored answers of `Idempotency-Key` requests.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    secret_sha256 bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_active ON api_keys (id) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    key_id         text,
    auth           text NOT NULL,
    role           text,
    method         text NOT NULL,
    route          text,
    path           text NOT NULL,
    summary        text,
    status         integer NOT NULL,
    result         text NOT NULL,
    client_address text
);
CREATE INDEX audit_log_key ON audit_log (key_id, id);

CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    status       integer,
    body         bytea,
    content_type text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
"#;

const DOWN: &str = "DROP TABLE idempotency_keys; DROP TABLE audit_log; DROP TABLE api_keys;";

sql_migration!(UP, DOWN);
