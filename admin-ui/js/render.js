// Rendering the page from the state: top bar, banner, tabs, live and historical panels,
// coverage bar, gaps and backfills (the fleet, endpoint, key, detail and gap map tools are in
// their own modules).

import { FINISHED_BACKFILLS_SHOWN, HEAD_STALE_SECONDS, MAX_GAP_PAGES, POLL_MS, state } from './config.js';
import { fmtAgo, fmtClock, fmtDuration, fmtInt, fmtPct, fmtRange, fmtRate, fmtStamp, isNum, parseTime, plural, redactUrls } from './format.js';
import { $, ago, el, kv, setText } from './dom.js';
import { select } from './selection.js';
import { activeBackfills, gapsFromCoverage, histState, liveState } from './derived.js';
import { renderConfig, renderEndpoints } from './endpoints.js';
import { renderFleet } from './fleet.js';
import { prefillRange, updateHint } from './form.js';
import { controlNodes, viewerNote } from './controls.js';
import { openDetail, renderDetailPanel } from './detail.js';
import { currentWindow, renderGapTools, windowData } from './gapmap.js';
import { renderKeyControl } from './keyprompt.js';

export function render() {
  renderTopbar();
  renderBanner();
  renderTabs();
  renderDetail();
}

export function renderTopbar() {
  renderKeyControl();
  const pill = $('api-pill');
  if (state.apiError && state.apiError.title === 'API unreachable') {
    pill.className = 'pill pill-bad';
    pill.textContent = 'API: unreachable';
  } else if (state.health) {
    pill.className = 'pill ' + (state.health.ok ? 'pill-ok' : 'pill-bad');
    pill.textContent = 'API: ' + state.health.text;
  }
  const upd = $('updated');
  if (state.lastOk === null) {
    upd.textContent = state.apiError ? 'no data received' : 'connecting…';
    upd.classList.toggle('bad', !!state.apiError);
  } else {
    upd.textContent = 'updated ' + fmtAgo(state.lastOk) + ' · every ' + POLL_MS / 1000 + 's';
    upd.classList.toggle('bad', !!state.apiError);
  }
}

export function renderBanner() {
  const b = $('banner');
  document.body.classList.toggle('is-stale', !!state.apiError && state.lastOk !== null);
  if (!state.apiError) { b.hidden = true; return; }
  b.hidden = false;
  setText('banner-title', state.apiError.title);
  const since = state.failingSince;
  let msg = state.apiError.msg + ' — failing since ' + fmtClock(since) + '. Retrying every ' + POLL_MS / 1000 + 's. ';
  msg += state.lastOk !== null
    ? 'Showing last good data from ' + fmtClock(state.lastOk) + ' (' + fmtAgo(state.lastOk) + ').'
    : 'No data has been received yet.';
  setText('banner-msg', msg);
}

