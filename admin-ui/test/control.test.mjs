// Unit tests of the key handling (auth.js), the controls a role allows (controls.js) and the
// blocks/s series (chart.js), without a browser (run: node --test admin-ui/test/).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { state } from '../js/config.js';
import { ASSUMED_WHOAMI, authHeaders, describeWhoami, forgetKey, keyRemembered, roleAtLeast, storeKey, storedKey, validKey } from '../js/auth.js';
import { controlsFor, mergeBackfill, needsConfirm } from '../js/controls.js';
import { progressSeries } from '../js/chart.js';
import { api, loadWhoami } from '../js/network.js';
import { statusOrder } from '../js/render.js';

// A Storage stand-in (node has no localStorage).
function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); },
  };
}

function withStorage(t) {
  globalThis.localStorage = memoryStorage();
  globalThis.sessionStorage = memoryStorage();
  t.after(() => {
    delete globalThis.localStorage;
    delete globalThis.sessionStorage;
  });
}

test('a remembered key lives in localStorage, another one in this tab only; forget removes both', (t) => {
  withStorage(t);
  assert.equal(storedKey(), null);
  assert.deepEqual(authHeaders(), {});
  storeKey('  bf_abc.secret  ', true);
  assert.equal(storedKey(), 'bf_abc.secret');
  assert.equal(keyRemembered(), true);
  assert.deepEqual(authHeaders(), { Authorization: 'Bearer bf_abc.secret' });
  storeKey('bf_tab.only', false);
  assert.equal(keyRemembered(), false, 'the remembered key is replaced');
  assert.equal(localStorage.getItem('blockfill.apiKey'), null);
  assert.equal(storedKey(), 'bf_tab.only');
  forgetKey();
  assert.equal(storedKey(), null);
  assert.deepEqual(authHeaders(), {});
});

test('only a whole printable key is accepted', () => {
  assert.ok(validKey('bf_01J.abcDEF-_~'));
  assert.ok(validKey('  padded  '));
  for (const bad of ['', '   ', 'two words', 'tab\there', 'ünïcode', 'x'.repeat(513)]) {
    assert.equal(validKey(bad), false, JSON.stringify(bad));
  }
});

test('roles are ordered viewer < operator < admin; unknown roles may do nothing', () => {
  assert.ok(roleAtLeast('admin', 'operator'));
  assert.ok(roleAtLeast('operator', 'operator'));
  assert.ok(roleAtLeast('viewer', 'viewer'));
  assert.equal(roleAtLeast('viewer', 'operator'), false);
  assert.equal(roleAtLeast('operator', 'admin'), false);
  assert.equal(roleAtLeast(undefined, 'viewer'), false);
  assert.equal(roleAtLeast('root', 'viewer'), false);
});

test('the header names the key and role, never the secret', () => {
  assert.equal(describeWhoami({ auth: 'key', key_id: 'k1', name: 'ops-bot', role: 'operator' }), 'ops-bot · operator');
  assert.equal(describeWhoami({ auth: 'key', key_id: 'k1', name: null, role: 'viewer' }), 'key k1 · viewer');
  assert.equal(describeWhoami(ASSUMED_WHOAMI), 'admin · loopback');
  assert.equal(describeWhoami({ auth: 'insecure', role: 'admin' }), 'admin · no auth (insecure)');
  assert.equal(describeWhoami(null), 'no key');
});

test('every request carries the stored key; a 401 asks for one', async (t) => {
  withStorage(t);
  storeKey('bf_k.s3cret', true);
  const seen = [];
  t.mock.method(globalThis, 'fetch', async (path, opts) => {
    seen.push(opts.headers);
    return new Response(JSON.stringify({ error: 'a valid API key is required', code: 'unauthorized' }), { status: 401 });
  });
  state.needKey = false;
  await assert.rejects(api('/v1/backfills/x/pause', { method: 'POST', headers: { 'X-Other': '1' } }), (e) => {
    assert.equal(e.httpStatus, 401);
    assert.doesNotMatch(e.message, /s3cret/, 'the key is never in an error text');
    return true;
  });
  assert.deepEqual(seen[0], { Authorization: 'Bearer bf_k.s3cret', 'X-Other': '1' });
  assert.equal(state.needKey, true);
  state.needKey = false;
});

test('a 401 to a request sent before the key changed is stale: it neither asks for a key nor signs out', async (t) => {
  withStorage(t);
  let answer;
  t.mock.method(globalThis, 'fetch', () => new Promise((resolve) => { answer = resolve; }));
  state.needKey = false;
  state.whoami = { auth: 'key', key_id: 'k', name: 'n', role: 'viewer' };
  const inFlight = loadWhoami(true);
  // The operator saves a key while the keyless request is still on its way.
  storeKey('bf_k.n3w', true);
  answer(new Response(JSON.stringify({ error: 'a valid API key is required', code: 'unauthorized' }), { status: 401 }));
  await inFlight;
  assert.equal(state.needKey, false, 'a stale 401 does not reopen the key prompt');
  assert.equal(state.whoami.role, 'viewer', 'a stale 401 does not sign the page out');
  state.whoami = null;
});

