//! Whether PostgreSQL answers (the readiness probe).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

/// Runs a trivial statement: `Ok` when PostgreSQL answers.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
