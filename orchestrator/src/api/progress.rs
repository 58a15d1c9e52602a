//! `GET /v1/backfills/{id}/progress?bucket_seconds=`: a backfill's blocks written over time, for
//! the dashboard's blocks/s chart. The blocks of its done batches are counted per time bucket of
//! their `finished_at`, zero-filled, over at most the last [`MAX_BUCKETS`] buckets up to the
//! backfill's end (now while it runs); totals come with them. The reads are
//! [`blockfill_activities::store::progress`]'s.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use blockfill_activities::store::{backfill_views, progress};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiContext, ApiError, params::PathParam};

/// Most buckets in one answer (the newest ones).
pub(super) const MAX_BUCKETS: i64 = 500;
/// About how many buckets the default bucket size gives over a backfill's lifetime.
const DEFAULT_BUCKETS: i64 = 120;
/// Bucket sizes the default picks from, in seconds.
const NICE_BUCKETS: &[i64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 21_600, 43_200, 86_400,
];
/// Largest `bucket_seconds` accepted (a day).
const MAX_BUCKET_SECONDS: i64 = 86_400;

pub(super) fn router() -> Router<ApiContext> {
    Router::new().route("/v1/backfills/{id}/progress", get(show))
}

/// Query of `GET /v1/backfills/{id}/progress`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ProgressQuery {
    /// Width of each bucket, 1..=86400 seconds (default: about 120 buckets over its age).
    #[param(minimum = 1, maximum = 86400)]
    bucket_seconds: Option<i64>,
}

/// Blocks written in one time bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProgressBucket {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Blocks of the batches that finished in it.
    pub blocks: i64,
    /// Those batches.
    pub batches: i64,
    /// `blocks / bucket_seconds`.
    pub blocks_per_second: f64,
}

/// The answer of `GET /v1/backfills/{id}/progress`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProgressView {
    /// The backfill.
    pub backfill_id: Uuid,
    /// Width of each bucket (the query's, or chosen from the backfill's age: about 120 buckets).
    pub bucket_seconds: i64,
    /// The buckets, oldest first, zero-filled, at most 500, the last one holding the backfill's
    /// end (now while it has not finished).
    pub buckets: Vec<ProgressBucket>,
    /// Whether older buckets with blocks were left off (ask for wider buckets to see them).
    pub truncated: bool,
    /// Blocks of all its done batches (compacted live batches not included).
    pub blocks_done: i64,
    /// Its done batches.
    pub batches_done: i64,
    /// When its first done batch finished.
    pub first_finished_at: Option<DateTime<Utc>>,
    /// When its latest done batch finished.
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// The bucket width the answer uses when the query gives none: the smallest of
/// [`NICE_BUCKETS`] that spreads `age_seconds` over at most [`DEFAULT_BUCKETS`] buckets.
pub(super) fn default_bucket_seconds(age_seconds: f64) -> i64 {
    let wanted = (age_seconds.max(0.0) / DEFAULT_BUCKETS as f64).ceil() as i64;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= wanted)
        .unwrap_or(MAX_BUCKET_SECONDS)
}

/// The bucket index of `epoch_seconds` at `bucket_seconds` wide.
fn bucket_of(epoch_seconds: f64, bucket_seconds: i64) -> i64 {
    (epoch_seconds / bucket_seconds as f64).floor() as i64
}