export function renderTabs() {
  const nav = $('chain-tabs');
  const chains = state.chains;
  const ph = $('placeholder');
  if (chains === null) {
    ph.hidden = false;
    ph.textContent = state.apiError ? 'Cannot load chains: ' + state.apiError.msg : 'Loading chains…';
    nav.replaceChildren();
    return;
  }
  if (!chains.length) {
    ph.hidden = false;
    ph.textContent = 'No chains are configured.';
    nav.replaceChildren();
    return;
  }
  ph.hidden = true;
  nav.replaceChildren.apply(nav, chains.map((c) => {
    const st = state.status[c.name];
    const live = liveState(st);
    const hist = histState(st);
    const active = activeBackfills(c.name);
    const running = active.filter((b) => b.status === 'running').length;
    const paused = active.filter((b) => b.status === 'paused').length;
    const waiting = active.length - running - paused;
    const failed = (state.backfills[c.name] || []).some((b) => b.status === 'failed');
    const err = state.statusErr[c.name];
    return el('button', {
      type: 'button',
      class: 'chain-tab' + (c.name === state.selected ? ' selected' : ''),
      'aria-pressed': c.name === state.selected ? 'true' : 'false',
      onclick: () => select(c.name),
    },
    el('div', { class: 'tab-top' },
      el('span', { class: 'tab-name' }, c.name),
      el('span', { class: 'tab-id mono' }, 'id ' + c.chain_id)),
    el('div', { class: 'tab-row' },
      el('span', { class: 'kind kind-live sm' }, 'LIVE'),
      el('span', { class: 'state state-' + live.cls }, live.label),
      el('span', { class: 'muted' }, live.detail)),
    el('div', { class: 'tab-row' },
      el('span', { class: 'kind kind-hist sm' }, 'HIST'),
      el('span', { class: 'state state-' + hist.cls }, hist.label),
      el('span', { class: 'muted' }, hist.detail)),
    el('div', { class: 'tab-row tab-foot' },
      active.length
        ? el('span', { class: 'chip chip-running' }, running ? plural(running, 'backfill running', 'backfills running')
          : waiting ? plural(waiting, 'backfill planned', 'backfills planned') : plural(paused, 'backfill paused', 'backfills paused'))
        : el('span', { class: 'muted' }, 'no active backfill'),
      running && paused ? el('span', { class: 'chip chip-paused' }, fmtInt(paused) + ' paused') : null,
      failed ? el('span', { class: 'chip chip-failed' }, 'failed backfill') : null,
      err ? el('span', { class: 'chip chip-failed', title: err }, 'status error') : null));
  }));
}

export function renderDetail() {
  const name = state.selected;
  const chain = (state.chains || []).find((c) => c.name === name);
  const detail = $('chain-detail');
  if (!chain) { detail.hidden = true; return; }
  detail.hidden = false;
  setText('chain-title', chain.name);
  setText('chain-sub', 'chain id ' + chain.chain_id + ' · ' + plural((chain.rpc_urls || []).length, 'RPC endpoint', 'RPC endpoints') + ' · batch ' + fmtInt(chain.batch_size) + ' · workers ' + chain.min_workers + '–' + chain.max_workers);
  const stale = $('detail-stale');
  if (state.apiError && state.lastOk !== null) {
    stale.hidden = false;
    stale.textContent = 'STALE · data from ' + fmtClock(state.lastOk);
  } else {
    stale.hidden = true;
  }
  setText('trigger-chain', chain.name);
  const st = state.status[name];
  renderLive(st, state.statusErr[name]);
  renderHistorical(st, state.statusErr[name], activeBackfills(name).length > 0);
  renderCoverage(st);
  renderGaps(name, st);
  renderBackfills(name);
  renderDetailPanel();
  renderFleet(name);
  renderEndpoints(name);
  renderConfig(chain);
  updateHint();
}

export function errorLine(msg, haveData) {
  return el('div', { class: 'inline-error' }, 'Could not load status: ' + msg + (haveData ? ' (showing last good values)' : ''));
}

