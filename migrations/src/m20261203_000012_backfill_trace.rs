//! Traces (issue 13): a backfill keeps the W3C trace context of the request (or repair) that
//! created it, so every scheduler generation of it, including one pushed again by the
//! reconciler or a new leader, continues the same trace. NULL when traces were not exported.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
ALTER TABLE backfills ADD COLUMN trace_context jsonb;
"#;

const DOWN: &str = r#"
ALTER TABLE backfills DROP COLUMN trace_context;
"#;

sql_migration!(UP, DOWN);
