//! Worker reports: each `blockfill-worker` process upserts what it serves and how it is doing
//! every few seconds; the admin API lists the fresh ones (the fleet's `running`).

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE TABLE workers (
    id                 text PRIMARY KEY,
    host               text NOT NULL,
    version            text NOT NULL,
    chains             text[],
    lanes              text[] NOT NULL,
    concurrency        integer NOT NULL,
    in_flight          integer NOT NULL DEFAULT 0,
    blocks_per_second  double precision NOT NULL DEFAULT 0,
    batches_done       bigint NOT NULL DEFAULT 0,
    blocks_done        bigint NOT NULL DEFAULT 0,
    started_at         timestamptz NOT NULL DEFAULT now(),
    last_heartbeat     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_heartbeat ON workers (last_heartbeat);
"#;

const DOWN: &str = "DROP TABLE workers;";

sql_migration!(UP, DOWN);