export function renderLive(st, err) {
  const body = $('live-body');
  const nodes = [];
  if (err) nodes.push(errorLine(err, !!(st && st.live)));
  if (!st || !st.live) {
    nodes.push(el('div', { class: 'empty' }, err ? 'No status available.' : 'Waiting for status…'));
    body.replaceChildren.apply(body, nodes);
    return;
  }
  const live = st.live;
  const s = liveState(st);
  nodes.push(el('div', { class: 'headline' },
    el('span', { class: 'big-state state-' + s.cls }, el('i', { class: 'dot' }), s.label),
    el('span', { class: 'headline-detail' }, s.detail)));

  const list = el('dl', { class: 'kv' });
  kv(list, 'Head', fmtInt(live.head), 'mono');
  kv(list, 'Safe head', fmtInt(live.safe_head), 'mono');
  kv(list, 'Last indexed', isNum(live.last_indexed) ? fmtInt(live.last_indexed) : 'nothing indexed yet', 'mono');
  kv(list, 'Lag', isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') : '—', 'mono');
  const headTs = parseTime(live.head_updated_at);
  const headAge = headTs === null ? null : (Date.now() - headTs) / 1000;
  const headStale = headAge !== null && headAge > HEAD_STALE_SECONDS;
  kv(list, 'Head updated', el('span', null, ago(headTs),
    headStale ? el('span', { class: 'chip chip-failed' }, 'stale head — check RPC') : null));
  if (live.halted) {
    kv(list, 'Halted', el('span', null,
      el('span', { class: 'chip chip-failed' }, 'reorg beyond max_reorg_depth'),
      ' resume with POST /v1/chains/' + encodeURIComponent(st.chain) + '/live/resume'));
  }
  nodes.push(list);
  body.replaceChildren.apply(body, nodes);
}

export function renderHistorical(st, err, backfillActive) {
  const body = $('hist-body');
  const nodes = [];
  if (err) nodes.push(errorLine(err, !!(st && st.historical)));
  if (!st || !st.historical) {
    nodes.push(el('div', { class: 'empty' }, err ? 'No status available.' : 'Waiting for status…'));
    body.replaceChildren.apply(body, nodes);
    return;
  }
  const h = st.historical;
  const s = histState(st);
  const total = isNum(h.from) && isNum(h.to) ? h.to - h.from + 1 : null;
  const headline = el('div', { class: 'headline' },
    el('span', { class: 'big-state state-' + s.cls }, el('i', { class: 'dot' }), s.label),
    el('span', { class: 'headline-detail' }, s.cls === 'gap'
      ? fmtInt(h.missing_blocks_count) + ' of ' + fmtInt(total) + ' blocks missing in ' + fmtRange(h.from, h.to)
      : 'every block in ' + fmtRange(h.from, h.to) + ' is indexed'));
  nodes.push(headline);

  const list = el('dl', { class: 'kv kv-2col' });
  kv(list, 'Range', fmtRange(h.from, h.to), 'mono');
  kv(list, 'Indexed', fmtInt(h.indexed_blocks) + ' blocks (' + fmtPct(h.percent_complete) + ' of range)', 'mono');
  kv(list, 'Missing', plural(h.missing_blocks_count, 'block', 'blocks'), 'mono' + (h.missing_blocks_count > 0 ? ' warn' : ''));
  kv(list, 'Gap ranges', fmtInt(h.gap_ranges_count), 'mono');
  kv(list, 'Largest gap', isNum(h.largest_gap_start)
    ? fmtRange(h.largest_gap_start, h.largest_gap_end) + ' (' + plural(h.largest_gap_end - h.largest_gap_start + 1, 'block', 'blocks') + ')'
    : '—', 'mono');
  kv(list, 'Backfill rate', fmtRate(h.blocks_per_second), 'mono');
  kv(list, 'ETA to close gaps', isNum(h.eta_seconds) ? fmtDuration(h.eta_seconds) : (h.missing_blocks_count > 0 ? (backfillActive ? 'estimating…' : 'no backfill running') : '—'), 'mono');
  nodes.push(list);
  body.replaceChildren.apply(body, nodes);
}

// Coverage bar. When the range has more blocks than the bar has pixels,
// each pixel column is classified as fully indexed, fully missing, or
// partly indexed, so a small hole in a long range (or a small indexed
// island such as the live tip inside a huge gap) never disappears.
export function coverageRuns(from, to, covered, width) {
  const span = to - from + 1;
  if (span <= width) {
    const gaps = gapsFromCoverage(from, to, covered).gaps;
    return covered.map((c) => ({ kind: 'ok', start: c.start, end: c.end }))
      .concat(gaps.map((g) => ({ kind: 'gap', start: g.start, end: g.end })))
      .map((r) => Object.assign(r, { left: (r.start - from) / span, width: (r.end - r.start + 1) / span }));
  }
  const per = span / width;                 // blocks per column
  const cov = new Float64Array(width);
  for (const c of covered) {
    const a = c.start - from;
    const b = c.end - from + 1;             // half-open, in block offsets
    const i0 = Math.floor(a / per);
    const i1 = Math.min(width - 1, Math.floor((b - 1e-9) / per));
    for (let i = i0; i <= i1; i++) {
      cov[i] += Math.min(b, (i + 1) * per) - Math.max(a, i * per);
    }
  }
  const eps = 1e-6 * per;
  const kindAt = (i) => cov[i] >= per - eps ? 'ok' : cov[i] <= eps ? 'gap' : 'part';
  const runs = [];
  let i = 0;
  while (i < width) {
    const kind = kindAt(i);
    let j = i + 1;
    while (j < width && kindAt(j) === kind) j++;
    runs.push({
      kind: kind,
      start: from + Math.floor(i * per),
      end: Math.min(to, from + Math.ceil(j * per) - 1),
      left: i / width,
      width: (j - i) / width,
    });
    i = j;
  }
  return runs;
}

export const RUN_LABEL = { ok: 'indexed', gap: 'missing', part: 'partly indexed (contains gaps)' };

export function renderCoverage(st) {
  const bar = $('coverage-bar');
  const axis = $('coverage-axis');
  const h = st && st.historical;
  if (!h || !isNum(h.from) || !isNum(h.to) || h.to < h.from) {
    bar.replaceChildren();
    axis.replaceChildren();
    bar.setAttribute('aria-label', 'Coverage unavailable');
    return;
  }
  const name = st.chain;
  const win = currentWindow(name, { from: h.from, to: h.to });
  const from = win.from;
  const to = win.to;
  const data = windowData(name, win, st);
  const covered = data.covered;
  const width = Math.max(100, Math.floor(bar.clientWidth || 800));
  const runs = coverageRuns(from, to, covered, width);
  // Narrow runs go last (on top) and get a minimum width, kept inside the bar.
  const narrow = 3 / width;
  runs.sort((a, b) => (a.width < narrow) - (b.width < narrow));
  bar.replaceChildren.apply(bar, runs.map((r) => el('div', {
    class: 'seg-' + r.kind + (r.width < narrow ? ' seg-narrow' : ''),
    style: (r.width < narrow ? 'left:min(' + (r.left * 100) + '%, calc(100% - 3px))' : 'left:' + (r.left * 100) + '%') +
      ';width:' + (r.width * 100) + '%',
    title: RUN_LABEL[r.kind] + ' ' + fmtRange(r.start, r.end) + (r.kind === 'part' ? '' : ' (' + plural(r.end - r.start + 1, 'block', 'blocks') + ')'),
  })));
  bar.setAttribute('aria-label', 'Coverage of blocks ' + fmtRange(from, to));

  const span = to - from + 1;
  const ticks = [];
  for (let i = 0; i <= 4; i++) {
    const b = i === 4 ? to : Math.round(from + (span - 1) * i / 4);
    ticks.push(el('span', { class: 'tick', style: 'left:' + (i * 25) + '%' }, fmtInt(b)));
  }
  axis.replaceChildren.apply(axis, ticks);
  renderGapTools(name, st, win, data);
}

export function renderGaps(name, st) {
  const g = state.gaps[name];
  const err = state.gapsErr[name];
  const errBox = $('gaps-error');
  errBox.hidden = !err;
  errBox.textContent = err ? 'Could not refresh gaps: ' + err + (g ? ' (showing last good list)' : '') : '';
  const tbody = $('gaps-body');
  const total = st && st.historical ? st.historical.gap_ranges_count : null;
  setText('gaps-note', isNum(total) ? plural(total, 'range', 'ranges') + ' total' : '');
  if (!g) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 4, class: 'empty' }, err ? 'No gap data.' : 'Loading…')));
    setText('gaps-count', '');
    $('gaps-more').hidden = true;
    $('gaps-less').hidden = true;
    return;
  }
  if (!g.items.length) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 4, class: 'empty ok' }, 'No gaps — every block in the historical range is indexed.')));
  } else {
    tbody.replaceChildren.apply(tbody, g.items.map((gap) => el('tr', null,
      el('td', { class: 'num mono' }, fmtInt(gap.start)),
      el('td', { class: 'num mono' }, fmtInt(gap.end)),
      el('td', { class: 'num mono' }, fmtInt(isNum(gap.size) ? gap.size : gap.end - gap.start + 1)),
      el('td', { class: 'act' }, el('button', {
        type: 'button',
        class: 'btn btn-small btn-ghost',
        title: 'Prefill the backfill form with this range',
        onclick: () => prefillRange(gap.start, gap.end),
      }, 'Backfill this')))));
  }
  setText('gaps-count', g.items.length ? 'Showing ' + plural(g.items.length, 'gap', 'gaps') + (isNum(total) ? ' of ' + fmtInt(total) : '') : '');
  const pages = state.gapPages[name] || 1;
  $('gaps-more').hidden = g.nextAfter === null || pages >= MAX_GAP_PAGES;
  $('gaps-less').hidden = pages <= 1;
  $('gaps-count').parentElement.hidden = !g.items.length && $('gaps-more').hidden && $('gaps-less').hidden;
}