#[utoipa::path(
    get,
    path = "/v1/backfills/{id}/progress",
    tag = "backfills",
    params(("id" = Uuid, Path, description = "Backfill id"), ProgressQuery),
    responses(
        (status = 200, description = "Blocks written per time bucket (blocks/s over time)", body = ProgressView, example = json!({"backfill_id": "0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f", "bucket_seconds": 1, "buckets": [{"start": "2026-12-03T10:00:00Z", "blocks": 900, "batches": 9, "blocks_per_second": 900.0}], "truncated": false, "blocks_done": 900, "batches_done": 9, "first_finished_at": "2026-12-03T10:00:00.2Z", "last_finished_at": "2026-12-03T10:00:00.9Z"})),
        (status = 400, description = "The id is not a UUID, or a parameter is invalid", body = super::ErrorBody, example = json!(super::openapi::examples::error("bad_request", "bucket_seconds must be between 1 and 86400 (got 0)"))),
        (status = 404, description = "No such backfill", body = super::ErrorBody, example = json!(super::openapi::examples::error("not_found", "no backfill 0193c1d2-7a4e-7c3b-9a1e-3f2b8c4d5e6f"))),
    ),
)]
pub(super) async fn show(
    State(ctx): State<ApiContext>,
    PathParam(id): PathParam<String>,
    query: Result<Query<ProgressQuery>, QueryRejection>,
) -> Result<Json<ProgressView>, ApiError> {
    let Query(query) = query?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a backfill id (a UUID)")))?;
    if let Some(b) = query.bucket_seconds
        && !(1..=MAX_BUCKET_SECONDS).contains(&b)
    {
        return Err(ApiError::BadRequest(format!(
            "bucket_seconds must be between 1 and {MAX_BUCKET_SECONDS} (got {b})"
        )));
    }
    let row = backfill_views::find(&ctx.app.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no backfill {id}")))?;
    let totals = progress::done_totals(&ctx.app.pool, id).await?;
    let epoch = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;
    let began = epoch(
        row.started_at
            .unwrap_or(row.requested_at)
            .with_timezone(&Utc),
    )
    .min(totals.first_finished.unwrap_or(f64::MAX));
    // The end: its finish (or its last batch's, if later), else now.
    let end = match row.finished_at {
        Some(finished) => epoch(finished.with_timezone(&Utc)),
        None => epoch(Utc::now()),
    }
    .max(totals.last_finished.unwrap_or(f64::MIN));
    let bucket_seconds = query
        .bucket_seconds
        .unwrap_or_else(|| default_bucket_seconds(end - began));
    let last = bucket_of(end, bucket_seconds);
    let first_wanted = bucket_of(began, bucket_seconds).min(last);
    let first = first_wanted.max(last - (MAX_BUCKETS - 1));
    let done = progress::done_per_bucket(&ctx.app.pool, id, bucket_seconds, first, last).await?;
    let in_window: i64 = done.iter().map(|b| b.blocks).sum();
    let mut done = done.into_iter().peekable();
    let mut buckets = Vec::with_capacity((last - first + 1) as usize);
    for index in first..=last {
        let (blocks, batches) = done
            .next_if(|b| b.index == index)
            .map_or((0, 0), |b| (b.blocks, b.batches));
        buckets.push(ProgressBucket {
            start: DateTime::from_timestamp(index * bucket_seconds, 0).unwrap_or_default(),
            blocks,
            batches,
            blocks_per_second: blocks as f64 / bucket_seconds as f64,
        });
    }
    let at = |s: Option<f64>| s.and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64));
    Ok(Json(ProgressView {
        backfill_id: id,
        bucket_seconds,
        buckets,
        truncated: in_window < totals.blocks,
        blocks_done: totals.blocks,
        batches_done: totals.batches,
        first_finished_at: at(totals.first_finished),
        last_finished_at: at(totals.last_finished),
    }))
}

#[cfg(test)]
mod tests {
    use super::{MAX_BUCKET_SECONDS, bucket_of, default_bucket_seconds};

    #[test]
    fn the_default_bucket_spreads_the_age_over_at_most_120_nice_buckets() {
        assert_eq!(default_bucket_seconds(0.0), 1);
        assert_eq!(default_bucket_seconds(-5.0), 1);
        assert_eq!(default_bucket_seconds(90.0), 1);
        assert_eq!(default_bucket_seconds(121.0), 2);
        assert_eq!(default_bucket_seconds(600.0), 5);
        assert_eq!(default_bucket_seconds(3_600.0), 30);
        assert_eq!(default_bucket_seconds(86_400.0), 900);
        assert_eq!(default_bucket_seconds(1e12), MAX_BUCKET_SECONDS);
        for age in [1.0, 77.0, 1_000.0, 50_000.0, 1e6] {
            let b = default_bucket_seconds(age);
            assert!(age / b as f64 <= 120.0, "{age}s in {b}s buckets");
        }
    }

    #[test]
    fn buckets_are_aligned_to_their_width() {
        assert_eq!(bucket_of(0.0, 10), 0);
        assert_eq!(bucket_of(9.999, 10), 0);
        assert_eq!(bucket_of(10.0, 10), 1);
        assert_eq!(bucket_of(1_700_000_123.5, 60), 28_333_335);
    }
}
