//! The typed states of the control tables, spelled once.
//!
//! Each enum's spelling in PostgreSQL, in JSON and in logs is its `strum` snake_case name: the
//! `text_kind!` macro derives the sea-orm value type (entity fields), the sqlx encoding (raw
//! queries bind these enums, never a literal) and serde from that one spelling.

use sea_orm::{
    DeriveValueType,
    sqlx::{
        Decode, Encode, Postgres, Type,
        encode::IsNull,
        error::BoxDynError,
        postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef},
    },
};

/// Derives, for a fieldless enum whose spelling is `strum`'s `snake_case` name, the sqlx text
/// encoding (scalar and array) and serde through that spelling.
macro_rules! text_kind {
    ($kind:ty) => {
        impl Type<Postgres> for $kind {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }
        impl PgHasArrayType for $kind {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }
        impl Encode<'_, Postgres> for $kind {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }
        impl<'r> Decode<'r, Postgres> for $kind {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let spelled = <&str as Decode<Postgres>>::decode(value)?;
                Ok(spelled.parse::<$kind>()?)
            }
        }
        impl $kind {
            /// The spelling in PostgreSQL, JSON and logs.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
        impl serde::Serialize for $kind {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $kind {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let spelled = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                spelled.parse().map_err(|_| {
                    serde::de::Error::unknown_variant(
                        &spelled,
                        &<$kind as strum::VariantNames>::VARIANTS,
                    )
                })
            }
        }
    };
}

/// The strum derives every kind shares.
macro_rules! kinds {
    ($($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ })+) => {
        $(
            $(#[$meta])*
            #[derive(
                Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                strum::Display, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
                strum::VariantNames, DeriveValueType, utoipa::ToSchema,
            )]
            #[strum(serialize_all = "snake_case")]
            // Read by the schema derive only (serde is implemented by `text_kind!`).
            #[serde(rename_all = "snake_case")]
            #[sea_orm(value_type = "String")]
            pub enum $name { $($(#[$vmeta])* $variant,)+ }
            text_kind!($name);
        )+
    };
}

kinds! {
    /// Where a batch is in its life (`batches.status`).
    pub enum BatchStatus {
        /// A row exists; not yet pushed to Redis.
        Planned,
        /// Pushed to its lane's queue (or given back there after a failed attempt).
        Queued,
        /// A worker started it.
        Running,
        /// Written (rows, coverage and status in one transaction).
        Done,
        /// Out of attempts for a reason splitting cannot fix.
        Failed,
        /// Out of attempts; its two halves were planned instead.
        Split,
        /// A single block out of attempts: set aside with its error.
        Quarantined,
        /// Its backfill was cancelled before a worker started it (withdrawn from Redis, or never
        /// queued); it is finished and nothing of it runs again.
        Cancelled,
    }

    /// Where a backfill is in its life (`backfills.status`).
    pub enum BackfillStatus {
        /// Requested; its scheduler has not planned a batch yet.
        Planned,
        /// Its scheduler is planning or its batches are running.
        Running,
        /// Its whole range is covered (quarantined blocks aside).
        Completed,
        /// A batch failed, or the range stayed uncovered after its rescans.
        Failed,
        /// Stopped by an operator for good: none of its batches is queued again (the ones running
        /// when it was cancelled finish and are written).
        Cancelled,
        /// Held by an operator: none of its batches is queued (those waiting in Redis went back
        /// to `planned`), the running ones finish; resuming makes it `running` again.
        Paused,
    }

    /// What a backfill plans (`backfills.mode`).
    pub enum BackfillMode {
        /// Every block of the range.
        Range,
        /// Only the blocks the coverage ledger lacks.
        Gaps,
        /// The live lane's own long-running backfill per chain.
        Live,
    }

    /// A batch lane (`batches.lane`), which is also the name of its Redis queue.
    pub enum Lane {
        /// Historical work.
        Backfill,
        /// Live sync.
        Live,
    }

    /// What kind of failure a batch last had (`batches.last_failure_kind`): it decides, even
    /// when read back after a redelivery, whether the batch is split, quarantined or failed.
    pub enum FailureKind {
        /// The chain is not registered.
        UnknownChain,
        /// A node's answer did not parse or validate.
        Malformed,
        /// A node answered with a JSON-RPC error for the range.
        Rpc,
        /// No endpoint could serve the request (down, rate-limited, timing out, another chain).
        Unavailable,
        /// The block is not available yet.
        NotYetAvailable,
        /// Writing failed (PostgreSQL), or the write was refused.
        Write,
        /// A reorg could not be repaired.
        Reorg,
        /// Bookkeeping in PostgreSQL failed.
        Database,
        /// Its workers keep dying while running it.
        CrashLoop,
    }
}

impl BatchStatus {
    /// The statuses of work not finished yet.
    pub const UNFINISHED: [BatchStatus; 3] = [Self::Planned, Self::Queued, Self::Running];
    /// The statuses of work that ended (written, resolved after its budget, or cancelled).
    pub const FINISHED: [BatchStatus; 5] = [
        Self::Done,
        Self::Failed,
        Self::Split,
        Self::Quarantined,
        Self::Cancelled,
    ];

    /// Whether the batch still needs a worker.
    pub fn is_unfinished(self) -> bool {
        Self::UNFINISHED.contains(&self)
    }
}

impl BackfillStatus {
    /// The statuses of a backfill whose scheduler still runs.
    pub const ACTIVE: [BackfillStatus; 2] = [Self::Planned, Self::Running];

    /// The statuses an operator can pause or cancel from (a paused one can also be cancelled).
    pub const CONTROLLABLE: [BackfillStatus; 3] = [Self::Planned, Self::Running, Self::Paused];

    /// Whether its scheduler still runs (and its batches may be queued: the gate refuses the
    /// batches of a backfill that is not active).
    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Backfill, Lane::Live];

    /// The lane's Redis queue name (the same spelling as in PostgreSQL).
    pub fn queue(self) -> &'static str {
        self.as_str()
    }

    /// Parses `batches.lane`.
    pub fn parse(lane: &str) -> Option<Self> {
        lane.parse().ok()
    }
}

