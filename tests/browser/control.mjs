// The dashboard's backfill controls, detail panel and gap map in a real browser: Debian's
// Chromium driven by playwright-core (scripts/install-browser.sh). Run by tests/it/dashboard.rs
// against an orchestrator it started, with BASE (the API address), CHAIN (a chain whose RPC is
// slowed down), BACKFILL (the id of a range backfill of that chain, running, that leaves a gap
// above it), PLAYWRIGHT_CORE (the package directory), SCREENSHOT (a .png path: the page once
// the backfill completed; the paused page goes next to it as *-paused.png) and the tokens of
// three API keys the API holds: VIEWER_KEY ("ci-viewer"), OPERATOR_KEY ("ci-operator") and
// ADMIN_KEY (the test's own reads). Prints
// "gap backfill: <id>" for the backfill started from the gap map. Exits non-zero with the failed
// assertion.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const { BASE, CHAIN, BACKFILL, PLAYWRIGHT_CORE, SCREENSHOT, VIEWER_KEY, OPERATOR_KEY, ADMIN_KEY } = process.env;
assert.ok(BASE && CHAIN && BACKFILL && PLAYWRIGHT_CORE && SCREENSHOT && VIEWER_KEY && OPERATOR_KEY && ADMIN_KEY,
  'BASE, CHAIN, BACKFILL, PLAYWRIGHT_CORE, SCREENSHOT, VIEWER_KEY, OPERATOR_KEY and ADMIN_KEY must be set');
