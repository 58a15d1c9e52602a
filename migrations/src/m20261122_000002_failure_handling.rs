//! Failure handling: batches can be split (a poison range is halved until the bad block is
//! isolated) or quarantined; quarantined blocks are listed; the scheduler's leader is recorded;
//! every re-queue of a batch gets a new round (a fresh queue task id).

use sea_orm_migration::prelude::*;

const UP: &str = r#"
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('planned', 'queued', 'running', 'done', 'failed', 'split', 'quarantined'));
ALTER TABLE batches ADD COLUMN parent_id text;
ALTER TABLE batches ADD COLUMN queue_round integer NOT NULL DEFAULT 0;
CREATE INDEX batches_chain_status ON batches (chain, status);

CREATE TABLE quarantined_blocks (
    chain          text NOT NULL REFERENCES chains(name),
    number         bigint NOT NULL,
    batch_id       text NOT NULL,
    backfill_id    uuid NOT NULL REFERENCES backfills(id),
    error          text NOT NULL,
    attempts       integer NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    PRIMARY KEY (chain, number)
);

ALTER TABLE scheduler_checkpoints ADD COLUMN holder text;

CREATE TABLE leadership (
    role         text PRIMARY KEY,
    holder       text NOT NULL,
    api_addr     text,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = r#"
DROP TABLE leadership;
ALTER TABLE scheduler_checkpoints DROP COLUMN holder;
DROP TABLE quarantined_blocks;
DROP INDEX batches_chain_status;
ALTER TABLE batches DROP COLUMN queue_round;
ALTER TABLE batches DROP COLUMN parent_id;
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('planned', 'queued', 'running', 'done', 'failed'));
"#;

sql_migration!(UP, DOWN);
