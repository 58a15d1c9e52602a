// Blockfill admin dashboard. Dependency-free; served by the orchestrator on
// the same origin as the API. All data is written into the DOM as text
// (textContent / text nodes), never as HTML.
//
// The entry module: wires the page and starts polling. The rest is in js/:
// config (settings, state), format, dom (helpers), network (API, polling),
// selection (which chain), derived (values from a status), render (panels),
// endpoints (endpoint health, config), form (backfill form, panel buttons), fleet (fleet size,
// the chain's workers, the min/max editor), auth (the stored key, roles), keyprompt (the key
// control and dialog), controls (pause, resume, cancel, retry), detail (a backfill's panel),
// chart (its blocks/s, with the vendored uPlot), gapmap (zoom and "backfill this gap").

import { state } from './js/config.js';
import { tickRelative } from './js/dom.js';
import { poll } from './js/network.js';
import { wireHash } from './js/selection.js';
import { renderCoverage } from './js/render.js';
import { updateHint, wireButtons, wireForm } from './js/form.js';
import { wireFleetForm } from './js/fleet.js';
import { wireKeyPrompt } from './js/keyprompt.js';
import { wireDetail, renderDetailPanel } from './js/detail.js';
import { wireGapMap } from './js/gapmap.js';

wireHash();
wireForm();
wireButtons();
wireFleetForm();
wireKeyPrompt();
wireDetail();
wireGapMap();
let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { renderCoverage(state.status[state.selected]); renderDetailPanel(); }, 150);
});
updateHint();
setInterval(tickRelative, 1000);
poll();
