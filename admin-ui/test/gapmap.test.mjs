// Unit tests of the gap map's zoom arithmetic and gap picking (gapmap.js), without a browser
// (run: node --test admin-ui/test/).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MIN_WINDOW, blockAt, clampWindow, coveredFromGaps, gapAt, windowFromDrag, zoomAround } from '../js/gapmap.js';
import { coverageRuns } from '../js/render.js';

const FULL = { from: 0, to: 999_999 };

test('a window stays inside the range and at least the minimum wide', () => {
  assert.deepEqual(clampWindow({ from: -50, to: 49 }, FULL, MIN_WINDOW), { from: 0, to: 99 });
  assert.deepEqual(clampWindow({ from: 999_990, to: 1_000_100 }, FULL, MIN_WINDOW), { from: 999_889, to: 999_999 });
  assert.deepEqual(clampWindow({ from: 500, to: 501 }, FULL, MIN_WINDOW), { from: 500, to: 509 });
  assert.deepEqual(clampWindow({ from: 0, to: 5_000_000 }, FULL, MIN_WINDOW), FULL);
  assert.deepEqual(clampWindow({ from: 3, to: 4 }, { from: 3, to: 5 }, MIN_WINDOW), { from: 3, to: 5 }, 'a range narrower than the minimum');
});

test('zooming keeps the block under the pointer in place, down to the minimum window', () => {
  const win = zoomAround(FULL, FULL, 250_000, 1 / 2);
  assert.equal(win.to - win.from + 1, 500_000);
  assert.equal(blockAt(win, 0.25), 250_000, 'the pointer block stays at a quarter');
  let w = FULL;
  for (let i = 0; i < 40; i++) w = zoomAround(w, FULL, 123_456, 1 / 2);
  assert.equal(w.to - w.from + 1, MIN_WINDOW);
  assert.ok(w.from <= 123_456 && 123_456 <= w.to, JSON.stringify(w));
  let out = w;
  for (let i = 0; i < 40; i++) out = zoomAround(out, FULL, 123_456, 2);
  assert.deepEqual(out, FULL, 'zooming out ends at the whole range');
});

test('the block under a fraction of the bar, and the window of a drag either way', () => {
  const win = { from: 1_000, to: 1_099 };
  assert.equal(blockAt(win, 0), 1_000);
  assert.equal(blockAt(win, 0.5), 1_050);
  assert.equal(blockAt(win, 1), 1_099);
  assert.deepEqual(windowFromDrag(win, 0.1, 0.6, FULL), { from: 1_010, to: 1_060 });
  assert.deepEqual(windowFromDrag(win, 0.6, 0.1, FULL), { from: 1_010, to: 1_060 });
  assert.deepEqual(windowFromDrag(win, 0.5, 0.51, FULL), { from: 1_050, to: 1_059 }, 'at least the minimum');
});

test('the covered stretches of a window are the inverse of its gaps', () => {
  const gaps = [{ start: 100, end: 149 }, { start: 500, end: 699 }, { start: 750, end: 899 }];
  assert.deepEqual(coveredFromGaps(120, 600, gaps), [{ start: 150, end: 499 }]);
  assert.deepEqual(coveredFromGaps(0, 999, gaps), [
    { start: 0, end: 99 }, { start: 150, end: 499 }, { start: 700, end: 749 }, { start: 900, end: 999 },
  ]);
  assert.deepEqual(coveredFromGaps(500, 699, gaps), []);
  assert.deepEqual(coveredFromGaps(0, 9, []), [{ start: 0, end: 9 }]);
});

test('a click picks the gap holding its block, exactly', () => {
  const gaps = [{ start: 100, end: 149 }, { start: 500, end: 699 }];
  assert.deepEqual(gapAt(gaps, 100), gaps[0]);
  assert.deepEqual(gapAt(gaps, 149), gaps[0]);
  assert.deepEqual(gapAt(gaps, 600), gaps[1]);
  assert.equal(gapAt(gaps, 150), null);
  assert.equal(gapAt(null, 1), null);
});

test('zoomed in to fewer blocks than pixels, the runs are the exact block ranges', () => {
  const win = { from: 120, to: 600 };
  const gaps = [{ start: 120, end: 149 }, { start: 500, end: 600 }];
  const runs = coverageRuns(win.from, win.to, coveredFromGaps(win.from, win.to, gaps), 800)
    .map((r) => [r.kind, r.start, r.end]).sort((a, b) => a[1] - b[1]);
  assert.deepEqual(runs, [['gap', 120, 149], ['ok', 150, 499], ['gap', 500, 600]]);
});
