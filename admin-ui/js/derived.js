// Values derived from a status answer: live and historical state, active backfills, gaps.

import { state } from './config.js';
import { fmtInt, isNum, plural } from './format.js';

export function liveState(st) {
  const live = st && st.live;
  if (!live) return { cls: 'unknown', label: 'NO DATA', detail: '' };
  if (live.halted) {
    return { cls: 'bad', label: 'LIVE SYNC HALTED', detail: live.halted_reason || 'halted for an operator' };
  }
  if (live.is_live_sync) {
    return { cls: 'ok', label: 'LIVE SYNCED', detail: isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') + ' behind head' : 'at head' };
  }
  if (!isNum(live.head)) return { cls: 'unknown', label: 'HEAD UNKNOWN', detail: 'no head seen from RPC' };
  return { cls: 'warn', label: 'CATCHING UP', detail: isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') + ' behind' : 'lag unknown' };
}

export function histState(st) {
  const h = st && st.historical;
  if (!h) return { cls: 'unknown', label: 'NO DATA', detail: '' };
  if (!(h.missing_blocks_count > 0)) return { cls: 'ok', label: 'NO GAPS', detail: 'history complete' };
  const gaps = isNum(h.gap_ranges_count) ? plural(h.gap_ranges_count, 'gap', 'gaps') : 'gaps';
  return { cls: 'gap', label: gaps.toUpperCase(), detail: fmtInt(h.missing_blocks_count) + ' blocks missing' };
}

export function activeBackfills(name) {
  return (state.backfills[name] || []).filter((b) => b.status === 'running' || b.status === 'planned' || b.status === 'paused');
}

// Inverse of coverage within [from, to]: the missing ranges, inclusive.
export function gapsFromCoverage(from, to, coverage) {
  const segs = (coverage || [])
    .filter((c) => c && isNum(c.start) && isNum(c.end))
    .map((c) => ({ start: Math.max(from, c.start), end: Math.min(to, c.end) }))
    .filter((c) => c.start <= c.end)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let cursor = from;
  for (const s of segs) {
    if (s.start > cursor) out.push({ start: cursor, end: s.start - 1 });
    cursor = Math.max(cursor, s.end + 1);
  }
  if (cursor <= to) out.push({ start: cursor, end: to });
  return { covered: segs, gaps: out };
}
