// The fleet panel of the selected chain: its size (running / desired / min / max, why, backlog,
// ETA) from GET /v1/chains/{name}/fleet, the workers serving it from GET /v1/workers, and the
// min/max editor, which sends only the changed bounds with PATCH /v1/chains/{name} and shows the
// API's field errors next to the inputs (the API is the one judge of what is valid).

import { state } from './config.js';
import { dec1Fmt, fmtDuration, fmtInt, fmtRate, isNum, plural } from './format.js';
import { $, el } from './dom.js';
import { api, enc, poll } from './network.js';

// What each `reason` of the fleet answer means.
export const REASON = {
  no_backlog: 'no backlog: the minimum',
  measuring: 'backlog, rate not measured yet',
  backlog: 'sized to drain the backlog within 10 minutes',
  hysteresis: 'kept: shrinking would change too little',
  at_maximum: 'capped: the backlog wants more than the maximum',
  at_minimum: 'floored: the backlog wants fewer than the minimum',
};

// A report older than this (three missed reports) is shown as late.
export const LATE_HEARTBEAT_SECONDS = 6;

// The bound inputs and the fields of the API they edit.
export const BOUNDS = [
  { field: 'min_workers', input: 'fleet-min', error: 'fleet-min-error' },
  { field: 'max_workers', input: 'fleet-max', error: 'fleet-max-error' },
];

let submitting = false;

// The workers serving `chain`: a worker whose `chains` is null serves every chain.
export function workersServing(workers, chain) {
  return (workers || []).filter((w) => w && (w.chains === null || w.chains === undefined ||
    (Array.isArray(w.chains) && w.chains.includes(chain))));
}

// The PATCH body for the bound inputs: only the bounds whose value differs from the chain's, so
// a change of one never resets the other. Text that is not a whole number is sent as it is: the
// API says what is wrong with it.
export function boundsPatch(chain, minRaw, maxRaw) {
  const read = (raw) => {
    const t = String(raw === null || raw === undefined ? '' : raw).trim();
    return /^\d+$/.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : t;
  };
  const body = {};
  const min = read(minRaw);
  const max = read(maxRaw);
  if (min !== chain.min_workers) body.min_workers = min;
  if (max !== chain.max_workers) body.max_workers = max;
  return body;
}

// Splits the field errors of a refused change: those shown next to an input, and the rest.
export function splitFieldErrors(fields) {
  const atInputs = {};
  const other = [];
  for (const name of Object.keys(fields || {})) {
    if (BOUNDS.some((b) => b.field === name)) atInputs[name] = String(fields[name]);
    else other.push(name + ': ' + fields[name]);
  }
  return { atInputs: atInputs, other: other };
}

export function fmtHeartbeat(sec) {
  if (!isNum(sec)) return '—';
  return sec < 60 ? dec1Fmt.format(Math.max(0, sec)) + 's ago' : fmtDuration(sec) + ' ago';
}

export function renderFleet(name) {
  const chain = (state.chains || []).find((c) => c.name === name);
  if (state.fleetShown !== name) {
    // Another chain: its own bounds, no errors or result of the last one.
    state.fleetShown = name;
    state.fleetEdit = null;
    showFieldErrors({});
    setFleetResult(null);
  }
  const f = state.fleet[name];
  const err = state.fleetErr[name];
  const errBox = $('fleet-error');
  errBox.hidden = !err;
  errBox.textContent = err ? 'Could not refresh the fleet: ' + err + (f ? ' (showing last good values)' : '') : '';
  const body = $('fleet-body');
  if (!f) {
    body.replaceChildren(el('div', { class: 'empty' }, err ? 'No fleet data.' : 'Loading…'));
  } else {
    const stat = (key, label, value, title) => el('div', { class: 'fleet-stat', 'data-fleet': key, title: title || null },
      el('span', { class: 'fleet-num mono' }, value),
      el('span', { class: 'fleet-label' }, label));
    const list = el('dl', { class: 'kv kv-2col' });
    const row = (label, value) => {
      list.appendChild(el('dt', null, label));
      list.appendChild(el('dd', { class: 'mono' }, value));
    };
    row('Reason', el('span', { 'data-fleet': 'reason', title: f.reason }, REASON[f.reason] || String(f.reason || '—')));
    row('Backlog', plural(f.backlog_blocks, 'block', 'blocks'));
    row('Per worker', fmtRate(f.per_worker_blocks_per_second));
    row('ETA', el('span', { 'data-fleet': 'eta' }, isNum(f.eta_seconds) ? fmtDuration(f.eta_seconds)
      : (f.backlog_blocks > 0 ? 'not measured yet' : '—')));
    body.replaceChildren(
      el('div', { class: 'fleet-stats' },
        stat('running', 'running', fmtInt(f.running), 'Workers serving this chain that reported within 10 s'),
        stat('desired', 'desired', fmtInt(f.desired), 'What the backlog and the measured rate ask for, within [min, max]'),
        stat('min', 'min', fmtInt(f.min_workers)),
        stat('max', 'max', fmtInt(f.max_workers))),
      list);
  }
  renderFleetWorkers(name);
  if (chain) renderBoundsForm(chain);
}

