// The backfill detail panel: the backfill opened from the table (or just started from the gap
// map), its facts, the controls its role allows, and its blocks/s over time (chart.js), from
// GET /v1/backfills/{id} and GET /v1/backfills/{id}/progress (loaded by the poll).

import { state } from './config.js';
import { fmtDuration, fmtInt, fmtRange, fmtRate, fmtStamp, isNum, parseTime, plural, redactUrls } from './format.js';
import { $, el, kv, setText } from './dom.js';
import { poll } from './network.js';
import { controlNodes } from './controls.js';
import { clearChart, drawProgressChart, progressSeries } from './chart.js';

export function openDetail(id) {
  const sid = String(id);
  if (state.detail && state.detail.id === sid) return;
  state.detail = { id: sid, view: null, progress: null, err: null };
  // The list's row shows at once; the poll brings the rest.
  for (const name of Object.keys(state.backfills)) {
    const b = (state.backfills[name] || []).find((x) => String(x.id) === sid);
    if (b) state.detail.view = b;
  }
  renderDetailPanel();
  $('bf-detail').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  poll();
}

export function closeDetail() {
  state.detail = null;
  renderDetailPanel();
}

export function renderDetailPanel() {
  const panel = $('bf-detail');
  const d = state.detail;
  if (!d) { panel.hidden = true; return; }
  panel.hidden = false;
  const b = d.view;
  setText('bfd-id', d.id);
  const badge = $('bfd-status');
  badge.className = 'badge badge-' + (b ? b.status : 'unknown');
  badge.textContent = b ? b.status : '…';
  const err = $('bfd-error');
  err.hidden = !d.err;
  err.textContent = d.err ? 'Could not refresh this backfill: ' + d.err + (b ? ' (showing last good values)' : '') : '';

  const facts = $('bfd-facts');
  facts.replaceChildren();
  if (b) {
    kv(facts, 'Chain', b.chain || '—', 'mono');
    kv(facts, 'Mode', b.mode || '—');
    kv(facts, 'Range', fmtRange(b.from, b.to), 'mono');
    kv(facts, 'Priority', isNum(b.priority) ? String(b.priority) : '—', 'mono');
    kv(facts, 'Blocks', fmtInt(b.blocks_done) + ' / ' + fmtInt(b.blocks_total), 'mono');
    const bt = b.batches || {};
    kv(facts, 'Batches', ['planned', 'queued', 'running', 'done', 'failed', 'cancelled']
      .filter((k) => k !== 'cancelled' || bt[k]).map((k) => fmtInt(bt[k] || 0) + ' ' + k).join(' · '), 'mono');
    const active = b.status === 'running' || b.status === 'planned';
    kv(facts, 'Rate', active || b.status === 'completed' ? fmtRate(b.blocks_per_second) : '—', 'mono');
    kv(facts, 'ETA', active ? fmtDuration(b.eta_seconds) : '—', 'mono');
    kv(facts, 'Requested', fmtStamp(parseTime(b.requested_at)), 'mono');
    kv(facts, 'Started', fmtStamp(parseTime(b.started_at)), 'mono');
    if (b.paused_at) kv(facts, 'Paused', fmtStamp(parseTime(b.paused_at)), 'mono');
    if (b.cancelled_at) kv(facts, 'Cancelled', fmtStamp(parseTime(b.cancelled_at)), 'mono');
    kv(facts, 'Finished', fmtStamp(parseTime(b.finished_at)), 'mono');
    if (b.failed_attempts || b.quarantined_blocks || b.split_batches) {
      kv(facts, 'Trouble', plural(b.failed_attempts || 0, 'failed attempt', 'failed attempts') + ' · ' +
        plural(b.split_batches || 0, 'split', 'splits') + ' · ' + plural(b.quarantined_blocks || 0, 'quarantined block', 'quarantined blocks'), 'mono');
    }
    if (b.last_error) kv(facts, 'Last error', redactUrls(b.last_error), 'mono bad');
  } else {
    facts.appendChild(el('div', { class: 'empty' }, 'Loading…'));
  }
  const controls = $('bfd-controls');
  const nodes = b ? controlNodes(b) : null;
  controls.replaceChildren(nodes || el('span', { class: 'muted small' }, b && (state.whoami || {}).role === 'viewer' ? 'viewer: state only' : ''));

  const chart = $('bfd-chart');
  const summary = $('bfd-chart-summary');
  const p = d.progress;
  if (!p) {
    summary.textContent = d.err ? '' : 'Loading blocks over time…';
    clearChart(chart, null);
    return;
  }
  const s = progressSeries(p);
  summary.textContent = fmtInt(p.blocks_done) + ' blocks in ' + plural(p.batches_done, 'done batch', 'done batches') +
    ' · peak ' + fmtRate(s.peak) + ' · mean ' + fmtRate(s.mean) + ' · ' + fmtDuration(p.bucket_seconds) + ' buckets' +
    (p.truncated ? ' · older buckets left off' : '');
  if (!drawProgressChart(chart, p, d.id + '/' + p.bucket_seconds)) {
    clearChart(chart, el('div', { class: 'empty' }, 'Chart library not loaded.'));
  }
}

export function wireDetail() {
  $('bfd-close').addEventListener('click', closeDetail);
}
