//! Typed failures: each batch records the kind of its last failure beside its message, so a
//! batch whose budget is found spent on a later delivery is split, quarantined or failed as its
//! failure warrants (the message alone no longer has to be understood).

use sea_orm_migration::prelude::*;

const UP: &str = "ALTER TABLE batches ADD COLUMN last_failure_kind text;";

const DOWN: &str = "ALTER TABLE batches DROP COLUMN last_failure_kind;";

sql_migration!(UP, DOWN);
