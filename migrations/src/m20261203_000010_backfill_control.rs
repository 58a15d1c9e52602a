//! Backfill control (issue 12): an operator can pause, resume and cancel a backfill and give it a
//! priority. Backfills gain `priority` (higher runs first, -100..=100), `paused_at` and
//! `cancelled_at`, and the status `paused`; batches gain the status `cancelled` (withdrawn or
//! never queued because their backfill was cancelled).

use sea_orm_migration::prelude::*;

const UP: &str = r#"
ALTER TABLE backfills ADD COLUMN priority integer NOT NULL DEFAULT 0
    CHECK (priority BETWEEN -100 AND 100);
ALTER TABLE backfills ADD COLUMN paused_at timestamptz;
ALTER TABLE backfills ADD COLUMN cancelled_at timestamptz;
ALTER TABLE backfills DROP CONSTRAINT backfills_status_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_status_check
    CHECK (status IN ('planned', 'running', 'completed', 'failed', 'cancelled', 'paused'));
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('planned', 'queued', 'running', 'done', 'failed', 'split', 'quarantined',
                      'cancelled'));
"#;

const DOWN: &str = r#"
UPDATE batches SET status = 'failed' WHERE status = 'cancelled';
UPDATE backfills SET status = 'running' WHERE status = 'paused';
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
    CHECK (status IN ('planned', 'queued', 'running', 'done', 'failed', 'split', 'quarantined'));
ALTER TABLE backfills DROP CONSTRAINT backfills_status_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_status_check
    CHECK (status IN ('planned', 'running', 'completed', 'failed', 'cancelled'));
ALTER TABLE backfills DROP COLUMN cancelled_at;
ALTER TABLE backfills DROP COLUMN paused_at;
ALTER TABLE backfills DROP COLUMN priority;
"#;

sql_migration!(UP, DOWN);
