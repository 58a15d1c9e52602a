// The coverage/gap map's zoom and gap picking. The map shows a block window of the chain's
// historical range: the whole range, or a window chosen by dragging across the bar, the mouse
// wheel, or the +/− buttons (Reset returns to the whole range). A zoomed window reads its gaps
// exactly (GET /v1/chains/{name}/gaps?from=&to=), so ranges down to single blocks show. Clicking
// a gap picks it: "Backfill this gap" posts {chain, mode: "gaps", from, to} (operator and admin)
// and opens the new backfill in the detail panel.

import { state } from './config.js';
import { fmtInt, fmtRange, plural } from './format.js';
import { $, el } from './dom.js';
import { canOperate } from './auth.js';
import { gapsFromCoverage } from './derived.js';
import { api, poll } from './network.js';
import { render, renderCoverage } from './render.js';
import { openDetail } from './detail.js';
import { prefillRange } from './form.js';

// The narrowest window, in blocks.
export const MIN_WINDOW = 10;
// How much one +/− click or wheel notch zooms.
export const ZOOM_STEP = 2;
// A drag shorter than this (pixels) is a click.
export const DRAG_PX = 4;

// `win` kept inside `bounds` and at least `minSpan` blocks wide (when the bounds allow it).
export function clampWindow(win, bounds, minSpan) {
  const full = bounds.to - bounds.from + 1;
  let span = Math.min(full, Math.max(minSpan || 1, Math.round(win.to - win.from + 1)));
  let from = Math.round(win.from);
  if (from < bounds.from) from = bounds.from;
  if (from + span - 1 > bounds.to) from = bounds.to - span + 1;
  return { from: from, to: from + span - 1 };
}

// Zooms `win` by `factor` (< 1 in, > 1 out) keeping block `center` at the same place on the bar.
export function zoomAround(win, bounds, center, factor) {
  const span = win.to - win.from + 1;
  const newSpan = Math.max(MIN_WINDOW, Math.round(span * factor));
  const at = span > 1 ? (center - win.from) / (span - 1) : 0.5;
  const from = Math.round(center - at * (newSpan - 1));
  return clampWindow({ from: from, to: from + newSpan - 1 }, bounds, MIN_WINDOW);
}

// The block under fraction `f` (0 = left edge, 1 = right edge) of the bar showing `win`.
export function blockAt(win, f) {
  const span = win.to - win.from + 1;
  return Math.min(win.to, Math.max(win.from, win.from + Math.floor(f * span)));
}

// The window selected by dragging from fraction `f0` to `f1` of the bar showing `win`.
export function windowFromDrag(win, f0, f1, bounds) {
  const a = blockAt(win, Math.min(f0, f1));
  const b = blockAt(win, Math.max(f0, f1));
  return clampWindow({ from: a, to: b }, bounds, MIN_WINDOW);
}

// The covered intervals of [from, to] given its exact gaps (the inverse of the gaps).
export function coveredFromGaps(from, to, gaps) {
  const sorted = (gaps || [])
    .map((g) => ({ start: Math.max(from, g.start), end: Math.min(to, g.end) }))
    .filter((g) => g.start <= g.end)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let cursor = from;
  for (const g of sorted) {
    if (g.start > cursor) out.push({ start: cursor, end: g.start - 1 });
    cursor = Math.max(cursor, g.end + 1);
  }
  if (cursor <= to) out.push({ start: cursor, end: to });
  return out;
}

// The gap of `gaps` holding `block`, or null.
export function gapAt(gaps, block) {
  return (gaps || []).find((g) => g.start <= block && block <= g.end) || null;
}

// The window shown for `name`: its zoom clamped to `bounds`, or the whole of `bounds`.
export function currentWindow(name, bounds) {
  const z = state.zoom[name];
  return z ? clampWindow(z, bounds, MIN_WINDOW) : { from: bounds.from, to: bounds.to };
}

