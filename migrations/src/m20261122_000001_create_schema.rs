//! The first schema: control tables (chains, backfills, batches, scheduler checkpoints), the
//! coverage ledger and the index tables users query.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE TABLE chains (
    name             text PRIMARY KEY,
    chain_id         bigint,
    rpc_urls         jsonb NOT NULL,
    start_block      bigint NOT NULL DEFAULT 0 CHECK (start_block >= 0),
    confirmations    bigint NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
    batch_size       integer NOT NULL DEFAULT 100 CHECK (batch_size > 0),
    min_workers      integer NOT NULL DEFAULT 1 CHECK (min_workers >= 0),
    max_workers      integer NOT NULL DEFAULT 4 CHECK (max_workers >= min_workers),
    head_block       bigint,
    head_updated_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backfills (
    id             uuid PRIMARY KEY,
    chain          text NOT NULL REFERENCES chains(name),
    mode           text NOT NULL CHECK (mode IN ('range', 'gaps')),
    from_block     bigint NOT NULL CHECK (from_block >= 0),
    to_block       bigint NOT NULL CHECK (to_block >= from_block),
    status         text NOT NULL CHECK (status IN ('planned', 'running', 'completed', 'failed', 'cancelled')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    planned_batches bigint NOT NULL DEFAULT 0,
    planned_blocks bigint NOT NULL DEFAULT 0,
    final_counts   jsonb,
    last_error     text
);
CREATE INDEX backfills_chain_status ON backfills (chain, status);

CREATE TABLE batches (
    id           text PRIMARY KEY,
    chain        text NOT NULL REFERENCES chains(name),
    from_block   bigint NOT NULL,
    to_block     bigint NOT NULL CHECK (to_block >= from_block),
    backfill_id  uuid NOT NULL REFERENCES backfills(id),
    status       text NOT NULL CHECK (status IN ('planned', 'queued', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    deliveries   integer NOT NULL DEFAULT 0,
    last_error   text,
    worker       text,
    planned_at   timestamptz NOT NULL DEFAULT now(),
    queued_at    timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz,
    UNIQUE (chain, from_block, to_block)
);
CREATE INDEX batches_backfill_status ON batches (backfill_id, status);
CREATE INDEX batches_finished ON batches (chain, finished_at) WHERE status = 'done';
CREATE INDEX batches_unfinished ON batches (status) WHERE status IN ('planned', 'queued', 'running');

CREATE TABLE scheduler_checkpoints (
    backfill_id  uuid NOT NULL REFERENCES backfills(id),
    generation   bigint NOT NULL,
    cursor_block bigint NOT NULL,
    planned_batches bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (backfill_id, generation)
);

-- Indexed intervals per chain, kept merged (disjoint, non-adjacent): the gap summary reads these,
-- never `blocks`.
CREATE TABLE coverage (
    chain        text NOT NULL REFERENCES chains(name),
    start_block  bigint NOT NULL,
    end_block    bigint NOT NULL CHECK (end_block >= start_block),
    PRIMARY KEY (chain, start_block)
);

CREATE TABLE blocks (
    chain             text NOT NULL,
    number            bigint NOT NULL,
    hash              text NOT NULL,
    parent_hash       text NOT NULL,
    timestamp         bigint NOT NULL,
    miner             text NOT NULL,
    gas_used          bigint NOT NULL,
    gas_limit         bigint NOT NULL,
    base_fee_per_gas  numeric(78, 0),
    tx_count          integer NOT NULL,
    log_count         integer NOT NULL,
    PRIMARY KEY (chain, number)
);

CREATE TABLE transactions (
    chain         text NOT NULL,
    block_number  bigint NOT NULL,
    tx_index      integer NOT NULL,
    hash          text NOT NULL,
    from_address  text NOT NULL,
    to_address    text,
    value         numeric(78, 0) NOT NULL,
    nonce         bigint NOT NULL,
    gas           bigint NOT NULL,
    gas_price     numeric(78, 0),
    input         text NOT NULL,
    tx_type       bigint,
    PRIMARY KEY (chain, block_number, tx_index)
);

CREATE TABLE logs (
    chain         text NOT NULL,
    block_number  bigint NOT NULL,
    log_index     integer NOT NULL,
    tx_index      integer NOT NULL,
    tx_hash       text NOT NULL,
    address       text NOT NULL,
    topics        text[] NOT NULL,
    data          text NOT NULL,
    PRIMARY KEY (chain, block_number, log_index)
);
"#;

const DOWN: &str = r#"
DROP TABLE logs; DROP TABLE transactions; DROP TABLE blocks; DROP TABLE coverage;
DROP TABLE scheduler_checkpoints; DROP TABLE batches; DROP TABLE backfills; DROP TABLE chains;
"#;

sql_migration!(UP, DOWN);
