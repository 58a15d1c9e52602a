// The API client and the polling loop that loads who we are, chains, status, backfills, gaps,
// endpoints, the selected chain's fleet and the workers, the open backfill's detail and the
// zoomed gap map's window. Every request carries the stored API key (auth.js); a 401 asks for one.

import { GAP_PAGE_SIZE, MAX_GAP_PAGES, POLL_MS, REQUEST_TIMEOUT_MS, WHOAMI_RECHECK_MS, WINDOW_GAPS_LIMIT, state } from './config.js';
import { ASSUMED_WHOAMI, authHeaders, noteUnauthorized, storedKey } from './auth.js';
import { pickSelection } from './selection.js';
import { render } from './render.js';

export class ApiError extends Error {
  constructor(kind, message, httpStatus, fields) {
    super(message);
    this.kind = kind;          // 'network' | 'http' | 'parse'
    this.httpStatus = httpStatus || null;
    this.fields = fields || null;   // {field: why} of a 422 that names bad fields
    this.staleKey = false;          // a 401 to a key that has since been replaced
  }
}

export async function api(path, options) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
  let res;
  // The key this request carries: a 401 to it says nothing once another key is stored.
  const sentKey = storedKey();
  try {
    const opts = Object.assign({ cache: 'no-store', signal: ctrl.signal }, options || {});
    opts.headers = Object.assign({}, authHeaders(), (options && options.headers) || {});
    res = await fetch(path, opts);
  } catch (e) {
    const why = e && e.name === 'AbortError' ? 'timed out after ' + REQUEST_TIMEOUT_MS / 1000 + 's' : 'network error';
    throw new ApiError('network', why + ' (' + path.split('?')[0] + ')');
  } finally {
    clearTimeout(timer);
  }
  let text = '';
  try { text = await res.text(); } catch (e) { text = ''; }
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch (e) { body = null; }
  }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : (res.statusText || 'request failed');
    const fields = body && body.fields && typeof body.fields === 'object' ? body.fields : null;
    const err = new ApiError('http', 'HTTP ' + res.status + ': ' + msg, res.status, fields);
    if (res.status === 401) {
      err.staleKey = storedKey() !== sentKey;
      if (!err.staleKey) noteUnauthorized();
    }
    throw err;
  }
  if (body === null && text) throw new ApiError('parse', 'invalid JSON from ' + path.split('?')[0]);
  return body;
}

export const enc = encodeURIComponent;

export async function loadStatus(name) {
  try {
    state.status[name] = await api('/v1/chains/' + enc(name) + '/status');
    delete state.statusErr[name];
  } catch (e) {
    state.statusErr[name] = e.message;
    if (e.kind === 'network') throw e;
  }
}

export async function loadBackfills(name) {
  try {
    const list = await api('/v1/backfills?chain=' + enc(name));
    state.backfills[name] = Array.isArray(list) ? list : [];
    delete state.backfillsErr[name];
  } catch (e) {
    state.backfillsErr[name] = e.message;
    if (e.kind === 'network') throw e;
  }
}

// Re-reads as many pages as the operator has opened, so paged-in gaps stay
// current while backfills close them.
export async function loadGaps(name) {
  const pages = Math.max(1, Math.min(MAX_GAP_PAGES, state.gapPages[name] || 1));
  const items = [];
  let after = null;
  let nextAfter = null;
  try {
    for (let i = 0; i < pages; i++) {
      let path = '/v1/chains/' + enc(name) + '/gaps?limit=' + GAP_PAGE_SIZE;
      if (after !== null) path += '&after=' + enc(String(after));
      const page = await api(path);
      const gaps = page && Array.isArray(page.gaps) ? page.gaps : [];
      items.push.apply(items, gaps);
      nextAfter = page && page.next_after !== undefined ? page.next_after : null;
      if (nextAfter === null) break;
      after = nextAfter;
    }
    state.gaps[name] = { items: items, nextAfter: nextAfter };
    delete state.gapsErr[name];
  } catch (e) {
    state.gapsErr[name] = e.message;
    if (e.kind === 'network') throw e;
  }
}

export async function loadEndpoints(name) {
  try {
    const r = await api('/v1/chains/' + enc(name) + '/endpoints');
    state.endpoints[name] = r && Array.isArray(r.endpoints) ? r.endpoints : [];
    delete state.endpointsErr[name];
  } catch (e) {
    state.endpointsErr[name] = e.httpStatus === 404 && !/no chain/i.test(e.message)
      ? e.message + ' (this API may not serve endpoint health yet)'
      : e.message;
    if (e.kind === 'network') throw e;
  }
}

export async function loadFleet(name) {
  try {
    state.fleet[name] = await api('/v1/chains/' + enc(name) + '/fleet');
    delete state.fleetErr[name];
  } catch (e) {
    state.fleetErr[name] = e.message;
    if (e.kind === 'network') throw e;
  }
}