// The covered intervals and gaps the map draws for `win`, and whether they are exact.
export function windowData(name, win, st) {
  const wg = state.windowGaps[name];
  const zoomed = !!state.zoom[name];
  if (zoomed && wg && wg.key === win.from + '-' + win.to) {
    return { covered: coveredFromGaps(win.from, win.to, wg.items), gaps: wg.items, exact: !wg.more, more: wg.more };
  }
  const g = gapsFromCoverage(win.from, win.to, st && st.coverage);
  return { covered: g.covered, gaps: g.gaps, exact: false, more: false };
}

function bounds(st) {
  const h = st && st.historical;
  return h && typeof h.from === 'number' && typeof h.to === 'number' && h.to >= h.from ? { from: h.from, to: h.to } : null;
}

export function setZoom(name, win, full) {
  if (!win || (win.from === full.from && win.to === full.to)) delete state.zoom[name];
  else state.zoom[name] = win;
  state.gapPick = null;
  state.gapResult = null;
  renderCoverage(state.status[name]);
  poll();
}

function zoomBy(factor, centerFrac) {
  const name = state.selected;
  const st = state.status[name];
  const full = bounds(st);
  if (!full) return;
  const win = currentWindow(name, full);
  const center = blockAt(win, centerFrac === undefined ? 0.5 : centerFrac);
  setZoom(name, zoomAround(win, full, center, factor), full);
}

// The zoom line (window, buttons' state) and the picked gap's box, under the bar.
export function renderGapTools(name, st, win, data) {
  const full = bounds(st);
  const zoomed = !!state.zoom[name];
  $('zoom-reset').disabled = !zoomed;
  $('zoom-out').disabled = !zoomed;
  $('zoom-in').disabled = !full || win.to - win.from + 1 <= MIN_WINDOW;
  const span = win.to - win.from + 1;
  const inView = data.gaps.filter((g) => g.end >= win.from && g.start <= win.to);
  const label = $('zoom-label');
  label.replaceChildren(
    el('span', { class: 'mono' }, (zoomed ? 'blocks ' : 'all blocks ') + fmtRange(win.from, win.to)),
    el('span', { class: 'muted' }, ' · ' + plural(span, 'block', 'blocks') + ' · ' +
      (data.more ? 'first ' + fmtInt(inView.length) + ' gaps (zoom in for the rest)' : plural(inView.length, 'gap', 'gaps') + ' in view')));
  const err = state.windowGapsErr[name];
  const list = $('zoom-gaps');
  // Exact ranges once few enough gaps are in view.
  if (zoomed && inView.length && inView.length <= 12) {
    list.hidden = false;
    list.replaceChildren.apply(list, [el('span', { class: 'muted' }, 'Gaps: ')].concat(inView.map((g) => el('button', {
      type: 'button',
      class: 'btn-link gap-chip mono',
      'data-gap': g.start + '-' + g.end,
      onclick: () => pickGap(name, g, win),
    }, fmtRange(Math.max(g.start, win.from), Math.min(g.end, win.to))))));
  } else {
    list.hidden = !err;
    list.replaceChildren(err ? el('span', { class: 'bad' }, 'Could not read the window\'s gaps: ' + err) : '');
  }
  renderGapPick(name);
}

export function pickGap(name, gap, win) {
  const clipped = gap.start < win.from || gap.end > win.to;
  state.gapPick = {
    chain: name,
    start: Math.max(gap.start, win.from),
    end: Math.min(gap.end, win.to),
    clipped: clipped,
  };
  state.gapResult = null;
  renderGapPick(name);
}

