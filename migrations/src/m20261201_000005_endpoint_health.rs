//! Endpoint health: each process's latest view of every RPC endpoint it uses (breaker state,
//! concurrency, rate, latency histogram, errors), for `GET /v1/chains/{name}/endpoints`.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE TABLE endpoint_health (
    chain      text        NOT NULL REFERENCES chains (name) ON DELETE CASCADE,
    endpoint   text        NOT NULL,
    reporter   text        NOT NULL,
    snapshot   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, endpoint, reporter)
);
"#;

const DOWN: &str = "DROP TABLE endpoint_health;";

sql_migration!(UP, DOWN);