export async function loadWorkers() {
  try {
    const list = await api('/v1/workers');
    state.workers = Array.isArray(list) ? list : [];
    state.workersErr = null;
  } catch (e) {
    state.workersErr = e.message;
    if (e.kind === 'network') throw e;
  }
}

// Who the API says we are; an API without /v1/whoami (404) has no keys: loopback admin.
export async function loadWhoami(force) {
  // Without /v1/whoami, ask again only now and then.
  if (!force && state.whoami && state.whoami.assumed && Date.now() - (state.whoamiAt || 0) < WHOAMI_RECHECK_MS) return;
  state.whoamiAt = Date.now();
  try {
    const w = await api('/v1/whoami');
    state.whoami = w && typeof w === 'object' ? w : null;
    state.whoamiErr = null;
    state.needKey = false;
  } catch (e) {
    if (e.httpStatus === 404) {
      state.whoami = Object.assign({}, ASSUMED_WHOAMI);
      state.whoamiErr = null;
    } else if (e.httpStatus === 401 && e.staleKey) {
      // Sent with a key that has since been replaced: the next read asks with the new one.
    } else if (e.httpStatus === 401) {
      state.whoami = null;
      state.whoamiErr = e.message;
    } else {
      state.whoamiErr = e.message;
      if (e.kind === 'network') throw e;
    }
  }
}

// The open backfill's answer and its blocks over time.
export async function loadDetail() {
  const d = state.detail;
  if (!d) return;
  const id = d.id;
  try {
    const [view, progress] = await Promise.all([
      api('/v1/backfills/' + enc(id)),
      api('/v1/backfills/' + enc(id) + '/progress'),
    ]);
    if (!state.detail || state.detail.id !== id) return;
    state.detail.view = view;
    state.detail.progress = progress;
    state.detail.err = null;
  } catch (e) {
    if (state.detail && state.detail.id === id) state.detail.err = e.message;
    if (e.kind === 'network') throw e;
  }
}

// The gaps within the zoomed window of the gap map (exact, clipped to the window).
export async function loadWindowGaps(name) {
  const z = state.zoom[name];
  if (!z) return;
  const key = z.from + '-' + z.to;
  try {
    const page = await api('/v1/chains/' + enc(name) + '/gaps?limit=' + WINDOW_GAPS_LIMIT +
      '&from=' + z.from + '&to=' + z.to);
    const cur = state.zoom[name];
    if (!cur || cur.from + '-' + cur.to !== key) return;
    state.windowGaps[name] = {
      key: key,
      items: page && Array.isArray(page.gaps) ? page.gaps : [],
      more: !!(page && page.next_after !== null && page.next_after !== undefined),
    };
    delete state.windowGapsErr[name];
  } catch (e) {
    state.windowGapsErr[name] = e.message;
    if (e.kind === 'network') throw e;
  }
}

export async function loadHealth() {
  try {
    const h = await api('/healthz');
    const s = h && typeof h.status === 'string' ? h.status : 'unknown';
    state.health = { ok: s === 'ok', text: s };
  } catch (e) {
    state.health = { ok: false, text: e.kind === 'network' ? 'unreachable' : e.httpStatus ? 'HTTP ' + e.httpStatus : 'error' };
  }
}

export async function poll() {
  if (state.polling) { state.pollAgain = true; return; }
  state.polling = true;
  clearTimeout(state.timer);
  const health = loadHealth();
  try {
    await loadWhoami();
    const chains = await api('/v1/chains');
    state.chains = Array.isArray(chains) ? chains : [];
    pickSelection();
    const jobs = [loadDetail()];
    for (const c of state.chains) {
      jobs.push(loadStatus(c.name), loadBackfills(c.name));
    }
    if (state.selected) {
      jobs.push(loadGaps(state.selected), loadEndpoints(state.selected), loadFleet(state.selected), loadWorkers(),
        loadWindowGaps(state.selected));
    }
    const results = await Promise.allSettled(jobs);
    const down = results.find((r) => r.status === 'rejected');
    if (down) throw down.reason;
    state.apiError = null;
    state.failingSince = null;
    state.lastOk = Date.now();
  } catch (e) {
    const network = e && e.kind === 'network';
    state.apiError = {
      title: network ? 'API unreachable' : 'API error',
      msg: (e && e.message) || String(e),
    };
    if (state.failingSince === null) state.failingSince = Date.now();
  }
  await health;
  state.polling = false;
  try {
    render();
  } catch (e) {
    // A rendering bug must not stop polling.
    console.error('render failed', e);
  }
  if (state.pollAgain) { state.pollAgain = false; poll(); return; }
  state.timer = setTimeout(poll, POLL_MS);
}
