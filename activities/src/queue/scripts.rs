//! The Lua scripts the queue runs on Redis: one atomic read of a queue's raw counts, which task
//! ids are still live, vacuuming finished jobs, handing back what a stopped worker holds, and
//! withdrawing jobs no worker took yet.
//! Their keys come from apalis-redis' `Config` (see the callers in `job_queue` and `worker`).

use std::sync::LazyLock;

use redis::Script;

/// Atomic snapshot of a queue's raw structures.
pub(super) static DEPTH_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: active list, scheduled zset, workers zset, done set, failed set, dead set
-- ARGV[1]: prefix of the per-worker inflight sets
local inflight = 0
for _, worker in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
    inflight = inflight + redis.call('scard', ARGV[1] .. ':' .. worker)
end
return {
    redis.call('llen', KEYS[1]),
    redis.call('zcard', KEYS[2]),
    inflight,
    redis.call('scard', KEYS[4]),
    redis.call('scard', KEYS[5]),
    redis.call('scard', KEYS[6]),
}
",
    )
});

/// Which of ARGV's task ids still have a runnable job: payload present and not finished (done or
/// dead). Returns one 0/1 per id.
pub(super) static LIVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: data hash, done set, dead set
local out = {}
for i, id in ipairs(ARGV) do
    local live = redis.call('hexists', KEYS[1], id) == 1
        and redis.call('sismember', KEYS[2], id) == 0
        and redis.call('sismember', KEYS[3], id) == 0
    out[i] = live and 1 or 0
end
return out
",
    )
});

/// Drops up to ARGV[2] finished jobs from each of the done and dead sets, with their payload and
/// metadata. Returns how many ids it took from the sets and how many jobs it dropped.
pub(super) static VACUUM_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: done set, dead set, data hash, scheduled zset
-- ARGV[1]: prefix of the per-job meta hashes, ARGV[2]: chunk size
local taken, dropped = 0, 0
for s = 1, 2 do
    local ids = redis.call('spop', KEYS[s], tonumber(ARGV[2]))
    for _, id in ipairs(ids) do
        taken = taken + 1
        -- keep a job that was pushed again and is waiting to run
        if not redis.call('zscore', KEYS[4], id) then
            redis.call('hdel', KEYS[3], id)
            redis.call('del', ARGV[1] .. ':' .. id)
            dropped = dropped + 1
        end
    end
end
return {taken, dropped}
",
    )
});

/// Hands back what a stopped worker still holds and unregisters it. Jobs whose payload is gone are
/// dropped rather than re-queued: apalis-redis stops any worker that fetches such an id.
pub(super) static RELEASE_WORKER_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: worker inflight set, active list, workers zset, data hash, worker metadata, signal list
-- ARGV[1]: worker name, ARGV[2]: prefix of the per-job meta hashes
local requeued = 0
for _, id in ipairs(redis.call('smembers', KEYS[1])) do
    if redis.call('hexists', KEYS[4], id) == 1 then
        redis.call('rpush', KEYS[2], id)
        redis.call('hset', ARGV[2] .. ':' .. id, 'status', 'Pending')
        requeued = requeued + 1
    end
end
redis.call('del', KEYS[1])
redis.call('zrem', KEYS[3], ARGV[1])
redis.call('del', KEYS[5])
if requeued > 0 then
    redis.call('del', KEYS[6])
    redis.call('lpush', KEYS[6], 1)
end
return requeued
",
    )
});

/// Withdraws the jobs of ARGV's task ids that no worker took yet: removes each from the active
/// list and the scheduled set and, only when it was in one of them, drops its payload and
/// metadata (a job a worker already fetched is left alone: the worker finishes or hands it back).
/// Returns one 0/1 per id: whether it was withdrawn.
pub(super) static WITHDRAW_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: active list, scheduled zset, data hash
-- ARGV[1]: prefix of the per-job meta hashes, ARGV[2..]: task ids
local out = {}
for i = 2, #ARGV do
    local id = ARGV[i]
    local removed = redis.call('lrem', KEYS[1], 0, id) + redis.call('zrem', KEYS[2], id)
    if removed > 0 then
        redis.call('hdel', KEYS[3], id)
        redis.call('del', ARGV[1] .. ':' .. id)
        out[i - 1] = 1
    else
        out[i - 1] = 0
    end
end
return out
",
    )
});
