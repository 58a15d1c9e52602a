//! Typed failures: each batch records the kind of its last failure beside its message, so a
//! batch whose budget is found spent on a later delivery is split, quarantined or failed as its
//! failure warrants (the message alone no longer has to be understood).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const UP: &str = "ALTER TABLE batches ADD COLUMN last_failure_kind text;";

const DOWN: &str = "ALTER TABLE batches DROP COLUMN last_failure_kind;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
