//! Reorgs: every detected reorganisation with its depth, common ancestor, and the replaced and
//! new hashes.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE TABLE reorgs (
    id              bigserial PRIMARY KEY,
    chain           text NOT NULL REFERENCES chains(name),
    common_ancestor bigint NOT NULL,
    depth           integer NOT NULL,
    old_hashes      jsonb NOT NULL,
    new_hashes      jsonb NOT NULL,
    detected_by     text NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reorgs_chain_detected ON reorgs (chain, detected_at DESC);
"#;

const DOWN: &str = "DROP TABLE reorgs;";

sql_migration!(UP, DOWN);
