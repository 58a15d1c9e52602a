//! The live lane: each chain remembers the last block handed to live sync and the `live`
//! backfill that owns live batches; batches record their lane.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
ALTER TABLE chains ADD COLUMN live_sync boolean NOT NULL DEFAULT true;
ALTER TABLE chains ADD COLUMN live_cursor bigint;
ALTER TABLE chains ADD COLUMN live_backfill_id uuid;
ALTER TABLE backfills DROP CONSTRAINT backfills_mode_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_mode_check CHECK (mode IN ('range', 'gaps', 'live'));
ALTER TABLE batches ADD COLUMN lane text NOT NULL DEFAULT 'backfill' CHECK (lane IN ('backfill', 'live'));
DROP INDEX batches_unfinished;
CREATE INDEX batches_unfinished ON batches (lane, status) WHERE status IN ('planned', 'queued', 'running');
"#;

const DOWN: &str = r#"
DROP INDEX batches_unfinished;
ALTER TABLE batches DROP COLUMN lane;
CREATE INDEX batches_unfinished ON batches (status) WHERE status IN ('planned', 'queued', 'running');
ALTER TABLE backfills DROP CONSTRAINT backfills_mode_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_mode_check CHECK (mode IN ('range', 'gaps'));
ALTER TABLE chains DROP COLUMN live_backfill_id;
ALTER TABLE chains DROP COLUMN live_cursor;
ALTER TABLE chains DROP COLUMN live_sync;
"#;

sql_migration!(UP, DOWN);