impl FailureKind {
    /// Whether the failure is tied to the blocks of the range (so halving the range can isolate
    /// it), rather than to an endpoint, the database or time.
    pub fn is_block_specific(self) -> bool {
        matches!(self, Self::Malformed | Self::Rpc | Self::CrashLoop)
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    fn round_trips<K>()
    where
        K: VariantArray + Copy + Eq + std::fmt::Debug + std::str::FromStr + Into<&'static str>,
        K: serde::Serialize + serde::de::DeserializeOwned,
    {
        for kind in K::VARIANTS {
            let spelled: &'static str = (*kind).into();
            assert_eq!(spelled.parse::<K>().ok(), Some(*kind));
            let json = serde_json::to_string(kind).expect("serialise");
            assert_eq!(json, format!("\"{spelled}\""));
            assert_eq!(serde_json::from_str::<K>(&json).expect("parse"), *kind);
        }
    }

    #[test]
    fn every_kind_has_one_spelling_everywhere() {
        round_trips::<BatchStatus>();
        round_trips::<BackfillStatus>();
        round_trips::<BackfillMode>();
        round_trips::<Lane>();
        round_trips::<FailureKind>();
    }

    #[test]
    fn spellings_match_the_schema_checks() {
        // The CHECK constraints of the migrations list these spellings.
        let batch: Vec<_> = BatchStatus::VARIANTS.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            batch,
            [
                "planned",
                "queued",
                "running",
                "done",
                "failed",
                "split",
                "quarantined",
                "cancelled"
            ]
        );
        let backfill: Vec<_> = BackfillStatus::VARIANTS
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            backfill,
            [
                "planned",
                "running",
                "completed",
                "failed",
                "cancelled",
                "paused"
            ]
        );
        assert_eq!(BackfillMode::Gaps.as_str(), "gaps");
        assert_eq!(Lane::Backfill.as_str(), "backfill");
        assert_eq!(FailureKind::CrashLoop.as_str(), "crash_loop");
    }

    #[test]
    fn unknown_spellings_are_refused() {
        assert!("Done".parse::<BatchStatus>().is_err());
        assert!(serde_json::from_str::<BackfillMode>("\"all\"").is_err());
        assert_eq!(Lane::parse("batches"), None);
    }
}