// Running first, then planned, then paused; then the finished ones (3).
export function statusOrder(b) {
  return b.status === 'running' ? 0 : b.status === 'planned' ? 1 : b.status === 'paused' ? 2 : 3;
}

export function renderBackfills(name) {
  const list = (state.backfills[name] || []).slice();
  const err = state.backfillsErr[name];
  const errBox = $('bf-error');
  errBox.hidden = !err;
  errBox.textContent = err ? 'Could not refresh backfills: ' + err + (state.backfills[name] ? ' (showing last good list)' : '') : '';
  list.sort((a, b) => statusOrder(a) - statusOrder(b) ||
    (parseTime(b.requested_at) || 0) - (parseTime(a.requested_at) || 0));
  const active = list.filter((b) => statusOrder(b) < 3);
  const finished = list.filter((b) => statusOrder(b) === 3);
  const shownFinished = state.showAllBackfills ? finished : finished.slice(0, FINISHED_BACKFILLS_SHOWN);
  const shown = active.concat(shownFinished);
  const note = viewerNote();
  setText('bf-note', plural(active.length, 'active', 'active') + ' · ' + fmtInt(finished.length) + ' finished' + (note ? ' · ' + note : ''));

  const tbody = $('bf-body');
  if (!state.backfills[name]) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 11, class: 'empty' }, err ? 'No backfill data.' : 'Loading…')));
  } else if (!shown.length) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 11, class: 'empty' }, 'No backfills for this chain yet.')));
  } else {
    const rows = [];
    for (const b of shown) rows.push.apply(rows, backfillRows(b));
    tbody.replaceChildren.apply(tbody, rows);
  }
  const toggle = $('bf-toggle');
  toggle.hidden = finished.length <= FINISHED_BACKFILLS_SHOWN;
  toggle.textContent = state.showAllBackfills ? 'Show recent only' : 'Show all ' + fmtInt(finished.length) + ' finished';
  setText('bf-count', shown.length < list.length ? 'Showing ' + fmtInt(shown.length) + ' of ' + fmtInt(list.length) : (list.length ? 'Showing all ' + fmtInt(list.length) : ''));
  $('bf-count').parentElement.hidden = !list.length;
}

