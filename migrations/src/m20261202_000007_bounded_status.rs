//! Bounded status answers: partial indexes that let the status answer read only the batches it
//! counts (retried, redelivered, with an error, the newest done live batch) and only the blocks
//! still held in quarantine; and counters on each backfill of the live batch rows compacted away,
//! so its counts keep every batch it ever finished.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE INDEX batches_retried ON batches (chain) WHERE attempts > 0;
CREATE INDEX batches_redelivered ON batches (chain) WHERE deliveries > 1;
CREATE INDEX batches_with_error ON batches (chain) WHERE last_error IS NOT NULL;
CREATE INDEX batches_live_done ON batches (chain, to_block) WHERE lane = 'live' AND status = 'done';
CREATE INDEX quarantined_blocks_held ON quarantined_blocks (chain) WHERE released_at IS NULL;

ALTER TABLE backfills ADD COLUMN compacted_batches bigint NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN compacted_blocks bigint NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN compacted_retried bigint NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN compacted_redelivered bigint NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN compacted_attempts bigint NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN compacted_redeliveries bigint NOT NULL DEFAULT 0;
"#;

const DOWN: &str = r#"
ALTER TABLE backfills DROP COLUMN compacted_redeliveries;
ALTER TABLE backfills DROP COLUMN compacted_attempts;
ALTER TABLE backfills DROP COLUMN compacted_redelivered;
ALTER TABLE backfills DROP COLUMN compacted_retried;
ALTER TABLE backfills DROP COLUMN compacted_blocks;
ALTER TABLE backfills DROP COLUMN compacted_batches;

DROP INDEX quarantined_blocks_held;
DROP INDEX batches_live_done;
DROP INDEX batches_with_error;
DROP INDEX batches_redelivered;
DROP INDEX batches_retried;
"#;

sql_migration!(UP, DOWN);
