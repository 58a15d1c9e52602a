// Which chain is shown: from the URL hash, kept in it.

import { state } from './config.js';
import { enc, poll } from './network.js';
import { render } from './render.js';
import { resetConfirm, setResult } from './form.js';

export function hashChain() {
  const m = /(?:^#|&)chain=([^&]*)/.exec(location.hash);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch (e) { return null; }
}

export function pickSelection() {
  const names = (state.chains || []).map((c) => c.name);
  const wanted = hashChain();
  if (wanted !== null && names.includes(wanted)) state.selected = wanted;
  else if (!names.includes(state.selected)) state.selected = names.length ? names[0] : null;
}

export function select(name) {
  if (name === state.selected) return;
  state.selected = name;
  history.replaceState(null, '', '#chain=' + enc(name));
  resetConfirm();
  setResult(null);
  render();
  poll();
}

export function wireHash() {
  window.addEventListener('hashchange', () => {
    const want = hashChain();
    if (want !== null && want !== state.selected) select(want);
  });
}
