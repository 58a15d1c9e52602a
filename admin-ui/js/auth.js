// The API key this browser sends (Authorization: Bearer <key>) and who the API says we are
// (GET /v1/whoami). The key is kept in localStorage when the operator asks to remember it, else
// in sessionStorage (this tab only); it is never logged or written into the page.

import { state } from './config.js';

export const KEY_STORAGE = 'blockfill.apiKey';

// Roles in order of what they may do.
export const ROLES = ['viewer', 'operator', 'admin'];

// What the page assumes when the API has no /v1/whoami (an API without keys answers only
// loopback clients, with every right).
export const ASSUMED_WHOAMI = { auth: 'loopback', key_id: null, name: null, role: 'admin', assumed: true };

function storages() {
  const out = [];
  try { if (typeof localStorage !== 'undefined') out.push(localStorage); } catch (e) { /* blocked */ }
  try { if (typeof sessionStorage !== 'undefined') out.push(sessionStorage); } catch (e) { /* blocked */ }
  return out;
}

// The stored key, or null.
export function storedKey() {
  for (const s of storages()) {
    try {
      const v = s.getItem(KEY_STORAGE);
      if (v) return v;
    } catch (e) { /* blocked */ }
  }
  return null;
}

// Whether the stored key is remembered across browser sessions (localStorage).
export function keyRemembered() {
  try { return typeof localStorage !== 'undefined' && !!localStorage.getItem(KEY_STORAGE); } catch (e) { return false; }
}

// Stores `key` (trimmed): in localStorage when `remember`, else for this tab only.
export function storeKey(key, remember) {
  forgetKey();
  const k = String(key || '').trim();
  if (!k) return;
  try {
    (remember ? localStorage : sessionStorage).setItem(KEY_STORAGE, k);
  } catch (e) { /* no storage: the key is not kept */ }
}

export function forgetKey() {
  for (const s of storages()) {
    try { s.removeItem(KEY_STORAGE); } catch (e) { /* blocked */ }
  }
}

// The headers that authenticate a request: none without a key.
export function authHeaders() {
  const k = storedKey();
  return k ? { Authorization: 'Bearer ' + k } : {};
}

// A key that may be sent as a header value: printable ASCII, no spaces inside.
export function validKey(key) {
  const k = String(key || '').trim();
  return k.length > 0 && k.length <= 512 && /^[\x21-\x7e]+$/.test(k);
}

// Whether `role` may do what `needed` may (unknown roles may do nothing).
export function roleAtLeast(role, needed) {
  const have = ROLES.indexOf(role);
  const want = ROLES.indexOf(needed);
  return have >= 0 && want >= 0 && have >= want;
}

// Whether the current caller may pause, resume, cancel, retry and start backfills.
export function canOperate() {
  return roleAtLeast(state.whoami && state.whoami.role, 'operator');
}

// The whoami answer as a short label for the header: "admin · loopback", "ops-bot · operator".
export function describeWhoami(w) {
  if (!w) return 'no key';
  const role = ROLES.includes(w.role) ? w.role : 'unknown role';
  if (w.auth === 'key') return (w.name ? w.name : 'key ' + (w.key_id || '?')) + ' · ' + role;
  if (w.auth === 'insecure') return role + ' · no auth (insecure)';
  return role + ' · ' + (w.auth === 'loopback' ? 'loopback' : String(w.auth || 'unknown'));
}

// Called on any 401: the page asks for a key (see keyprompt.js).
export function noteUnauthorized() {
  state.needKey = true;
  if (typeof window !== 'undefined' && typeof CustomEvent !== 'undefined') {
    window.dispatchEvent(new CustomEvent('blockfill:unauthorized'));
  }
}
