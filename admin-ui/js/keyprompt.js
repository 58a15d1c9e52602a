// The key control in the header (who we are, from GET /v1/whoami) and the key dialog: paste a
// key, remember it in this browser or not, or forget it. The dialog opens by itself when the API
// answers 401. The key is read from the input once and never shown, logged or kept in the page.

import { state } from './config.js';
import { describeWhoami, forgetKey, keyRemembered, storeKey, storedKey, validKey } from './auth.js';
import { $, el } from './dom.js';
import { loadWhoami, poll } from './network.js';

export function renderKeyControl() {
  const btn = $('key-btn');
  if (!btn) return;
  const w = state.whoami;
  let text;
  let cls;
  if (w) {
    text = describeWhoami(w);
    cls = w.assumed ? 'pill pill-key pill-unknown' : 'pill pill-key pill-ok';
  } else if (state.needKey) {
    text = storedKey() ? 'key refused' : 'key needed';
    cls = 'pill pill-key pill-bad';
  } else {
    text = 'key: …';
    cls = 'pill pill-key pill-unknown';
  }
  btn.className = cls;
  btn.textContent = text;
  btn.title = w && w.assumed
    ? 'This API has no /v1/whoami yet: assuming loopback admin. Click to set a key.'
    : 'Who the API says you are (GET /v1/whoami). Click to set or forget a key.';
  if ($('key-dialog').open) renderWho();
}

function renderWho() {
  const w = state.whoami;
  const list = $('key-who');
  const row = (k, v) => [el('dt', null, k), el('dd', { class: 'mono' }, v)];
  if (!w) {
    list.replaceChildren.apply(list, row('Signed in', state.needKey ? 'no (the API answered 401)' : '—'));
  } else {
    list.replaceChildren.apply(list, [].concat(
      row('Auth', w.auth + (w.assumed ? ' (assumed: no /v1/whoami)' : '')),
      row('Key', w.auth === 'key' ? (w.name || '—') + (w.key_id ? ' (' + w.key_id + ')' : '') : 'none'),
      row('Role', String(w.role || '—'))));
  }
  const stored = storedKey();
  $('key-stored').textContent = stored
    ? 'A key is stored ' + (keyRemembered() ? 'in this browser.' : 'for this tab only.')
    : 'No key is stored.';
  $('key-forget').disabled = !stored;
}

function setKeyResult(kind, text) {
  const r = $('key-result');
  r.hidden = !kind;
  r.className = 'result' + (kind ? ' result-' + kind : '');
  r.textContent = text || '';
}

export function openKeyDialog(why) {
  const d = $('key-dialog');
  $('key-why').textContent = why || 'Requests carry this key as Authorization: Bearer …; the role it has decides which controls show.';
  $('key-remember').checked = keyRemembered() || !storedKey();
  setKeyResult(null);
  renderWho();
  if (!d.open) d.showModal();
  $('key-input').focus();
}

async function onSave(ev) {
  ev.preventDefault();
  const input = $('key-input');
  const key = input.value;
  if (!validKey(key)) {
    setKeyResult('error', 'Paste the whole key: printable characters, no spaces.');
    return;
  }
  storeKey(key, $('key-remember').checked);
  input.value = '';
  state.needKey = false;
  state.keyPromptDismissed = false;
  await loadWhoami(true).catch(() => {});
  renderWho();
  renderKeyControl();
  if (state.whoami && !state.whoami.assumed) {
    setKeyResult('ok', 'Signed in: ' + describeWhoami(state.whoami) + '.');
    setTimeout(() => { if ($('key-dialog').open && !state.needKey) $('key-dialog').close(); }, 700);
  } else if (state.needKey) {
    setKeyResult('error', 'The API refused this key (401). Check it, or ask an admin for a new one.');
  } else {
    setKeyResult('info', 'Key stored. ' + (state.whoamiErr || 'This API does not say who a key belongs to.'));
  }
  poll();
}

async function onForget() {
  forgetKey();
  state.needKey = false;
  await loadWhoami(true).catch(() => {});
  setKeyResult('info', 'The key is forgotten.');
  renderWho();
  renderKeyControl();
  poll();
}

export function wireKeyPrompt() {
  $('key-btn').addEventListener('click', () => openKeyDialog());
  $('key-form').addEventListener('submit', onSave);
  $('key-forget').addEventListener('click', onForget);
  $('key-close').addEventListener('click', () => {
    if (state.needKey) state.keyPromptDismissed = true;
    $('key-dialog').close();
  });
  $('key-dialog').addEventListener('cancel', () => { if (state.needKey) state.keyPromptDismissed = true; });
  window.addEventListener('blockfill:unauthorized', () => {
    if (!state.keyPromptDismissed && !$('key-dialog').open) {
      openKeyDialog(storedKey()
        ? 'The API refused the stored key (401). Paste another one.'
        : 'The API answered 401: it needs a key.');
    }
  });
}