export function backfillRows(b) {
  const bt = b.batches || {};
  const batchTotal = ['planned', 'queued', 'running', 'done', 'failed', 'cancelled'].reduce((n, k) => n + (isNum(bt[k]) ? bt[k] : 0), 0);
  let frac = null;
  if (isNum(b.blocks_total) && b.blocks_total > 0 && isNum(b.blocks_done)) frac = Math.min(1, b.blocks_done / b.blocks_total);
  else if (b.status === 'completed') frac = 1;
  const pctText = frac === null ? '' : fmtPct(frac * 100);
  const isActive = b.status === 'running' || b.status === 'planned';

  const started = parseTime(b.started_at);
  const finished = parseTime(b.finished_at);
  const requested = parseTime(b.requested_at);
  let runTime = '—';
  if (started !== null) runTime = fmtDuration(((finished !== null ? finished : Date.now()) - started) / 1000) + (finished === null ? ' so far' : '');

  const range = isNum(b.from) || isNum(b.to) ? fmtRange(b.from, b.to) : (b.mode === 'gaps' ? 'all gaps' : '—');
  const id = String(b.id || '');

  const batchCell = el('td', null,
    el('div', { class: 'mono nowrap' }, fmtInt(bt.done) + ' / ' + fmtInt(batchTotal) + ' done'),
    el('div', { class: 'batch-chips' },
      bt.running ? el('span', { class: 'chip chip-running' }, fmtInt(bt.running) + ' running') : null,
      bt.queued ? el('span', { class: 'chip' }, fmtInt(bt.queued) + ' queued') : null,
      bt.planned ? el('span', { class: 'chip' }, fmtInt(bt.planned) + ' planned') : null,
      bt.failed ? el('span', { class: 'chip chip-failed' }, fmtInt(bt.failed) + ' failed') : null,
      bt.cancelled ? el('span', { class: 'chip' }, fmtInt(bt.cancelled) + ' cancelled') : null));

  const open = state.detail && state.detail.id === id;
  const row = el('tr', {
    class: 'bf-row bf-' + b.status + (b.last_error ? ' has-error' : '') + (open ? ' bf-open' : ''),
    'data-backfill': id,
    title: 'Click for details and blocks/s over time',
    onclick: (ev) => { if (!ev.target.closest('button')) openDetail(id); },
  },
    el('td', { class: 'mono id' }, el('span', { class: 'id-text', title: id }, id)),
    el('td', null, b.mode || '—', isNum(b.priority) ? el('div', { class: 'muted small', title: 'priority: higher runs first' }, 'priority ' + b.priority) : null),
    el('td', { class: 'mono nowrap' }, range),
    el('td', null, el('span', { class: 'badge badge-' + b.status }, b.status)),
    el('td', { class: 'col-progress' },
      el('div', { class: 'progress' + (isActive ? ' active' : '') },
        el('div', { class: 'progress-fill fill-' + b.status, style: 'width:' + ((frac || 0) * 100) + '%' })),
      el('div', { class: 'progress-text mono' },
        fmtInt(b.blocks_done) + ' / ' + fmtInt(b.blocks_total) + ' blocks',
        pctText ? el('span', { class: 'muted' }, ' · ' + pctText) : null)),
    batchCell,
    el('td', { class: 'num mono nowrap' }, isActive ? fmtRate(b.blocks_per_second) : '—'),
    el('td', { class: 'num mono nowrap' }, isActive ? fmtDuration(b.eta_seconds) : '—'),
    el('td', { class: 'nowrap', title: b.requested_at || '' }, fmtStamp(requested), el('div', { class: 'muted small' }, ago(requested))),
    el('td', { class: 'mono nowrap' }, runTime),
    el('td', { class: 'act' }, controlNodes(b)));
  const rows = [row];
  if (b.last_error) {
    rows.push(el('tr', { class: 'bf-error-row' },
      el('td', { colspan: 11 }, el('span', { class: 'err-label' }, 'last error'), el('span', { class: 'mono' }, redactUrls(b.last_error)))));
  }
  return rows;
}
