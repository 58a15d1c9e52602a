// The controls of a backfill the caller's role allows (operator and admin): pause, resume,
// cancel (with a second click to confirm) and retry its failed batches. Each calls the API
// (POST /v1/backfills/{id}/pause|resume|cancel|retry-failed) and shows its answer, or its error
// text (409 and the like), next to the buttons. Viewers see the state only.

import { CONFIRM_MS, state } from './config.js';
import { canOperate, roleAtLeast } from './auth.js';
import { plural } from './format.js';
import { el } from './dom.js';
import { api, enc, poll } from './network.js';
import { render } from './render.js';

export const CONTROL = {
  pause: { label: 'Pause', title: 'Stop queueing its batches (running ones finish)', path: 'pause' },
  resume: { label: 'Resume', title: 'Queue its batches again', path: 'resume' },
  cancel: { label: 'Cancel', title: 'End it as cancelled (asks to confirm)', path: 'cancel' },
  retry: { label: 'Retry failed', title: 'Put its failed and quarantined batches back to work', path: 'retry-failed' },
};

// The actions `role` may take on backfill `b`, in button order. A chain's live lane is steered
// by its live_sync setting, not from here.
export function controlsFor(b, role) {
  if (!b || !roleAtLeast(role, 'operator') || b.mode === 'live') return [];
  const out = [];
  if (b.status === 'planned' || b.status === 'running') out.push('pause');
  if (b.status === 'paused') out.push('resume');
  if (b.status === 'planned' || b.status === 'running' || b.status === 'paused') out.push('cancel');
  const failed = (b.batches && b.batches.failed) || 0;
  if (failed > 0 || (b.quarantined_blocks || 0) > 0) out.push('retry');
  return out;
}

// Whether a click on `action` of backfill `id` only arms it (cancel asks for a second click).
export function needsConfirm(action, id, confirm, now) {
  if (action !== 'cancel') return false;
  return !(confirm && confirm.id === id && confirm.action === action && confirm.until > now);
}

// Replaces backfill `updated` in the chain's list (the control routes answer the backfill).
export function mergeBackfill(list, updated) {
  if (!Array.isArray(list) || !updated || !updated.id) return list;
  return list.map((b) => (b.id === updated.id ? Object.assign({}, b, updated) : b));
}

export async function runControl(b, action) {
  const id = String(b.id);
  if (state.controlBusy[id]) return;
  if (needsConfirm(action, id, state.confirm, Date.now())) {
    state.confirm = { id: id, action: action, until: Date.now() + CONFIRM_MS };
    setTimeout(() => { if (state.confirm && state.confirm.until <= Date.now()) { state.confirm = null; render(); } }, CONFIRM_MS + 50);
    render();
    return;
  }
  state.confirm = null;
  state.controlBusy[id] = action;
  delete state.controlMsg[id];
  render();
  try {
    const res = await api('/v1/backfills/' + enc(id) + '/' + CONTROL[action].path, { method: 'POST' });
    if (action === 'retry') {
      const n = res && typeof res.retried === 'number' ? res.retried : 0;
      state.controlMsg[id] = { kind: 'ok', text: plural(n, 'batch', 'batches') + ' put back to work.' };
    } else if (res && res.id) {
      state.backfills[res.chain] = mergeBackfill(state.backfills[res.chain], res);
      if (state.detail && state.detail.id === id) state.detail.view = Object.assign({}, state.detail.view || {}, res);
      state.controlMsg[id] = { kind: 'ok', text: CONTROL[action].label + ': now ' + res.status + '.', status: res.status };
    }
  } catch (e) {
    state.controlMsg[id] = { kind: 'error', text: CONTROL[action].label + ' refused — ' + e.message };
  } finally {
    delete state.controlBusy[id];
    render();
    poll();
  }
}

// The buttons (and the last outcome) for backfill `b`, or null when there are none to show.
export function controlNodes(b) {
  const id = String(b.id);
  const actions = controlsFor(b, state.whoami && state.whoami.role);
  // A control's outcome shows while the backfill is in the state it led to.
  const kept = state.controlMsg[id];
  const msg = kept && (!kept.status || kept.status === b.status) ? kept : null;
  if (!actions.length && !msg) return null;
  const busy = state.controlBusy[id];
  const armed = state.confirm && state.confirm.id === id && state.confirm.until > Date.now() ? state.confirm.action : null;
  return el('div', { class: 'bf-controls', 'data-backfill': id },
    actions.map((a) => el('button', {
      type: 'button',
      class: 'btn btn-small ctl ctl-' + a + (armed === a ? ' btn-confirm' : ''),
      'data-action': a,
      title: CONTROL[a].title,
      disabled: !!busy,
      onclick: (ev) => { ev.stopPropagation(); runControl(b, a); },
    }, busy === a ? CONTROL[a].label + '…' : armed === a ? 'Confirm cancel' : CONTROL[a].label)),
    msg ? el('div', { class: 'ctl-msg ctl-msg-' + msg.kind, role: 'status' }, msg.text) : null);
}

// The note for callers who may not steer: what role would.
export function viewerNote() {
  if (canOperate() || !state.whoami) return null;
  return 'Your role (' + state.whoami.role + ') shows state only; pausing, resuming, cancelling and retrying need operator.';
}