test('an API without /v1/whoami (404) is taken as loopback admin; a 401 leaves no role', async (t) => {
  t.mock.method(globalThis, 'fetch', async () => new Response(JSON.stringify({ error: 'not found' }), { status: 404 }));
  await loadWhoami(true);
  assert.equal(state.whoami.role, 'admin');
  assert.equal(state.whoami.auth, 'loopback');
  assert.equal(state.whoami.assumed, true);
  t.mock.restoreAll();
  t.mock.method(globalThis, 'fetch', async () => new Response(JSON.stringify({ error: 'no key' }), { status: 401 }));
  await loadWhoami(true);
  assert.equal(state.whoami, null);
  assert.equal(state.needKey, true);
  t.mock.restoreAll();
  t.mock.method(globalThis, 'fetch', async () => new Response(JSON.stringify({ auth: 'key', key_id: 'k', name: 'n', role: 'viewer' }), { status: 200 }));
  await loadWhoami(true);
  assert.equal(state.whoami.role, 'viewer');
  assert.equal(state.needKey, false);
});

test('controls follow the status, and only operators and admins get them', () => {
  const b = (status, extra) => Object.assign({ id: 'b', mode: 'range', status: status, batches: { failed: 0 } }, extra || {});
  assert.deepEqual(controlsFor(b('running'), 'operator'), ['pause', 'cancel']);
  assert.deepEqual(controlsFor(b('planned'), 'admin'), ['pause', 'cancel']);
  assert.deepEqual(controlsFor(b('paused'), 'operator'), ['resume', 'cancel']);
  assert.deepEqual(controlsFor(b('completed'), 'admin'), []);
  assert.deepEqual(controlsFor(b('cancelled'), 'admin'), []);
  assert.deepEqual(controlsFor(b('failed', { batches: { failed: 2 } }), 'operator'), ['retry']);
  assert.deepEqual(controlsFor(b('running', { quarantined_blocks: 1 }), 'operator'), ['pause', 'cancel', 'retry']);
  assert.deepEqual(controlsFor(b('running'), 'viewer'), [], 'viewers see state only');
  assert.deepEqual(controlsFor(b('running'), undefined), []);
  assert.deepEqual(controlsFor(b('running', { mode: 'live' }), 'admin'), [], 'the live lane is steered by live_sync');
});

test('cancel needs a second click within the confirm time; the others do not', () => {
  const now = 1000;
  assert.equal(needsConfirm('pause', 'a', null, now), false);
  assert.equal(needsConfirm('cancel', 'a', null, now), true);
  assert.equal(needsConfirm('cancel', 'a', { id: 'a', action: 'cancel', until: now + 1 }, now), false);
  assert.equal(needsConfirm('cancel', 'a', { id: 'a', action: 'cancel', until: now }, now), true, 'expired');
  assert.equal(needsConfirm('cancel', 'a', { id: 'b', action: 'cancel', until: now + 1 }, now), true, 'another backfill');
});

test("a control's answer replaces the backfill in the list", () => {
  const list = [{ id: 'a', status: 'running', blocks_done: 5 }, { id: 'b', status: 'running' }];
  const merged = mergeBackfill(list, { id: 'a', status: 'paused', paused_at: 't' });
  assert.deepEqual(merged[0], { id: 'a', status: 'paused', blocks_done: 5, paused_at: 't' });
  assert.equal(merged[1], list[1]);
  assert.equal(mergeBackfill(undefined, { id: 'a' }), undefined);
});

test('paused backfills sort with the active ones, after running and planned', () => {
  const order = ['completed', 'paused', 'running', 'cancelled', 'planned'].map((s) => ({ status: s }))
    .sort((a, b) => statusOrder(a) - statusOrder(b)).map((b) => b.status);
  assert.deepEqual(order.slice(0, 3), ['running', 'planned', 'paused']);
});

test('the blocks/s series: bucket starts in seconds, a closing point, peak and mean', () => {
  const s = progressSeries({
    bucket_seconds: 10,
    buckets: [
      { start: '2026-12-03T00:00:00Z', blocks: 100, blocks_per_second: 10 },
      { start: '2026-12-03T00:00:10Z', blocks: 0, blocks_per_second: 0 },
      { start: '2026-12-03T00:00:20Z', blocks: 300, blocks_per_second: 30 },
    ],
  });
  const t0 = Date.parse('2026-12-03T00:00:00Z') / 1000;
  assert.deepEqual(s.xs, [t0, t0 + 10, t0 + 20, t0 + 30]);
  assert.deepEqual(s.ys, [10, 0, 30, 30]);
  assert.equal(s.total, 400);
  assert.equal(s.peak, 30);
  assert.equal(Math.round(s.mean * 1000) / 1000, 13.333);
  const empty = progressSeries(null);
  assert.deepEqual([empty.xs, empty.ys, empty.total, empty.mean], [[], [], 0, 0]);
  // A bucket without a rate gets one from its blocks.
  assert.deepEqual(progressSeries({ bucket_seconds: 4, buckets: [{ start: '2026-12-03T00:00:00Z', blocks: 8 }] }).ys, [2, 2]);
});