const { chromium } = createRequire(import.meta.url)(PLAYWRIGHT_CORE);
const TIMEOUT = 30000;
const started = Date.now();
// Each step is printed, so a failure says where it stopped.
const step = (what) => console.log('[' + ((Date.now() - started) / 1000).toFixed(1) + 's] ' + what);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const pageErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const getJson = async (path) => {
    const r = await page.request.get(BASE + path, { headers: { Authorization: 'Bearer ' + ADMIN_KEY } });
    assert.ok(r.ok(), path + ' answered ' + r.status());
    return r.json();
  };
  const row = page.locator('#bf-body tr.bf-row[data-backfill="' + BACKFILL + '"]');
  const rowBadge = row.locator('td .badge');
  const detailBadge = page.locator('#bfd-status');
  const badgeIs = (want) => page.waitForFunction(([id, want]) => {
    const b = document.querySelector('#bf-body tr.bf-row[data-backfill="' + id + '"] td .badge');
    return b && want.includes(b.textContent);
  }, [BACKFILL, want], { timeout: 90000 });

  // The key prompt, against the real keyed API: without a key every /v1 route answers 401, so
  // the page asks for one by itself. A viewer's key (remembered in this browser) shows who it is
  // and no controls; an operator's (this tab only) brings them. The key goes on every request and
  // never into the page.
  const sentKeys = new Set();
  page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/v1/')) sentKeys.add(r.headers().authorization || 'none'); });
  const signIn = async (key, remember, label) => {
    await page.locator('#key-dialog').waitFor({ state: 'visible' });
    await page.fill('#key-input', key);
    await page.setChecked('#key-remember', remember);
    await page.click('#key-save');
    await page.waitForFunction((label) => document.querySelector('#key-btn').textContent === label, label);
    // Signed in, the dialog closes by itself.
    await page.locator('#key-dialog').waitFor({ state: 'hidden' });
  };
  step('open the page');
  await page.goto(BASE + '/#chain=' + encodeURIComponent(CHAIN));
  await page.locator('#key-dialog').waitFor({ state: 'visible' });
  assert.match(await page.locator('#key-why').textContent(), /401/);
  await signIn(VIEWER_KEY, true, 'ci-viewer · viewer');
  assert.equal(await page.evaluate(() => localStorage.getItem('blockfill.apiKey')), VIEWER_KEY);
  await badgeIs(['running']);
  await page.waitForFunction(() => /Your role \(viewer\)/.test(document.querySelector('#bf-note').textContent));
  assert.equal(await page.locator('#bf-body button.ctl').count(), 0, 'a viewer sees state only');
  step('sign in as an operator');
  await page.click('#key-btn');
  await signIn(OPERATOR_KEY, false, 'ci-operator · operator');
  assert.equal(await page.evaluate(() => localStorage.getItem('blockfill.apiKey')), null, 'the viewer key is gone');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('blockfill.apiKey')), OPERATOR_KEY);
  for (const key of [VIEWER_KEY, OPERATOR_KEY]) assert.ok(!(await page.content()).includes(key), 'the key is never in the page');
  assert.ok(sentKeys.has('Bearer ' + VIEWER_KEY) && sentKeys.has('Bearer ' + OPERATOR_KEY),
    'requests carry the key: ' + [...sentKeys].map((k) => k.slice(0, 12)));

  // Mid-backfill: the row shows it running, with the controls an operator may use.
  await badgeIs(['running']);
  assert.equal(await rowBadge.textContent(), 'running');
  await row.locator('button.ctl-pause').waitFor();
  assert.equal(await row.locator('button.ctl-resume').count(), 0, 'no resume while running');
  assert.equal(await row.locator('button.ctl-cancel').count(), 1);
  assert.match(await page.locator('#key-btn').textContent(), /operator/);

  // The detail panel: its facts and blocks/s over time, drawn by the vendored uPlot.
  step('open the detail panel');
  await row.locator('td.id').click();
  await page.locator('#bf-detail').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#bfd-id').textContent(), BACKFILL);
  await page.locator('#bfd-chart canvas').waitFor();
  await page.waitForFunction(() => /blocks in \d+ done batch/.test(document.querySelector('#bfd-chart-summary').textContent));

  // Pause: the page and the API say paused, and after a short while nothing of it is queued or
  // running (running batches finish, waiting ones are withdrawn).
  step('pause');
  await row.locator('button.ctl-pause').click();
  await badgeIs(['paused']);
  await page.waitForFunction(() => document.querySelector('#bfd-status').textContent === 'paused');
  assert.equal((await getJson('/v1/backfills/' + BACKFILL)).status, 'paused');
  await row.locator('button.ctl-resume').waitFor();
  assert.equal(await row.locator('button.ctl-pause').count(), 0, 'no pause while paused');
  step('wait until nothing of it is queued or running');
  const deadline = Date.now() + 45000;
  let busy;
  for (;;) {
    const [queued, running] = await Promise.all(['queued', 'running'].map((s) =>
      getJson('/v1/batches?backfill=' + BACKFILL + '&status=' + s + '&limit=1000')));
    busy = queued.length + running.length;
    if (busy === 0) break;
    assert.ok(Date.now() < deadline, busy + ' batches still queued or running 45 s after the pause');
    await page.waitForTimeout(250);
  }
  const paused = await getJson('/v1/backfills/' + BACKFILL);
  assert.equal(paused.status, 'paused');
  assert.ok(paused.blocks_done < paused.blocks_total, 'paused mid-way: ' + paused.blocks_done + ' of ' + paused.blocks_total);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => window.scrollY === 0);
  await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '') + '-paused.png', fullPage: true });

  // Resume: running again (the control's answer says so), then completed.
  step('resume');
  await row.locator('button.ctl-resume').click();
  await page.waitForFunction((id) => [...document.querySelectorAll('.bf-controls[data-backfill="' + id + '"] .ctl-msg-ok')]
    .some((m) => /Resume: now running/.test(m.textContent)), BACKFILL);
  await badgeIs(['running', 'completed']);
  step('wait for completed');
  await badgeIs(['completed']);
  await page.waitForFunction(() => document.querySelector('#bfd-status').textContent === 'completed');
  assert.equal(await detailBadge.textContent(), 'completed');
  const done = await getJson('/v1/backfills/' + BACKFILL);
  assert.equal(done.status, 'completed');
  assert.equal(done.blocks_done, done.blocks_total);
  assert.equal(await row.locator('button.ctl').count(), 0, 'no controls on a completed backfill');
  // The chart's buckets add up to every block written.
  await page.waitForFunction((n) => document.querySelector('#bfd-chart-summary').textContent.startsWith(n + ' blocks'),
    done.blocks_done.toLocaleString('en-US'));

  // The gap map: zoom into the gap above the backfill by dragging, see its exact range, click it
  // and backfill it from there.
  step('zoom into the gap');
  const status = await getJson('/v1/chains/' + CHAIN + '/status');
  const gapStart = done.to + 1;
  const gapEnd = status.historical.to;
  await page.locator('#coverage-bar .seg-gap').first().waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  let bar = await page.locator('#coverage-bar').boundingBox();
  await page.mouse.move(bar.x + bar.width * 0.5, bar.y + bar.height / 2);
  await page.mouse.down();
  await page.mouse.move(bar.x + bar.width * 0.8, bar.y + bar.height / 2, { steps: 4 });
  await page.mouse.move(bar.x + bar.width + 40, bar.y + bar.height / 2, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction(() => /^blocks /.test(document.querySelector('#zoom-label').textContent));
  const chip = page.locator('#zoom-gaps [data-gap="' + gapStart + '-' + gapEnd + '"]');
  await chip.waitFor();
  assert.equal(await chip.textContent(), gapStart.toLocaleString('en-US') + ' – ' + gapEnd.toLocaleString('en-US'));
  await page.evaluate(() => window.scrollTo(0, 0));
  bar = await page.locator('#coverage-bar').boundingBox();
  await page.mouse.click(bar.x + bar.width * 0.97, bar.y + bar.height / 2);
  await page.locator('#gap-pick').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#gap-pick-range').textContent(), gapStart.toLocaleString('en-US') + ' – ' + gapEnd.toLocaleString('en-US'));
  step('backfill the gap');
  await page.locator('#gap-backfill').click();
  // Either outcome ends the wait, so a refusal fails with the API's own words.
  await page.locator('#gap-result').waitFor();
  const outcome = await page.locator('#gap-result').textContent();
  assert.ok(await page.locator('#gap-result.result-ok').count() === 1, 'the gap backfill was refused: ' + outcome);
  const accepted = /Backfill (\S+) accepted/.exec(outcome);
  assert.ok(accepted, 'the gap backfill was accepted');
  const gapId = accepted[1];
  // The new backfill opens in the detail panel.
  await page.waitForFunction((id) => document.querySelector('#bfd-id').textContent === id, gapId);
  await page.waitForFunction(() => document.querySelector('#bfd-facts').textContent.includes('gaps'));
  const created = await getJson('/v1/backfills/' + gapId);
  assert.deepEqual([created.mode, created.from, created.to], ['gaps', gapStart, gapEnd]);
  console.log('gap backfill: ' + gapId);

  // Back to the completed backfill for the picture.
  step('screenshot');
  await page.locator('#zoom-reset').click();
  await row.locator('td.id').click();
  await page.waitForFunction((id) => document.querySelector('#bfd-id').textContent === id, BACKFILL);
  await page.waitForFunction(() => document.querySelector('#bfd-status').textContent === 'completed');
  await page.waitForFunction((n) => document.querySelector('#bfd-chart-summary').textContent.startsWith(n + ' blocks'),
    done.blocks_done.toLocaleString('en-US'));
  await page.locator('#bfd-chart canvas').waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => window.scrollY === 0);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log('screenshot: ' + SCREENSHOT);
  // Forget the key: it leaves the browser, and the keyed API asks for one again.
  step('forget the key');
  await page.click('#key-btn');
  await page.click('#key-forget');
  await page.waitForFunction(() => document.querySelector('#key-btn').textContent === 'key needed');
  assert.deepEqual(await page.evaluate(() => [localStorage.getItem('blockfill.apiKey'), sessionStorage.getItem('blockfill.apiKey')]), [null, null]);
  assert.match(await page.locator('#key-stored').textContent(), /No key is stored/);
  assert.deepEqual(pageErrors, [], 'errors in the page');
  console.log('backfill controls: ok');
} finally {
  await browser.close();
}
