//! Safety under misbehaviour: each chain's identity (genesis hash) and reorg depth limit, a halt
//! switch for live sync, the leader's term (fencing), and the bound of every job queue as the
//! leader set it (so every process that pushes respects the same bound).

use sea_orm_migration::prelude::*;

const UP: &str = r#"
ALTER TABLE chains ADD COLUMN genesis_hash text;
ALTER TABLE chains ADD COLUMN max_reorg_depth bigint NOT NULL DEFAULT 64 CHECK (max_reorg_depth >= 1);
ALTER TABLE chains ADD COLUMN live_halted boolean NOT NULL DEFAULT false;
ALTER TABLE chains ADD COLUMN live_halted_reason text;
ALTER TABLE chains ADD COLUMN live_halted_at timestamptz;

ALTER TABLE leadership ADD COLUMN term bigint NOT NULL DEFAULT 0;

CREATE TABLE queue_bounds (
    lane        text PRIMARY KEY,
    max_queued  bigint NOT NULL CHECK (max_queued >= 1),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE backfills ADD COLUMN rescans integer NOT NULL DEFAULT 0;
"#;

const DOWN: &str = r#"
ALTER TABLE backfills DROP COLUMN rescans;
DROP TABLE queue_bounds;
ALTER TABLE leadership DROP COLUMN term;
ALTER TABLE chains DROP COLUMN live_halted_at;
ALTER TABLE chains DROP COLUMN live_halted_reason;
ALTER TABLE chains DROP COLUMN live_halted;
ALTER TABLE chains DROP COLUMN max_reorg_depth;
ALTER TABLE chains DROP COLUMN genesis_hash;
"#;

sql_migration!(UP, DOWN);
