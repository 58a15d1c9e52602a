// The backfill form (validate, confirm, submit) and the buttons of the gaps and backfills panels.

import { GAP_PAGE_SIZE, MAX_GAP_PAGES, state } from './config.js';
import { fmtInt, fmtRange, isNum, plural } from './format.js';
import { $ } from './dom.js';
import { api, poll } from './network.js';
import { renderBackfills } from './render.js';

export let pending = null;   // payload awaiting confirmation
export let submitting = false;

export function mode() {
  const r = document.querySelector('input[name="mode"]:checked');
  return r ? r.value : 'range';
}

export function parseBlock(s) {
  const t = String(s).replace(/[\s,_]/g, '');
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

export function validate() {
  const chain = state.selected;
  if (!chain) return { error: 'Select a chain first.' };
  if (mode() === 'gaps') {
    const st = state.status[chain];
    const h = st && st.historical;
    const summary = h && h.missing_blocks_count > 0
      ? plural(h.gap_ranges_count, 'gap range', 'gap ranges') + ', ' + plural(h.missing_blocks_count, 'missing block', 'missing blocks')
      : 'no known gaps right now';
    return { payload: { chain: chain, mode: 'gaps' }, summary: 'fill all gaps on ' + chain + ' (' + summary + ')' };
  }
  const fromRaw = $('bf-from').value.trim();
  const toRaw = $('bf-to').value.trim();
  if (!fromRaw || !toRaw) return { error: 'Enter both a from and a to block.', soft: true };
  const from = parseBlock(fromRaw);
  const to = parseBlock(toRaw);
  if (from === null) return { error: '"From" must be a non-negative whole block number.' };
  if (to === null) return { error: '"To" must be a non-negative whole block number.' };
  if (from > to) return { error: '"From" must not be greater than "to".' };
  const n = to - from + 1;
  return { payload: { chain: chain, from: from, to: to }, summary: 'backfill ' + plural(n, 'block', 'blocks') + ' (' + fmtRange(from, to) + ') on ' + chain };
}

export function updateHint() {
  const hint = $('bf-hint');
  const isRange = mode() === 'range';
  $('range-fields').hidden = !isRange;
  const st = state.status[state.selected];
  if (isRange) {
    const h = st && st.historical;
    const live = st && st.live;
    $('bf-from').placeholder = h && isNum(h.from) ? fmtInt(h.from) : '0';
    $('bf-to').placeholder = live && isNum(live.safe_head) ? fmtInt(live.safe_head) : (h && isNum(h.to) ? fmtInt(h.to) : '');
  }
  const v = validate();
  hint.classList.toggle('bad', !!v.error && !v.soft);
  if (v.error) { hint.textContent = v.error; return; }
  let text = isRange ? 'Will ' + v.summary + '.' : 'Will ' + v.summary + '.';
  const safe = st && st.live && st.live.safe_head;
  if (isRange && isNum(safe) && v.payload.to > safe) {
    text += ' Note: "to" is beyond the safe head (' + fmtInt(safe) + ').';
    hint.classList.add('bad');
  }
  hint.textContent = text;
}

export function resetConfirm() {
  pending = null;
  const btn = $('bf-submit');
  btn.textContent = 'Start backfill…';
  btn.classList.remove('btn-confirm');
  $('bf-cancel').hidden = true;
}

export function setResult(kind, text) {
  const r = $('bf-result');
  if (!kind) { r.hidden = true; r.textContent = ''; return; }
  r.hidden = false;
  r.className = 'result result-' + kind;
  r.textContent = text;
}

export function prefillRange(start, end) {
  document.querySelector('input[name="mode"][value="range"]').checked = true;
  $('bf-from').value = String(start);
  $('bf-to').value = String(end);
  resetConfirm();
  setResult(null);
  updateHint();
  $('bf-form').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  $('bf-submit').focus({ preventScroll: true });
}

export async function onSubmit(ev) {
  ev.preventDefault();
  if (submitting) return;
  const v = validate();
  if (v.error) {
    // The hint under the fields already says what is wrong.
    resetConfirm();
    setResult(null);
    $('bf-hint').classList.add('bad');
    (mode() === 'range' ? (parseBlock($('bf-from').value) === null ? $('bf-from') : $('bf-to')) : $('bf-submit')).focus();
    return;
  }
  if (!pending) {
    pending = v.payload;
    const btn = $('bf-submit');
    btn.textContent = 'Confirm: ' + v.summary;
    btn.classList.add('btn-confirm');
    $('bf-cancel').hidden = false;
    setResult(null);
    return;
  }
  const payload = pending;
  submitting = true;
  const btn = $('bf-submit');
  btn.disabled = true;
  btn.textContent = 'Submitting…';
  try {
    const res = await api('/v1/backfills', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
    });
    const id = res && res.id ? String(res.id) : '(no id)';
    const st = res && res.status ? String(res.status) : 'accepted';
    setResult('ok', 'Backfill ' + id + ' accepted on ' + payload.chain + ' — status: ' + st + '.');
    poll();
  } catch (e) {
    const prefix = e.kind === 'network' ? 'API unreachable, backfill not submitted: ' : 'Rejected by the API — ';
    setResult('error', prefix + e.message);
  } finally {
    submitting = false;
    btn.disabled = false;
    resetConfirm();
  }
}

export function wireForm() {
  $('bf-form').addEventListener('submit', onSubmit);
  $('bf-cancel').addEventListener('click', () => { resetConfirm(); });
  document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener('change', () => {
    resetConfirm(); setResult(null); updateHint();
  }));
  ['bf-from', 'bf-to'].forEach((id) => $(id).addEventListener('input', () => { resetConfirm(); updateHint(); }));
}

export function wireButtons() {
  $('gaps-more').addEventListener('click', () => {
    const n = state.selected;
    if (!n) return;
    state.gapPages[n] = Math.min(MAX_GAP_PAGES, (state.gapPages[n] || 1) + 1);
    poll();
  });
  $('gaps-less').addEventListener('click', () => {
    const n = state.selected;
    if (!n) return;
    state.gapPages[n] = 1;
    if (state.gaps[n]) {
      // Trim right away; the next poll brings next_after up to date.
      const items = state.gaps[n].items;
      state.gaps[n] = {
        items: items.slice(0, GAP_PAGE_SIZE),
        nextAfter: items.length > GAP_PAGE_SIZE ? items[GAP_PAGE_SIZE - 1].end : state.gaps[n].nextAfter,
      };
    }
    poll();
  });
  $('bf-toggle').addEventListener('click', () => {
    state.showAllBackfills = !state.showAllBackfills;
    renderBackfills(state.selected);
  });
}