export function renderFleetWorkers(name) {
  const errBox = $('fleet-workers-error');
  const err = state.workersErr;
  errBox.hidden = !err;
  errBox.textContent = err ? 'Could not refresh workers: ' + err + (state.workers ? ' (showing last good list)' : '') : '';
  const tbody = $('fleet-workers-body');
  if (!state.workers) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 6, class: 'empty' }, err ? 'No worker data.' : 'Loading…')));
    setNote(name, null);
    return;
  }
  const serving = workersServing(state.workers, name);
  setNote(name, serving.length);
  if (!serving.length) {
    tbody.replaceChildren(el('tr', null, el('td', { colspan: 6, class: 'empty' }, 'No worker serves this chain.')));
    return;
  }
  tbody.replaceChildren.apply(tbody, serving.map((w) => {
    const late = isNum(w.heartbeat_age_seconds) && w.heartbeat_age_seconds > LATE_HEARTBEAT_SECONDS;
    return el('tr', { class: 'fleet-worker' },
      el('td', { class: 'mono' }, el('span', { class: 'id-text', title: String(w.id || '') }, String(w.id || '—'))),
      el('td', { class: 'mono' }, String(w.host || '—')),
      el('td', { class: 'nowrap' }, fmtHeartbeat(w.heartbeat_age_seconds),
        late ? el('span', { class: 'chip chip-warn' }, 'late') : null),
      el('td', { class: 'num mono' }, fmtInt(w.in_flight) + ' / ' + fmtInt(w.concurrency)),
      el('td', { class: 'num mono' }, fmtRate(w.blocks_per_second)),
      el('td', null, Array.isArray(w.chains) ? w.chains.join(', ') : 'all chains',
        Array.isArray(w.lanes) ? el('span', { class: 'muted' }, ' · ' + w.lanes.join(', ')) : null));
  }));
}

function setNote(name, count) {
  const f = state.fleet[name];
  const parts = [];
  if (count !== null) parts.push(plural(count, 'worker', 'workers') + ' serving ' + name);
  if (f) parts.push('bounds ' + f.min_workers + '–' + f.max_workers);
  $('fleet-note').textContent = parts.join(' · ');
}

// Fills the inputs with the chain's bounds unless the operator is editing them.
export function renderBoundsForm(chain) {
  const edit = state.fleetEdit;
  const editing = edit && edit.chain === chain.name && edit.dirty;
  if (!editing) {
    $('fleet-min').value = String(chain.min_workers);
    $('fleet-max').value = String(chain.max_workers);
  }
  $('fleet-current').textContent = 'now ' + chain.min_workers + '–' + chain.max_workers;
}

export function showFieldErrors(atInputs) {
  for (const b of BOUNDS) {
    const why = atInputs[b.field];
    const box = $(b.error);
    box.hidden = !why;
    box.textContent = why ? why : '';
    $(b.input).setAttribute('aria-invalid', why ? 'true' : 'false');
  }
}

export function setFleetResult(kind, text) {
  const r = $('fleet-result');
  if (!kind) { r.hidden = true; r.textContent = ''; return; }
  r.hidden = false;
  r.className = 'result result-' + kind;
  r.textContent = text;
}

export async function onBoundsSubmit(ev) {
  ev.preventDefault();
  const name = state.selected;
  const chain = (state.chains || []).find((c) => c.name === name);
  if (!chain || submitting) return;
  const body = boundsPatch(chain, $('fleet-min').value, $('fleet-max').value);
  showFieldErrors({});
  if (!Object.keys(body).length) {
    setFleetResult('info', 'Nothing to change: the bounds are ' + chain.min_workers + '–' + chain.max_workers + '.');
    return;
  }
  submitting = true;
  const btn = $('fleet-submit');
  btn.disabled = true;
  try {
    const updated = await api('/v1/chains/' + enc(name), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (updated && updated.name === name) {
      state.chains = (state.chains || []).map((c) => (c.name === name ? updated : c));
    }
    state.fleetEdit = null;
    const shown = updated || chain;
    setFleetResult('ok', 'Saved: workers ' + shown.min_workers + '–' + shown.max_workers + ' on ' + name + '.');
    renderBoundsForm(shown);
    poll();
  } catch (e) {
    const split = splitFieldErrors(e.fields);
    showFieldErrors(split.atInputs);
    let text;
    if (e.kind === 'network') text = 'API unreachable, nothing changed: ' + e.message;
    else if (e.fields && !split.other.length) text = 'Rejected by the API, nothing changed: see the fields above.';
    else text = 'Rejected by the API, nothing changed: ' + (split.other.length ? split.other.join('; ') : e.message);
    setFleetResult('error', text);
  } finally {
    submitting = false;
    btn.disabled = false;
  }
}

export function wireFleetForm() {
  $('fleet-form').addEventListener('submit', onBoundsSubmit);
  for (const b of BOUNDS) {
    $(b.input).addEventListener('input', () => {
      state.fleetEdit = { chain: state.selected, dirty: true };
      setFleetResult(null);
    });
  }
  $('fleet-reset').addEventListener('click', () => {
    state.fleetEdit = null;
    showFieldErrors({});
    setFleetResult(null);
    const chain = (state.chains || []).find((c) => c.name === state.selected);
    if (chain) renderBoundsForm(chain);
  });
}