function renderGapPick(name) {
  const box = $('gap-pick');
  const p = state.gapPick;
  if (!p || p.chain !== name) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  const n = p.end - p.start + 1;
  const may = canOperate();
  const res = state.gapResult;
  box.replaceChildren(
    el('div', { class: 'gap-pick-head' },
      el('span', { class: 'sw sw-gap' }),
      el('b', { class: 'mono', id: 'gap-pick-range' }, fmtRange(p.start, p.end)),
      el('span', { class: 'muted' }, ' · ' + plural(n, 'block', 'blocks') + ' missing' + (p.clipped ? ' (the part in view; the gap goes on beyond it)' : ''))),
    el('div', { class: 'actions' },
      el('button', {
        type: 'button', id: 'gap-backfill', class: 'btn btn-small btn-primary', disabled: !may || state.gapBusy,
        title: may ? 'POST /v1/backfills {mode: "gaps", from, to}: fetches only the missing blocks' : 'Needs the operator role',
        onclick: () => backfillGap(p),
      }, state.gapBusy ? 'Starting…' : 'Backfill this gap'),
      n > MIN_WINDOW ? el('button', {
        type: 'button', class: 'btn btn-small',
        onclick: () => {
          const full = bounds(state.status[name]);
          if (full) setZoom(name, clampWindow({ from: p.start - Math.ceil(n / 10), to: p.end + Math.ceil(n / 10) }, full, MIN_WINDOW), full);
        },
      }, 'Zoom to gap') : null,
      el('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => prefillRange(p.start, p.end) }, 'Prefill the form'),
      el('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => { state.gapPick = null; state.gapResult = null; renderGapPick(name); } }, 'Close'),
      may ? null : el('span', { class: 'muted small' }, 'needs operator')),
    res ? el('div', { class: 'result result-' + res.kind, id: 'gap-result', role: 'status' }, res.text) : null);
}

export async function backfillGap(p) {
  if (state.gapBusy) return;
  state.gapBusy = true;
  state.gapResult = null;
  renderGapPick(p.chain);
  try {
    const res = await api('/v1/backfills', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ chain: p.chain, mode: 'gaps', from: p.start, to: p.end }),
    });
    const id = res && res.id ? String(res.id) : null;
    state.gapResult = { kind: 'ok', text: 'Backfill ' + (id || '(no id)') + ' accepted for ' + fmtRange(p.start, p.end) + ' — status: ' + ((res && res.status) || 'accepted') + '.' };
    if (id) openDetail(id);
  } catch (e) {
    state.gapResult = { kind: 'error', text: 'Rejected by the API — ' + e.message };
  } finally {
    state.gapBusy = false;
    renderGapPick(p.chain);
    render();
    poll();
  }
}

// Drag, wheel, click and the zoom buttons.
export function wireGapMap() {
  const bar = $('coverage-bar');
  const sel = $('coverage-sel');
  let drag = null;
  const frac = (ev) => {
    const r = bar.getBoundingClientRect();
    return r.width > 0 ? Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)) : 0;
  };
  bar.addEventListener('mousedown', (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    drag = { x0: ev.clientX, f0: frac(ev) };
  });
  window.addEventListener('mousemove', (ev) => {
    if (!drag) return;
    const f = frac(ev);
    if (Math.abs(ev.clientX - drag.x0) < DRAG_PX) { sel.hidden = true; return; }
    sel.hidden = false;
    sel.style.left = (Math.min(f, drag.f0) * 100) + '%';
    sel.style.width = (Math.abs(f - drag.f0) * 100) + '%';
  });
  window.addEventListener('mouseup', (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    sel.hidden = true;
    const name = state.selected;
    const st = state.status[name];
    const full = bounds(st);
    if (!full) return;
    const win = currentWindow(name, full);
    const f = frac(ev);
    if (Math.abs(ev.clientX - d.x0) >= DRAG_PX) {
      setZoom(name, windowFromDrag(win, d.f0, f, full), full);
      return;
    }
    // A click: the gap under it, or a zoom into a partly indexed stretch.
    const data = windowData(name, win, st);
    const block = blockAt(win, f);
    const gap = gapAt(data.gaps, block);
    if (gap) { pickGap(name, gap, win); return; }
    const seg = document.elementFromPoint(ev.clientX, ev.clientY);
    if (seg && seg.classList.contains('seg-part')) zoomBy(1 / 8, f);
  });
  bar.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    zoomBy(ev.deltaY < 0 ? 1 / ZOOM_STEP : ZOOM_STEP, frac(ev));
  }, { passive: false });
  $('zoom-in').addEventListener('click', () => zoomBy(1 / ZOOM_STEP));
  $('zoom-out').addEventListener('click', () => zoomBy(ZOOM_STEP));
  $('zoom-reset').addEventListener('click', () => {
    const name = state.selected;
    const full = bounds(state.status[name]);
    if (full) setZoom(name, null, full);
  });
}
