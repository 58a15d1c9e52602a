// Unit tests of the dashboard's fleet module and of the API client's field errors, without a
// browser (run: node --test admin-ui/test/). The modules touch the DOM only when called.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { boundsPatch, fmtHeartbeat, splitFieldErrors, workersServing } from '../js/fleet.js';
import { api } from '../js/network.js';

test('a worker serves a chain when it names it or serves every chain (chains null)', () => {
  const workers = [
    { id: 'all', chains: null },
    { id: 'a-only', chains: ['a'] },
    { id: 'b-and-a', chains: ['b', 'a'] },
    { id: 'b-only', chains: ['b'] },
  ];
  assert.deepEqual(workersServing(workers, 'a').map((w) => w.id), ['all', 'a-only', 'b-and-a']);
  assert.deepEqual(workersServing(workers, 'c').map((w) => w.id), ['all']);
  assert.deepEqual(workersServing(null, 'a'), []);
});

test('only the bound that changed is sent, so raising max never resets min', () => {
  const chain = { min_workers: 3, max_workers: 3 };
  assert.deepEqual(boundsPatch(chain, '3', '9'), { max_workers: 9 });
  assert.deepEqual(boundsPatch(chain, ' 5 ', '3'), { min_workers: 5 });
  assert.deepEqual(boundsPatch(chain, '5', '2'), { min_workers: 5, max_workers: 2 });
  assert.deepEqual(boundsPatch(chain, '3', '3'), {});
});

test('text that is not a whole number goes to the API as it is, for the API to judge', () => {
  const chain = { min_workers: 1, max_workers: 4 };
  assert.deepEqual(boundsPatch(chain, 'two', '4'), { min_workers: 'two' });
  assert.deepEqual(boundsPatch(chain, '1', '-1'), { max_workers: '-1' });
  assert.deepEqual(boundsPatch(chain, '', '4'), { min_workers: '' });
});

test('field errors of the bounds go next to their inputs, the others to the result line', () => {
  const split = splitFieldErrors({
    min_workers: 'must not exceed max_workers (3)',
    batch_size: 'must be between 1 and 10000 (got 0)',
  });
  assert.deepEqual(split.atInputs, { min_workers: 'must not exceed max_workers (3)' });
  assert.deepEqual(split.other, ['batch_size: must be between 1 and 10000 (got 0)']);
  assert.deepEqual(splitFieldErrors(null), { atInputs: {}, other: [] });
});

test('heartbeat ages read as seconds, then as durations', () => {
  assert.equal(fmtHeartbeat(1.25), '1.3s ago');
  assert.equal(fmtHeartbeat(0), '0.0s ago');
  assert.equal(fmtHeartbeat(125), '2m 05s ago');
  assert.equal(fmtHeartbeat(null), '—');
});

test('a 422 with field errors reaches the caller with its fields', async (t) => {
  const answer = {
    error: 'invalid fields: min_workers: must not exceed max_workers (3)',
    fields: { min_workers: 'must not exceed max_workers (3)' },
  };
  t.mock.method(globalThis, 'fetch', async () => new Response(JSON.stringify(answer), {
    status: 422,
    headers: { 'content-type': 'application/json' },
  }));
  await assert.rejects(api('/v1/chains/a', { method: 'PATCH', body: '{}' }), (e) => {
    assert.equal(e.kind, 'http');
    assert.equal(e.httpStatus, 422);
    assert.deepEqual(e.fields, answer.fields);
    assert.match(e.message, /HTTP 422: invalid fields: min_workers/);
    return true;
  });
});

test('an error without fields has none', async (t) => {
  t.mock.method(globalThis, 'fetch', async () => new Response(JSON.stringify({ error: 'no chain named a' }), {
    status: 404,
  }));
  await assert.rejects(api('/v1/chains/a'), (e) => e.fields === null && e.httpStatus === 404);
});
