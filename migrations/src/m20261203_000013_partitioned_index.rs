//! Internet scale (issue 14): the index tables (`blocks`, `transactions`, `logs`) become
//! partitioned by block number in fixed spans of 1,000,000 blocks (`blocks_p0000` holds blocks
//! 0..=999,999, `blocks_p0023` blocks 23,000,000..=23,999,999), each with a BRIN index on the
//! block number beside its primary key. Each partition's indexes stay bounded however long the
//! chain grows, so the write rate stays flat, and an unwind (`DELETE .. WHERE number > N`) is
//! pruned to the partitions at and above N, in practice the last one.
//!
//! Partitions are made on demand by `blockfill_ensure_index_partitions(first, last)`, which the
//! write path calls before each batch's transaction: it only looks up the catalog when the
//! partitions exist, and creates missing ones one caller at a time (an advisory lock). Existing
//! rows are moved into the new tables.

use sea_orm_migration::prelude::*;

const UP: &str = r#"
CREATE FUNCTION blockfill_index_partition_span() RETURNS bigint
    IMMUTABLE LANGUAGE sql AS $$ SELECT 1000000::bigint $$;

CREATE FUNCTION blockfill_ensure_index_partitions(first_block bigint, last_block bigint)
    RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    span CONSTANT bigint := blockfill_index_partition_span();
    part bigint;
    parent text;
    partition_name text;
    created integer := 0;
BEGIN
    IF first_block IS NULL OR last_block IS NULL OR last_block < first_block THEN
        RETURN 0;
    END IF;
    FOR part IN (greatest(first_block, 0) / span) .. (greatest(last_block, 0) / span) LOOP
        FOREACH parent IN ARRAY ARRAY['blocks', 'transactions', 'logs'] LOOP
            partition_name := parent || '_p' || lpad(part::text, 4, '0');
            CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;
            PERFORM pg_advisory_xact_lock(hashtext('blockfill index partitions'));
            BEGIN
                EXECUTE format(
                    'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                    partition_name, parent, part * span, (part + 1) * span);
                created := created + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                -- made by another caller since the lookup
            END;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

ALTER TABLE blocks RENAME TO blocks_unpartitioned;
ALTER TABLE blocks_unpartitioned RENAME CONSTRAINT blocks_pkey TO blocks_unpartitioned_pkey;
ALTER TABLE transactions RENAME TO transactions_unpartitioned;
ALTER TABLE transactions_unpartitioned
    RENAME CONSTRAINT transactions_pkey TO transactions_unpartitioned_pkey;
ALTER TABLE logs RENAME TO logs_unpartitioned;
ALTER TABLE logs_unpartitioned RENAME CONSTRAINT logs_pkey TO logs_unpartitioned_pkey;

CREATE TABLE blocks (
    LIKE blocks_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (chain, number)
) PARTITION BY RANGE (number);
CREATE INDEX blocks_number_brin ON blocks USING brin (number);

CREATE TABLE transactions (
    LIKE transactions_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (chain, block_number, tx_index)
) PARTITION BY RANGE (block_number);
CREATE INDEX transactions_block_number_brin ON transactions USING brin (block_number);

CREATE TABLE logs (
    LIKE logs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (chain, block_number, log_index)
) PARTITION BY RANGE (block_number);
CREATE INDEX logs_block_number_brin ON logs USING brin (block_number);

SELECT blockfill_ensure_index_partitions(min(number), max(number)) FROM (
    SELECT number FROM blocks_unpartitioned
    UNION ALL SELECT block_number FROM transactions_unpartitioned
    UNION ALL SELECT block_number FROM logs_unpartitioned
) existing;

INSERT INTO blocks SELECT * FROM blocks_unpartitioned;
INSERT INTO transactions SELECT * FROM transactions_unpartitioned;
INSERT INTO logs SELECT * FROM logs_unpartitioned;
DROP TABLE blocks_unpartitioned;
DROP TABLE transactions_unpartitioned;
DROP TABLE logs_unpartitioned;
"#;

const DOWN: &str = r#"
CREATE TABLE blocks_unpartitioned (LIKE blocks INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE transactions_unpartitioned (LIKE transactions INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE logs_unpartitioned (LIKE logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO blocks_unpartitioned SELECT * FROM blocks;
INSERT INTO transactions_unpartitioned SELECT * FROM transactions;
INSERT INTO logs_unpartitioned SELECT * FROM logs;
DROP TABLE blocks;
DROP TABLE transactions;
DROP TABLE logs;
ALTER TABLE blocks_unpartitioned RENAME TO blocks;
ALTER TABLE blocks ADD PRIMARY KEY (chain, number);
ALTER TABLE transactions_unpartitioned RENAME TO transactions;
ALTER TABLE transactions ADD PRIMARY KEY (chain, block_number, tx_index);
ALTER TABLE logs_unpartitioned RENAME TO logs;
ALTER TABLE logs ADD PRIMARY KEY (chain, block_number, log_index);
DROP FUNCTION blockfill_ensure_index_partitions(bigint, bigint);
DROP FUNCTION blockfill_index_partition_span();
"#;

sql_migration!(UP, DOWN);
