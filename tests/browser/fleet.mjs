// The dashboard's fleet panel in a real browser: Debian's Chromium driven by playwright-core
// (scripts/install-browser.sh). Run by tests/it/dashboard.rs against an orchestrator it started,
// with BASE (the API address), CHAIN (a chain with min 1, max 3 and one worker reporting) and
// PLAYWRIGHT_CORE (the package directory); SCREENSHOT=<file.png> also saves the panel. Exits
// non-zero with the failed assertion.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const { BASE, CHAIN, PLAYWRIGHT_CORE } = process.env;
assert.ok(BASE && CHAIN && PLAYWRIGHT_CORE, 'BASE, CHAIN and PLAYWRIGHT_CORE must be set');
const { chromium } = createRequire(import.meta.url)(PLAYWRIGHT_CORE);
const TIMEOUT = 20000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const pageErrors = [];
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const stat = (key) => page.locator('[data-fleet="' + key + '"] .fleet-num');
  const chain = () => page.evaluate(async (name) => (await fetch('/v1/chains/' + name)).json(), CHAIN);

  await page.goto(BASE + '/#chain=' + encodeURIComponent(CHAIN));
  // The fleet panel shows the numbers of GET /v1/chains/{name}/fleet.
  const fleet = await (await page.request.get(BASE + '/v1/chains/' + CHAIN + '/fleet')).json();
  await page.waitForFunction(() => document.querySelector('[data-fleet="running"] .fleet-num')?.textContent === '1');
  assert.equal(await stat('min').textContent(), '1');
  assert.equal(await stat('max').textContent(), '3');
  assert.equal(await stat('desired').textContent(), String(fleet.desired));
  assert.equal(await page.locator('[data-fleet="reason"]').getAttribute('title'), fleet.reason);
  assert.ok((await page.locator('[data-fleet="eta"]').textContent()).length > 0);
  // The chain's workers, with heartbeat age, in flight and rate.
  const row = page.locator('#fleet-workers-body tr.fleet-worker');
  await row.first().waitFor();
  assert.equal(await row.count(), 1);
  const cells = await row.first().locator('td').allTextContents();
  assert.match(cells[2], /s ago/, 'heartbeat age: ' + cells);
  assert.match(cells[3], /^\d+ \/ \d+$/, 'in flight / concurrency: ' + cells);
  assert.match(cells[4], /blk\/s|—/, 'rate: ' + cells);
  assert.match(cells[5], /all chains/, 'serves: ' + cells);
  assert.equal(await page.inputValue('#fleet-min'), '1');
  assert.equal(await page.inputValue('#fleet-max'), '3');

  // min > max: the API's field error shows next to the input, and nothing changes.
  await page.fill('#fleet-min', '5');
  await page.click('#fleet-submit');
  const minError = page.locator('#fleet-min-error');
  await minError.waitFor({ state: 'visible' });
  assert.match(await minError.textContent(), /must not exceed max_workers \(3/);
  assert.equal(await page.locator('#fleet-min').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#fleet-result').textContent(), /nothing changed/);
  assert.equal(await page.locator('#fleet-max-error').isVisible(), false);
  const unchanged = await chain();
  assert.deepEqual([unchanged.min_workers, unchanged.max_workers], [1, 3]);
  // A poll does not overwrite what the operator typed (the second fleet answer after the error
  // comes from a poll that began after the first one had rendered).
  const fleetAnswer = (r) => r.url().endsWith('/v1/chains/' + CHAIN + '/fleet');
  await page.waitForResponse(fleetAnswer);
  await page.waitForResponse(fleetAnswer);
  assert.equal(await page.inputValue('#fleet-min'), '5');
  assert.equal(await minError.isVisible(), true);

  // A valid edit of max alone: saved, min kept, the panel shows the new max.
  await page.click('#fleet-reset');
  assert.equal(await minError.isVisible(), false);
  assert.equal(await page.inputValue('#fleet-min'), '1');
  await page.fill('#fleet-max', '9');
  await page.click('#fleet-submit');
  await page.locator('#fleet-result.result-ok').waitFor();
  assert.match(await page.locator('#fleet-result').textContent(), /Saved: workers 1–9/);
  await page.waitForFunction(() => document.querySelector('[data-fleet="max"] .fleet-num')?.textContent === '9');
  assert.equal(await stat('min').textContent(), '1');
  const changed = await chain();
  assert.deepEqual([changed.min_workers, changed.max_workers], [1, 9]);
  assert.deepEqual(pageErrors, [], 'errors in the page');
  if (process.env.SCREENSHOT) {
    // For a look by hand: SCREENSHOT=/tmp/fleet.png cargo test ... dashboard::
    await page.locator('#fleet-panel').screenshot({ path: process.env.SCREENSHOT });
  }
  console.log('fleet panel: ok');
} finally {
  await browser.close();
}
