// Blockfill admin dashboard. Dependency-free; served by the orchestrator on
// the same origin as the API. All data is written into the DOM as text
// (textContent / text nodes), never as HTML.
'use strict';

(function () {
  const POLL_MS = 2000;
  const REQUEST_TIMEOUT_MS = 5000;
  const GAP_PAGE_SIZE = 50;
  const MAX_GAP_PAGES = 20;          // at most 1,000 gaps kept refreshed
  const FINISHED_BACKFILLS_SHOWN = 15;
  const HEAD_STALE_SECONDS = 120;

  // ---------------------------------------------------------------- state

  const state = {
    chains: null,            // last good GET /v1/chains
    status: {},              // chain -> last good status
    statusErr: {},           // chain -> error text of the last failed poll
    backfills: {},           // chain -> last good backfill list
    backfillsErr: {},
    gaps: {},                // chain -> {items, nextAfter}
    gapsErr: {},
    gapPages: {},            // chain -> pages of gaps the operator asked for
    endpoints: {},           // chain -> last good GET /v1/chains/{name}/endpoints
    endpointsErr: {},
    reportersOpen: {},       // "chain endpoint#" -> per-process list left open
    selected: null,
    lastOk: null,            // Date of the last fully successful poll
    apiError: null,          // {title, msg} when the API could not be read
    failingSince: null,
    health: null,            // {ok: bool, text}
    showAllBackfills: false,
    polling: false,
    pollAgain: false,
    timer: null,
  };

  // ------------------------------------------------------------ formatting

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const dec1Fmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function isNum(v) { return typeof v === 'number' && isFinite(v); }

  function fmtInt(n) { return isNum(n) ? intFmt.format(n) : '—'; }

  function fmtRate(n) {
    if (!isNum(n)) return '—';
    return (n > 0 && n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + ' blk/s';
  }

  // Percentages never round up to 100 unless complete, and tiny values stay visible.
  function fmtPct(p) {
    if (!isNum(p)) return '—';
    if (p <= 0) return '0%';
    if (p >= 100) return '100%';
    if (p < 0.001) return '<0.001%';
    const digits = p < 1 ? 3 : 2;
    const f = Math.pow(10, digits);
    return (Math.floor(p * f) / f).toFixed(digits) + '%';
  }

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function fmtDuration(sec) {
    if (!isNum(sec) || sec < 0) return '—';
    if (sec < 1) return '<1s';
    const s = Math.round(sec);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    if (d >= 100) return intFmt.format(d) + 'd';
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + pad2(m) + 'm';
    if (m) return m + 'm ' + pad2(r) + 's';
    return r + 's';
  }

  function parseTime(iso) {
    if (!iso) return null;
    const t = Date.parse(iso);
    return isNaN(t) ? null : t;
  }

  function fmtAgo(ms) {
    if (ms === null) return '—';
    const s = (Date.now() - ms) / 1000;
    if (s < 2) return 'just now';
    if (s < 60) return Math.floor(s) + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }

  function fmtClock(ms) {
    if (ms === null) return '—';
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  function fmtStamp(ms) {
    if (ms === null) return '—';
    const d = new Date(ms);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const date = d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
    return sameDay ? fmtClock(ms) : date + ' ' + fmtClock(ms);
  }

  function fmtRange(a, b) {
    if (!isNum(a) && !isNum(b)) return '—';
    return fmtInt(a) + ' – ' + fmtInt(b);
  }

  function plural(n, one, many) { return fmtInt(n) + ' ' + (n === 1 ? one : many); }

  function fmtPerSec(n) {
    if (!isNum(n)) return '—';
    return (n > 0 && n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + '/s';
  }

  function fmtMs(n) {
    if (!isNum(n)) return '—';
    if (n >= 10000) return fmtDuration(n / 1000);
    return (n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + ' ms';
  }

  // A share of successes that never rounds up to 100% while something failed.
  function fmtShare(part, whole) {
    if (!isNum(part) || !isNum(whole) || whole <= 0) return '—';
    if (part >= whole) return '100%';
    if (part <= 0) return '0%';
    return (Math.floor(part / whole * 1000) / 10).toFixed(1) + '%';
  }

  // RPC URLs often carry an API key in the path or query (…/v3/<key>,
  // ?apikey=…) or credentials before the host, so only scheme://host[:port]
  // is ever shown; anything after it becomes "/…".
  function maskUrl(raw) {
    const s = String(raw === null || raw === undefined ? '' : raw).trim();
    let u = null;
    try { u = new URL(s); } catch (e) { u = null; }
    if (u && u.host) {
      const rest = (u.pathname && u.pathname !== '/') || u.search || u.hash;
      const cred = !!(u.username || u.password);
      return { text: u.protocol + '//' + u.host + (rest ? '/…' : ''), hidden: !!rest || cred };
    }
    const m = /^([a-z][a-z0-9+.-]*:\/\/)?(?:[^\/?#@\s]*@)?([^\/?#\s]+)/i.exec(s);
    if (!m || /\s/.test(s)) return { text: 'unreadable URL', hidden: s.length > 0 };
    return { text: (m[1] || '') + m[2] + (s.length > m[0].length ? '/…' : ''), hidden: s.length > (m[1] || '').length + m[2].length };
  }

  // Error texts from HTTP clients quote the URL they failed on; mask those too.
  function redactUrls(text) {
    return String(text).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()\[\]{},]+/gi, (m) => {
      const tail = /[.,:;!?]*$/.exec(m)[0];    // sentence punctuation after the URL stays
      return maskUrl(m.slice(0, m.length - tail.length)).text + tail;
    });
  }

  function truncate(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  // ------------------------------------------------------------------- DOM

  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num', title: 'x'}, 'text', childNode, ...) -- strings
  // become text nodes, so nothing is ever parsed as HTML.
  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'style') node.setAttribute('style', v);
        else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => append(node, c)); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function setText(id, text) { $(id).textContent = text; }

  // A text span that keeps a relative time ("12s ago") fresh between polls.
  function ago(ms, prefix) {
    const span = el('span', { class: 'ago', title: ms === null ? null : new Date(ms).toISOString() });
    if (ms !== null) span.dataset.ts = String(ms);
    if (prefix) span.dataset.prefix = prefix;
    span.textContent = (prefix || '') + fmtAgo(ms);
    return span;
  }

  function tickRelative() {
    document.querySelectorAll('.ago[data-ts]').forEach((s) => {
      s.textContent = (s.dataset.prefix || '') + fmtAgo(Number(s.dataset.ts));
    });
    renderTopbar();
  }

  function kv(list, label, value, cls) {
    list.appendChild(el('dt', null, label));
    list.appendChild(el('dd', cls ? { class: cls } : null, value));
  }

  // -------------------------------------------------------------- network

  class ApiError extends Error {
    constructor(kind, message, httpStatus) {
      super(message);
      this.kind = kind;          // 'network' | 'http' | 'parse'
      this.httpStatus = httpStatus || null;
    }
  }

  async function api(path, options) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(path, Object.assign({ cache: 'no-store', signal: ctrl.signal }, options || {}));
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
      throw new ApiError('http', 'HTTP ' + res.status + ': ' + msg, res.status);
    }
    if (body === null && text) throw new ApiError('parse', 'invalid JSON from ' + path.split('?')[0]);
    return body;
  }

  const enc = encodeURIComponent;

  async function loadStatus(name) {
    try {
      state.status[name] = await api('/v1/chains/' + enc(name) + '/status');
      delete state.statusErr[name];
    } catch (e) {
      state.statusErr[name] = e.message;
      if (e.kind === 'network') throw e;
    }
  }

  async function loadBackfills(name) {
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
  async function loadGaps(name) {
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

  async function loadEndpoints(name) {
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

  async function loadHealth() {
    try {
      const h = await api('/healthz');
      const s = h && typeof h.status === 'string' ? h.status : 'unknown';
      state.health = { ok: s === 'ok', text: s };
    } catch (e) {
      state.health = { ok: false, text: e.kind === 'network' ? 'unreachable' : e.httpStatus ? 'HTTP ' + e.httpStatus : 'error' };
    }
  }

  async function poll() {
    if (state.polling) { state.pollAgain = true; return; }
    state.polling = true;
    clearTimeout(state.timer);
    const health = loadHealth();
    try {
      const chains = await api('/v1/chains');
      state.chains = Array.isArray(chains) ? chains : [];
      pickSelection();
      const jobs = [];
      for (const c of state.chains) {
        jobs.push(loadStatus(c.name), loadBackfills(c.name));
      }
      if (state.selected) jobs.push(loadGaps(state.selected), loadEndpoints(state.selected));
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

  // ------------------------------------------------------------- selection

  function hashChain() {
    const m = /(?:^#|&)chain=([^&]*)/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }

  function pickSelection() {
    const names = (state.chains || []).map((c) => c.name);
    const wanted = hashChain();
    if (wanted !== null && names.includes(wanted)) state.selected = wanted;
    else if (!names.includes(state.selected)) state.selected = names.length ? names[0] : null;
  }

  function select(name) {
    if (name === state.selected) return;
    state.selected = name;
    history.replaceState(null, '', '#chain=' + enc(name));
    resetConfirm();
    setResult(null);
    render();
    poll();
  }

  window.addEventListener('hashchange', () => {
    const want = hashChain();
    if (want !== null && want !== state.selected) select(want);
  });

  // --------------------------------------------------------------- derived

  function liveState(st) {
    const live = st && st.live;
    if (!live) return { cls: 'unknown', label: 'NO DATA', detail: '' };
    if (live.halted) {
      return { cls: 'bad', label: 'LIVE SYNC HALTED', detail: live.halted_reason || 'halted for an operator' };
    }
    if (live.is_live_sync) {
      return { cls: 'ok', label: 'LIVE SYNCED', detail: isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') + ' behind head' : 'at head' };
    }
    if (!isNum(live.head)) return { cls: 'unknown', label: 'HEAD UNKNOWN', detail: 'no head seen from RPC' };
    return { cls: 'warn', label: 'CATCHING UP', detail: isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') + ' behind' : 'lag unknown' };
  }

  function histState(st) {
    const h = st && st.historical;
    if (!h) return { cls: 'unknown', label: 'NO DATA', detail: '' };
    if (!(h.missing_blocks_count > 0)) return { cls: 'ok', label: 'NO GAPS', detail: 'history complete' };
    const gaps = isNum(h.gap_ranges_count) ? plural(h.gap_ranges_count, 'gap', 'gaps') : 'gaps';
    return { cls: 'gap', label: gaps.toUpperCase(), detail: fmtInt(h.missing_blocks_count) + ' blocks missing' };
  }

  function activeBackfills(name) {
    return (state.backfills[name] || []).filter((b) => b.status === 'running' || b.status === 'planned');
  }

  // Inverse of coverage within [from, to]: the missing ranges, inclusive.
  function gapsFromCoverage(from, to, coverage) {
    const segs = (coverage || [])
      .filter((c) => c && isNum(c.start) && isNum(c.end))
      .map((c) => ({ start: Math.max(from, c.start), end: Math.min(to, c.end) }))
      .filter((c) => c.start <= c.end)
      .sort((a, b) => a.start - b.start);
    const out = [];
    let cursor = from;
    for (const s of segs) {
      if (s.start > cursor) out.push({ start: cursor, end: s.start - 1 });
      cursor = Math.max(cursor, s.end + 1);
    }
    if (cursor <= to) out.push({ start: cursor, end: to });
    return { covered: segs, gaps: out };
  }

  // ---------------------------------------------------------------- render

  function render() {
    renderTopbar();
    renderBanner();
    renderTabs();
    renderDetail();
  }

  function renderTopbar() {
    const pill = $('api-pill');
    if (state.apiError && state.apiError.title === 'API unreachable') {
      pill.className = 'pill pill-bad';
      pill.textContent = 'API: unreachable';
    } else if (state.health) {
      pill.className = 'pill ' + (state.health.ok ? 'pill-ok' : 'pill-bad');
      pill.textContent = 'API: ' + state.health.text;
    }
    const upd = $('updated');
    if (state.lastOk === null) {
      upd.textContent = state.apiError ? 'no data received' : 'connecting…';
      upd.classList.toggle('bad', !!state.apiError);
    } else {
      upd.textContent = 'updated ' + fmtAgo(state.lastOk) + ' · every ' + POLL_MS / 1000 + 's';
      upd.classList.toggle('bad', !!state.apiError);
    }
  }

  function renderBanner() {
    const b = $('banner');
    document.body.classList.toggle('is-stale', !!state.apiError && state.lastOk !== null);
    if (!state.apiError) { b.hidden = true; return; }
    b.hidden = false;
    setText('banner-title', state.apiError.title);
    const since = state.failingSince;
    let msg = state.apiError.msg + ' — failing since ' + fmtClock(since) + '. Retrying every ' + POLL_MS / 1000 + 's. ';
    msg += state.lastOk !== null
      ? 'Showing last good data from ' + fmtClock(state.lastOk) + ' (' + fmtAgo(state.lastOk) + ').'
      : 'No data has been received yet.';
    setText('banner-msg', msg);
  }

  function renderTabs() {
    const nav = $('chain-tabs');
    const chains = state.chains;
    const ph = $('placeholder');
    if (chains === null) {
      ph.hidden = false;
      ph.textContent = state.apiError ? 'Cannot load chains: ' + state.apiError.msg : 'Loading chains…';
      nav.replaceChildren();
      return;
    }
    if (!chains.length) {
      ph.hidden = false;
      ph.textContent = 'No chains are configured.';
      nav.replaceChildren();
      return;
    }
    ph.hidden = true;
    nav.replaceChildren.apply(nav, chains.map((c) => {
      const st = state.status[c.name];
      const live = liveState(st);
      const hist = histState(st);
      const active = activeBackfills(c.name);
      const running = active.filter((b) => b.status === 'running').length;
      const failed = (state.backfills[c.name] || []).some((b) => b.status === 'failed');
      const err = state.statusErr[c.name];
      return el('button', {
        type: 'button',
        class: 'chain-tab' + (c.name === state.selected ? ' selected' : ''),
        'aria-pressed': c.name === state.selected ? 'true' : 'false',
        onclick: () => select(c.name),
      },
      el('div', { class: 'tab-top' },
        el('span', { class: 'tab-name' }, c.name),
        el('span', { class: 'tab-id mono' }, 'id ' + c.chain_id)),
      el('div', { class: 'tab-row' },
        el('span', { class: 'kind kind-live sm' }, 'LIVE'),
        el('span', { class: 'state state-' + live.cls }, live.label),
        el('span', { class: 'muted' }, live.detail)),
      el('div', { class: 'tab-row' },
        el('span', { class: 'kind kind-hist sm' }, 'HIST'),
        el('span', { class: 'state state-' + hist.cls }, hist.label),
        el('span', { class: 'muted' }, hist.detail)),
      el('div', { class: 'tab-row tab-foot' },
        active.length
          ? el('span', { class: 'chip chip-running' }, running ? plural(running, 'backfill running', 'backfills running') : plural(active.length, 'backfill planned', 'backfills planned'))
          : el('span', { class: 'muted' }, 'no active backfill'),
        failed ? el('span', { class: 'chip chip-failed' }, 'failed backfill') : null,
        err ? el('span', { class: 'chip chip-failed', title: err }, 'status error') : null));
    }));
  }

  function renderDetail() {
    const name = state.selected;
    const chain = (state.chains || []).find((c) => c.name === name);
    const detail = $('chain-detail');
    if (!chain) { detail.hidden = true; return; }
    detail.hidden = false;
    setText('chain-title', chain.name);
    setText('chain-sub', 'chain id ' + chain.chain_id + ' · ' + plural((chain.rpc_urls || []).length, 'RPC endpoint', 'RPC endpoints') + ' · batch ' + fmtInt(chain.batch_size) + ' · workers ' + chain.min_workers + '–' + chain.max_workers);
    const stale = $('detail-stale');
    if (state.apiError && state.lastOk !== null) {
      stale.hidden = false;
      stale.textContent = 'STALE · data from ' + fmtClock(state.lastOk);
    } else {
      stale.hidden = true;
    }
    setText('trigger-chain', chain.name);
    const st = state.status[name];
    renderLive(st, state.statusErr[name]);
    renderHistorical(st, state.statusErr[name], activeBackfills(name).length > 0);
    renderCoverage(st);
    renderGaps(name, st);
    renderBackfills(name);
    renderEndpoints(name);
    renderConfig(chain);
    updateHint();
  }

  function errorLine(msg, haveData) {
    return el('div', { class: 'inline-error' }, 'Could not load status: ' + msg + (haveData ? ' (showing last good values)' : ''));
  }

  function renderLive(st, err) {
    const body = $('live-body');
    const nodes = [];
    if (err) nodes.push(errorLine(err, !!(st && st.live)));
    if (!st || !st.live) {
      nodes.push(el('div', { class: 'empty' }, err ? 'No status available.' : 'Waiting for status…'));
      body.replaceChildren.apply(body, nodes);
      return;
    }
    const live = st.live;
    const s = liveState(st);
    nodes.push(el('div', { class: 'headline' },
      el('span', { class: 'big-state state-' + s.cls }, el('i', { class: 'dot' }), s.label),
      el('span', { class: 'headline-detail' }, s.detail)));

    const list = el('dl', { class: 'kv' });
    kv(list, 'Head', fmtInt(live.head), 'mono');
    kv(list, 'Safe head', fmtInt(live.safe_head), 'mono');
    kv(list, 'Last indexed', isNum(live.last_indexed) ? fmtInt(live.last_indexed) : 'nothing indexed yet', 'mono');
    kv(list, 'Lag', isNum(live.lag_blocks) ? plural(live.lag_blocks, 'block', 'blocks') : '—', 'mono');
    const headTs = parseTime(live.head_updated_at);
    const headAge = headTs === null ? null : (Date.now() - headTs) / 1000;
    const headStale = headAge !== null && headAge > HEAD_STALE_SECONDS;
    kv(list, 'Head updated', el('span', null, ago(headTs),
      headStale ? el('span', { class: 'chip chip-failed' }, 'stale head — check RPC') : null));
    if (live.halted) {
      kv(list, 'Halted', el('span', null,
        el('span', { class: 'chip chip-failed' }, 'reorg beyond max_reorg_depth'),
        ' resume with POST /v1/chains/' + encodeURIComponent(st.chain) + '/live/resume'));
    }
    nodes.push(list);
    body.replaceChildren.apply(body, nodes);
  }

  function renderHistorical(st, err, backfillActive) {
    const body = $('hist-body');
    const nodes = [];
    if (err) nodes.push(errorLine(err, !!(st && st.historical)));
    if (!st || !st.historical) {
      nodes.push(el('div', { class: 'empty' }, err ? 'No status available.' : 'Waiting for status…'));
      body.replaceChildren.apply(body, nodes);
      return;
    }
    const h = st.historical;
    const s = histState(st);
    const total = isNum(h.from) && isNum(h.to) ? h.to - h.from + 1 : null;
    const headline = el('div', { class: 'headline' },
      el('span', { class: 'big-state state-' + s.cls }, el('i', { class: 'dot' }), s.label),
      el('span', { class: 'headline-detail' }, s.cls === 'gap'
        ? fmtInt(h.missing_blocks_count) + ' of ' + fmtInt(total) + ' blocks missing in ' + fmtRange(h.from, h.to)
        : 'every block in ' + fmtRange(h.from, h.to) + ' is indexed'));
    nodes.push(headline);

    const list = el('dl', { class: 'kv kv-2col' });
    kv(list, 'Range', fmtRange(h.from, h.to), 'mono');
    kv(list, 'Indexed', fmtInt(h.indexed_blocks) + ' blocks (' + fmtPct(h.percent_complete) + ' of range)', 'mono');
    kv(list, 'Missing', plural(h.missing_blocks_count, 'block', 'blocks'), 'mono' + (h.missing_blocks_count > 0 ? ' warn' : ''));
    kv(list, 'Gap ranges', fmtInt(h.gap_ranges_count), 'mono');
    kv(list, 'Largest gap', isNum(h.largest_gap_start)
      ? fmtRange(h.largest_gap_start, h.largest_gap_end) + ' (' + plural(h.largest_gap_end - h.largest_gap_start + 1, 'block', 'blocks') + ')'
      : '—', 'mono');
    kv(list, 'Backfill rate', fmtRate(h.blocks_per_second), 'mono');
    kv(list, 'ETA to close gaps', isNum(h.eta_seconds) ? fmtDuration(h.eta_seconds) : (h.missing_blocks_count > 0 ? (backfillActive ? 'estimating…' : 'no backfill running') : '—'), 'mono');
    nodes.push(list);
    body.replaceChildren.apply(body, nodes);
  }

  // Coverage bar. When the range has more blocks than the bar has pixels,
  // each pixel column is classified as fully indexed, fully missing, or
  // partly indexed, so a small hole in a long range (or a small indexed
  // island such as the live tip inside a huge gap) never disappears.
  function coverageRuns(from, to, covered, width) {
    const span = to - from + 1;
    if (span <= width) {
      const gaps = gapsFromCoverage(from, to, covered).gaps;
      return covered.map((c) => ({ kind: 'ok', start: c.start, end: c.end }))
        .concat(gaps.map((g) => ({ kind: 'gap', start: g.start, end: g.end })))
        .map((r) => Object.assign(r, { left: (r.start - from) / span, width: (r.end - r.start + 1) / span }));
    }
    const per = span / width;                 // blocks per column
    const cov = new Float64Array(width);
    for (const c of covered) {
      const a = c.start - from;
      const b = c.end - from + 1;             // half-open, in block offsets
      const i0 = Math.floor(a / per);
      const i1 = Math.min(width - 1, Math.floor((b - 1e-9) / per));
      for (let i = i0; i <= i1; i++) {
        cov[i] += Math.min(b, (i + 1) * per) - Math.max(a, i * per);
      }
    }
    const eps = 1e-6 * per;
    const kindAt = (i) => cov[i] >= per - eps ? 'ok' : cov[i] <= eps ? 'gap' : 'part';
    const runs = [];
    let i = 0;
    while (i < width) {
      const kind = kindAt(i);
      let j = i + 1;
      while (j < width && kindAt(j) === kind) j++;
      runs.push({
        kind: kind,
        start: from + Math.floor(i * per),
        end: Math.min(to, from + Math.ceil(j * per) - 1),
        left: i / width,
        width: (j - i) / width,
      });
      i = j;
    }
    return runs;
  }

  const RUN_LABEL = { ok: 'indexed', gap: 'missing', part: 'partly indexed (contains gaps)' };

  function renderCoverage(st) {
    const bar = $('coverage-bar');
    const axis = $('coverage-axis');
    const h = st && st.historical;
    if (!h || !isNum(h.from) || !isNum(h.to) || h.to < h.from) {
      bar.replaceChildren();
      axis.replaceChildren();
      bar.setAttribute('aria-label', 'Coverage unavailable');
      return;
    }
    const from = h.from;
    const to = h.to;
    const covered = gapsFromCoverage(from, to, st.coverage).covered;
    const width = Math.max(100, Math.floor(bar.clientWidth || 800));
    const runs = coverageRuns(from, to, covered, width);
    // Narrow runs go last (on top) and get a minimum width, kept inside the bar.
    const narrow = 3 / width;
    runs.sort((a, b) => (a.width < narrow) - (b.width < narrow));
    bar.replaceChildren.apply(bar, runs.map((r) => el('div', {
      class: 'seg-' + r.kind + (r.width < narrow ? ' seg-narrow' : ''),
      style: (r.width < narrow ? 'left:min(' + (r.left * 100) + '%, calc(100% - 3px))' : 'left:' + (r.left * 100) + '%') +
        ';width:' + (r.width * 100) + '%',
      title: RUN_LABEL[r.kind] + ' ' + fmtRange(r.start, r.end) + (r.kind === 'part' ? '' : ' (' + plural(r.end - r.start + 1, 'block', 'blocks') + ')'),
    })));
    bar.setAttribute('aria-label', 'Coverage of blocks ' + fmtRange(from, to));

    const span = to - from + 1;
    const ticks = [];
    for (let i = 0; i <= 4; i++) {
      const b = i === 4 ? to : Math.round(from + (span - 1) * i / 4);
      ticks.push(el('span', { class: 'tick', style: 'left:' + (i * 25) + '%' }, fmtInt(b)));
    }
    axis.replaceChildren.apply(axis, ticks);
  }

  function renderGaps(name, st) {
    const g = state.gaps[name];
    const err = state.gapsErr[name];
    const errBox = $('gaps-error');
    errBox.hidden = !err;
    errBox.textContent = err ? 'Could not refresh gaps: ' + err + (g ? ' (showing last good list)' : '') : '';
    const tbody = $('gaps-body');
    const total = st && st.historical ? st.historical.gap_ranges_count : null;
    setText('gaps-note', isNum(total) ? plural(total, 'range', 'ranges') + ' total' : '');
    if (!g) {
      tbody.replaceChildren(el('tr', null, el('td', { colspan: 4, class: 'empty' }, err ? 'No gap data.' : 'Loading…')));
      setText('gaps-count', '');
      $('gaps-more').hidden = true;
      $('gaps-less').hidden = true;
      return;
    }
    if (!g.items.length) {
      tbody.replaceChildren(el('tr', null, el('td', { colspan: 4, class: 'empty ok' }, 'No gaps — every block in the historical range is indexed.')));
    } else {
      tbody.replaceChildren.apply(tbody, g.items.map((gap) => el('tr', null,
        el('td', { class: 'num mono' }, fmtInt(gap.start)),
        el('td', { class: 'num mono' }, fmtInt(gap.end)),
        el('td', { class: 'num mono' }, fmtInt(isNum(gap.size) ? gap.size : gap.end - gap.start + 1)),
        el('td', { class: 'act' }, el('button', {
          type: 'button',
          class: 'btn btn-small btn-ghost',
          title: 'Prefill the backfill form with this range',
          onclick: () => prefillRange(gap.start, gap.end),
        }, 'Backfill this')))));
    }
    setText('gaps-count', g.items.length ? 'Showing ' + plural(g.items.length, 'gap', 'gaps') + (isNum(total) ? ' of ' + fmtInt(total) : '') : '');
    const pages = state.gapPages[name] || 1;
    $('gaps-more').hidden = g.nextAfter === null || pages >= MAX_GAP_PAGES;
    $('gaps-less').hidden = pages <= 1;
    $('gaps-count').parentElement.hidden = !g.items.length && $('gaps-more').hidden && $('gaps-less').hidden;
  }

  function statusOrder(b) {
    return b.status === 'running' ? 0 : b.status === 'planned' ? 1 : 2;
  }

  function renderBackfills(name) {
    const list = (state.backfills[name] || []).slice();
    const err = state.backfillsErr[name];
    const errBox = $('bf-error');
    errBox.hidden = !err;
    errBox.textContent = err ? 'Could not refresh backfills: ' + err + (state.backfills[name] ? ' (showing last good list)' : '') : '';
    list.sort((a, b) => statusOrder(a) - statusOrder(b) ||
      (parseTime(b.requested_at) || 0) - (parseTime(a.requested_at) || 0));
    const active = list.filter((b) => statusOrder(b) < 2);
    const finished = list.filter((b) => statusOrder(b) === 2);
    const shownFinished = state.showAllBackfills ? finished : finished.slice(0, FINISHED_BACKFILLS_SHOWN);
    const shown = active.concat(shownFinished);
    setText('bf-note', plural(active.length, 'active', 'active') + ' · ' + fmtInt(finished.length) + ' finished');

    const tbody = $('bf-body');
    if (!state.backfills[name]) {
      tbody.replaceChildren(el('tr', null, el('td', { colspan: 10, class: 'empty' }, err ? 'No backfill data.' : 'Loading…')));
    } else if (!shown.length) {
      tbody.replaceChildren(el('tr', null, el('td', { colspan: 10, class: 'empty' }, 'No backfills for this chain yet.')));
    } else {
      const rows = [];
      for (const b of shown) rows.push.apply(rows, backfillRows(b));
      tbody.replaceChildren.apply(tbody, rows);
    }
    const toggle = $('bf-toggle');
    toggle.hidden = finished.length <= FINISHED_BACKFILLS_SHOWN;
    toggle.textContent = state.showAllBackfills ? 'Show recent only' : 'Show all ' + fmtInt(finished.length) + ' finished';
    setText('bf-count', shown.length < list.length ? 'Showing ' + fmtInt(shown.length) + ' of ' + fmtInt(list.length) : (list.length ? 'Showing all ' + fmtInt(list.length) : ''));
    $('bf-count').parentElement.hidden = !list.length;
  }

  function backfillRows(b) {
    const bt = b.batches || {};
    const batchTotal = ['planned', 'queued', 'running', 'done', 'failed'].reduce((n, k) => n + (isNum(bt[k]) ? bt[k] : 0), 0);
    let frac = null;
    if (isNum(b.blocks_total) && b.blocks_total > 0 && isNum(b.blocks_done)) frac = Math.min(1, b.blocks_done / b.blocks_total);
    else if (b.status === 'completed') frac = 1;
    const pctText = frac === null ? '' : fmtPct(frac * 100);
    const isActive = b.status === 'running' || b.status === 'planned';

    const started = parseTime(b.started_at);
    const finished = parseTime(b.finished_at);
    const requested = parseTime(b.requested_at);
    let runTime = '—';
    if (started !== null) runTime = fmtDuration(((finished !== null ? finished : Date.now()) - started) / 1000) + (finished === null ? ' so far' : '');

    const range = isNum(b.from) || isNum(b.to) ? fmtRange(b.from, b.to) : (b.mode === 'gaps' ? 'all gaps' : '—');
    const id = String(b.id || '');

    const batchCell = el('td', null,
      el('div', { class: 'mono nowrap' }, fmtInt(bt.done) + ' / ' + fmtInt(batchTotal) + ' done'),
      el('div', { class: 'batch-chips' },
        bt.running ? el('span', { class: 'chip chip-running' }, fmtInt(bt.running) + ' running') : null,
        bt.queued ? el('span', { class: 'chip' }, fmtInt(bt.queued) + ' queued') : null,
        bt.planned ? el('span', { class: 'chip' }, fmtInt(bt.planned) + ' planned') : null,
        bt.failed ? el('span', { class: 'chip chip-failed' }, fmtInt(bt.failed) + ' failed') : null));

    const row = el('tr', { class: 'bf-row bf-' + b.status + (b.last_error ? ' has-error' : '') },
      el('td', { class: 'mono id' }, el('span', { class: 'id-text', title: id }, id)),
      el('td', null, b.mode || '—'),
      el('td', { class: 'mono nowrap' }, range),
      el('td', null, el('span', { class: 'badge badge-' + b.status }, b.status)),
      el('td', { class: 'col-progress' },
        el('div', { class: 'progress' + (isActive ? ' active' : '') },
          el('div', { class: 'progress-fill fill-' + b.status, style: 'width:' + ((frac || 0) * 100) + '%' })),
        el('div', { class: 'progress-text mono' },
          fmtInt(b.blocks_done) + ' / ' + fmtInt(b.blocks_total) + ' blocks',
          pctText ? el('span', { class: 'muted' }, ' · ' + pctText) : null)),
      batchCell,
      el('td', { class: 'num mono nowrap' }, isActive ? fmtRate(b.blocks_per_second) : '—'),
      el('td', { class: 'num mono nowrap' }, isActive ? fmtDuration(b.eta_seconds) : '—'),
      el('td', { class: 'nowrap', title: b.requested_at || '' }, fmtStamp(requested), el('div', { class: 'muted small' }, ago(requested))),
      el('td', { class: 'mono nowrap' }, runTime));
    const rows = [row];
    if (b.last_error) {
      rows.push(el('tr', { class: 'bf-error-row' },
        el('td', { colspan: 10 }, el('span', { class: 'err-label' }, 'last error'), el('span', { class: 'mono' }, redactUrls(b.last_error)))));
    }
    return rows;
  }

  // ------------------------------------------------------------ endpoints

  const BREAKER = {
    closed: { cls: 'closed', label: 'closed', title: 'Breaker closed: requests flow' },
    half_open: { cls: 'half_open', label: 'half-open', title: 'Breaker half-open: one probe at a time decides whether it closes again' },
    open: { cls: 'open', label: 'open', title: 'Breaker open: nothing is sent until the next probe' },
  };
  const NO_REPORT = { cls: 'none', label: 'no report', title: 'No process has reported this endpoint in the last seconds' };

  function breakerInfo(b) { return (b && BREAKER[b]) || (b ? { cls: 'none', label: String(b), title: '' } : NO_REPORT); }

  function breakerBadge(b) {
    const i = breakerInfo(b);
    return el('span', { class: 'badge badge-br-' + i.cls, title: i.title }, i.label);
  }

  // Which chain the endpoint serves: checked (chain id and genesis block) before
  // first use and periodically. A wrong-chain endpoint is never routed to.
  const IDENTITY = {
    verified: { cls: 'verified', label: 'verified', title: 'Serves this chain: its chain id and genesis block match' },
    unverified: { cls: 'unverified', label: 'unverified', title: 'Not checked yet, or it did not answer the check: not used until it does' },
    wrong_chain: { cls: 'wrong_chain', label: 'wrong chain', title: 'Serves another chain (another chain id or genesis block): never used until it serves this one again' },
  };

  function identityBadge(identity, detail) {
    const i = IDENTITY[identity];
    if (!i) return null;
    return el('span', {
      class: 'badge badge-id-' + i.cls,
      title: i.title + (detail ? '\n' + detail : ''),
    }, i.label);
  }

  // Failure kinds that point at the endpoint itself; rate limits are a warning,
  // "not yet available" (block past the endpoint's head) is routine near the tip.
  const ERROR_CLASS = { rate_limited: 'chip chip-warn', not_yet_available: 'chip' };
  const ERROR_ORDER = ['transport', 'timeout', 'http', 'rate_limited', 'malformed', 'rpc', 'not_yet_available'];

  function errorChips(errors) {
    const kinds = Object.keys(errors || {}).filter((k) => isNum(errors[k]) && errors[k] > 0);
    kinds.sort((a, b) => {
      const ia = ERROR_ORDER.indexOf(a), ib = ERROR_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : 1);
    });
    if (!kinds.length) return el('span', { class: 'muted' }, 'none');
    return el('ul', { class: 'ep-chips', 'aria-label': 'Errors by kind' }, kinds.map((k) => el('li', {
      class: ERROR_CLASS[k] || 'chip chip-failed',
    }, k.replace(/_/g, ' ') + ' ', el('b', null, fmtInt(errors[k])))));
  }

  function renderEndpoints(name) {
    const list = state.endpoints[name];
    const err = state.endpointsErr[name];
    const errBox = $('ep-error');
    errBox.hidden = !err;
    errBox.textContent = err ? 'Could not refresh endpoints: ' + err + (list ? ' (showing last good values)' : '') : '';
    const table = $('ep-table');
    const show = (bodies) => {
      const focused = document.activeElement && table.contains(document.activeElement) ? document.activeElement.id : null;
      table.querySelectorAll(':scope > tbody').forEach((t) => t.remove());
      bodies.forEach((t) => table.appendChild(t));
      if (focused && $(focused)) $(focused).focus({ preventScroll: true });
    };
    const message = (cls, text) => show([el('tbody', null, el('tr', null, el('td', { colspan: 8, class: cls }, text)))]);
    if (!list) {
      setText('ep-note', '');
      message('empty', err ? 'No endpoint data.' : 'Loading…');
      return;
    }
    if (!list.length) {
      setText('ep-note', '');
      message('empty', 'This chain has no RPC endpoints configured.');
      return;
    }
    const counts = {};
    for (const e of list) { const c = breakerInfo(e.breaker).label; counts[c] = (counts[c] || 0) + 1; }
    const parts = ['open', 'half-open', 'closed', 'no report'].filter((k) => counts[k]).map((k) => fmtInt(counts[k]) + ' ' + k);
    const wrong = list.filter((e) => e.identity === 'wrong_chain').length;
    setText('ep-note', plural(list.length, 'endpoint', 'endpoints') + ' · ' +
      (wrong ? fmtInt(wrong) + ' on the wrong chain · ' : '') +
      (counts.closed === list.length ? 'all breakers closed' : parts.join(' · ')));
    show(list.map((e, i) => el('tbody', {
      class: 'ep-group ep-' + (e.identity === 'wrong_chain' ? 'wrong_chain' : breakerInfo(e.breaker).cls),
    }, endpointRows(name, e, i))));
  }

  function endpointRows(chain, e, index) {
    const url = maskUrl(e.url);
    const reported = isNum(e.reporters) && e.reporters > 0;
    const cfg = e.config || {};
    const dash = () => el('span', { class: 'muted' }, '—');

    // Endpoint cell: number, masked URL, identity, tags, and who reported it.
    const wrongChain = e.identity === 'wrong_chain';
    const tags = [];
    if (isNum(e.cooldown_ms) && e.cooldown_ms > 0) {
      tags.push(el('span', { class: 'chip chip-warn', title: 'The endpoint asked for a pause (HTTP 429 / Retry-After); time left' },
        'Retry-After ' + fmtDuration(e.cooldown_ms / 1000)));
    }
    if (e.batches_accepted === false) {
      tags.push(el('span', { class: 'chip chip-warn', title: 'The endpoint rejected JSON-RPC batches; requests are sent one by one' }, 'no batches'));
    }
    if (isNum(e.concurrency_decreases) && e.concurrency_decreases > 0) {
      tags.push(el('span', { class: 'chip', title: 'Times a process halved its concurrency for this endpoint' },
        'limit halved ' + fmtInt(e.concurrency_decreases) + '×'));
    }
    // Each process's own line, in a row under the endpoint that a button opens.
    const key = chain + ' ' + index;
    const reporters = Array.isArray(e.by_reporter) ? e.by_reporter : [];
    const open = !!state.reportersOpen[key];
    const subId = 'ep-rep-' + index;
    let who;
    if (!reported) {
      who = el('div', { class: 'muted small' }, 'no process reported it recently');
    } else if (reporters.length) {
      who = el('button', {
        type: 'button',
        id: 'ep-rep-btn-' + index,
        class: 'btn-link small',
        'aria-expanded': open ? 'true' : 'false',
        'aria-controls': subId,
        onclick: () => {
          if (state.reportersOpen[key]) delete state.reportersOpen[key]; else state.reportersOpen[key] = true;
          renderEndpoints(chain);
        },
      }, el('span', { class: 'caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      'reported by ' + plural(e.reporters, 'process', 'processes'));
    } else {
      who = el('div', { class: 'muted small' }, 'reported by ' + plural(e.reporters, 'process', 'processes'));
    }
    const subRow = reporters.length ? el('tr', { class: 'ep-sub-row', id: subId, hidden: !open },
      el('td', { colspan: 8 },
        el('table', { class: 'tbl-sub' },
          el('caption', { class: 'sr-only' }, 'Reports of endpoint #' + (index + 1) + ' by process'),
          el('thead', null, el('tr', null,
            el('th', { scope: 'col' }, 'Process'), el('th', { scope: 'col' }, 'Breaker'),
            el('th', { scope: 'col' }, 'Identity'),
            el('th', { scope: 'col', class: 'num' }, 'In flight / limit'), el('th', { scope: 'col', class: 'num' }, 'Requests'),
            el('th', { scope: 'col', class: 'num' }, 'Latency p50'), el('th', { scope: 'col' }, 'Reported'))),
          el('tbody', null, reporters.map((r) => el('tr', null,
            el('td', { class: 'mono' }, String(r.reporter)),
            el('td', null, breakerBadge(r.breaker)),
            el('td', null, identityBadge(r.identity) || el('span', { class: 'muted' }, '—')),
            el('td', { class: 'num mono' }, fmtInt(r.in_flight) + ' / ' + fmtInt(r.concurrency_limit)),
            el('td', { class: 'num mono' }, fmtPerSec(r.requests_per_second)),
            el('td', { class: 'num mono' }, fmtMs(r.latency_p50_ms)),
            el('td', { class: 'muted' }, ago(parseTime(r.updated_at))))))))) : null;
    const limits = [];
    if (isNum(cfg.rps)) limits.push(fmtInt(cfg.rps) + ' req/s');
    if (isNum(cfg.max_concurrency)) limits.push('max ' + fmtInt(cfg.max_concurrency) + ' in flight');
    const urlTitle = url.text + (url.hidden ? ' (path, query or credentials hidden: they may hold an API key)' : '') +
      (limits.length ? '\nconfigured: ' + limits.join(', ') : '');
    const endpointCell = el('td', { class: 'ep-endpoint' },
      el('div', { class: 'ep-url-line' },
        el('span', { class: 'ep-idx mono' }, '#' + (index + 1)),
        el('span', { class: 'ep-url mono', title: urlTitle }, url.text),
        e.identity && e.identity !== 'verified' ? identityBadge(e.identity, e.identity_detail) : null),
      wrongChain
        ? el('div', { class: 'ep-wrong-chain' },
          'Not used: ' + (e.identity_detail ? redactUrls(e.identity_detail) : 'it serves another chain') +
          '. Check this URL points at the right network.')
        : null,
      tags.length ? el('div', { class: 'ep-chips' }, tags) : null,
      who);

    // Requests per second (the limit is per process).
    const rateCell = el('td', { class: 'num mono nowrap' },
      reported ? fmtPerSec(e.requests_per_second) : dash(),
      isNum(e.requests) && e.requests > 0
        ? el('div', { class: 'muted small', title: 'HTTP requests sent since each process started' }, fmtInt(e.requests) + ' sent') : null,
      isNum(e.rps_limit) ? el('div', {
        class: 'muted small',
        title: 'Requests-per-second limit of each process' + (e.reporters > 1 ? ' (' + fmtInt(e.reporters) + ' processes report)' : ''),
      }, 'limit ' + fmtInt(e.rps_limit) + '/s' + (e.reporters > 1 ? ' each' : '')) : null);

    const concCell = el('td', { class: 'num mono nowrap', title: 'Requests in flight / adaptive concurrency limit, all processes together' },
      reported ? fmtInt(e.in_flight) + ' / ' + fmtInt(e.concurrency_limit) : dash(),
      isNum(e.in_flight_live) && e.in_flight_live > 0
        ? el('div', { class: 'small live-text', title: 'In flight for live sync' }, 'live ' + fmtInt(e.in_flight_live)) : null);

    const latCell = el('td', { class: 'num mono nowrap' },
      isNum(e.latency_p50_ms) || isNum(e.latency_p99_ms)
        ? [fmtMs(e.latency_p50_ms), el('span', { class: 'muted' }, ' / '), fmtMs(e.latency_p99_ms)]
        : dash());

    // `requests` counts HTTP requests (a block range can take several) while
    // `successes` and `errors` count answered calls, so the share is taken
    // over answered calls: successes / (successes + failures).
    const failures = Object.keys(e.errors || {}).reduce((n, k) => n + (isNum(e.errors[k]) ? e.errors[k] : 0), 0);
    const succ = isNum(e.successes) ? e.successes : 0;
    const answered = succ + failures;
    let shareCls = null;
    if (answered > 0) {
      const r = succ / answered;
      shareCls = r < 0.9 ? 'bad' : r < 0.99 ? 'warn' : null;
    }
    const successCell = el('td', {
      class: 'num mono nowrap',
      title: answered > 0
        ? fmtInt(succ) + ' calls answered well, ' + fmtInt(failures) + ' failed' + (isNum(e.requests) ? '; ' + fmtInt(e.requests) + ' HTTP requests sent' : '')
        : null,
    },
    answered > 0
      ? [el('span', { class: shareCls }, fmtShare(succ, answered)),
        el('div', { class: 'muted small' }, fmtInt(succ) + ' / ' + fmtInt(answered) + ' ok')]
      : el('span', { class: 'muted' }, reported ? 'no requests' : '—'));

    const trans = Array.isArray(e.transitions) ? e.transitions : [];
    const last = trans.length ? trans[trans.length - 1] : null;
    let transCell;
    if (last) {
      const to = breakerInfo(last.to);
      const from = breakerInfo(last.from);
      const at = parseTime(last.at);
      transCell = el('td', { class: 'nowrap', title: from.label + ' → ' + to.label + (last.at ? ' at ' + last.at : '') + (last.reporter ? '\nseen by ' + last.reporter : '') + (trans.length > 1 ? '\n' + fmtInt(trans.length) + ' recent transitions' : '') },
        el('span', { class: 'br-text br-' + to.cls }, '→ ' + to.label),
        el('div', { class: 'muted small' }, ago(at)));
    } else {
      transCell = el('td', { class: 'muted' }, reported ? 'none' : '—');
    }

    const hasError = typeof e.last_error === 'string' && e.last_error.length > 0;
    const row = el('tr', { class: 'ep-row' },
      endpointCell,
      el('td', null, breakerBadge(e.breaker)),
      rateCell, concCell, latCell, successCell,
      el('td', null, reported || failures ? errorChips(e.errors) : dash()),
      transCell);
    const rows = [row];
    if (subRow) rows.push(subRow);
    if (hasError) {
      const full = redactUrls(e.last_error);
      rows.push(el('tr', { class: 'ep-error-row' },
        el('td', { colspan: 8 },
          el('span', { class: 'err-label' }, 'last error'),
          el('span', { class: 'mono ep-err-text', title: full }, truncate(full, 160)))));
    }
    return rows;
  }

  function renderConfig(c) {
    const dl = $('config-body');
    dl.replaceChildren();
    kv(dl, 'Name', c.name, 'mono');
    kv(dl, 'Chain ID', String(c.chain_id), 'mono');
    kv(dl, 'Genesis block', c.genesis_hash ? String(c.genesis_hash) : 'not recorded (only the chain id of endpoints is checked)', c.genesis_hash ? 'mono' : 'muted');
    kv(dl, 'RPC URLs', (c.rpc_urls || []).length ? (c.rpc_urls || []).map((u) => {
      const m = maskUrl(u);
      return el('div', { title: m.hidden ? 'Path, query or credentials hidden: they may hold an API key' : null }, m.text);
    }) : '—', 'mono');
    kv(dl, 'Start block', fmtInt(c.start_block), 'mono');
    kv(dl, 'Confirmations', fmtInt(c.confirmations), 'mono');
    kv(dl, 'Batch size', fmtInt(c.batch_size) + ' blocks', 'mono');
    kv(dl, 'Workers', c.min_workers + ' – ' + c.max_workers, 'mono');
    kv(dl, 'Created', c.created_at ? c.created_at : '—', 'mono');
  }

  // ----------------------------------------------------------------- form

  let pending = null;   // payload awaiting confirmation
  let submitting = false;

  function mode() {
    const r = document.querySelector('input[name="mode"]:checked');
    return r ? r.value : 'range';
  }

  function parseBlock(s) {
    const t = String(s).replace(/[\s,_]/g, '');
    if (!/^\d+$/.test(t)) return null;
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : null;
  }

  function validate() {
    const chain = state.selected;
    if (!chain) return { error: 'Select a chain first.' };
    if (mode() === 'gaps') {
      const st = state.status[chain];
      const h = st && st.historical;
      const summary = h && h.missing_blocks_count > 0
        ? plural(h.gap_ranges_count, 'gap range', 'gap ranges') + ', ' + plural(h.missing_blocks_count, 'missing block', 'missing blocks')
        : 'no known gaps right now';
      return { payload: { chain: chain, mode: 'gaps' }, summary: 'fill all gaps on ' + chain + ' (' + summary + ')' };
    }
    const fromRaw = $('bf-from').value.trim();
    const toRaw = $('bf-to').value.trim();
    if (!fromRaw || !toRaw) return { error: 'Enter both a from and a to block.', soft: true };
    const from = parseBlock(fromRaw);
    const to = parseBlock(toRaw);
    if (from === null) return { error: '"From" must be a non-negative whole block number.' };
    if (to === null) return { error: '"To" must be a non-negative whole block number.' };
    if (from > to) return { error: '"From" must not be greater than "to".' };
    const n = to - from + 1;
    return { payload: { chain: chain, from: from, to: to }, summary: 'backfill ' + plural(n, 'block', 'blocks') + ' (' + fmtRange(from, to) + ') on ' + chain };
  }

  function updateHint() {
    const hint = $('bf-hint');
    const isRange = mode() === 'range';
    $('range-fields').hidden = !isRange;
    const st = state.status[state.selected];
    if (isRange) {
      const h = st && st.historical;
      const live = st && st.live;
      $('bf-from').placeholder = h && isNum(h.from) ? fmtInt(h.from) : '0';
      $('bf-to').placeholder = live && isNum(live.safe_head) ? fmtInt(live.safe_head) : (h && isNum(h.to) ? fmtInt(h.to) : '');
    }
    const v = validate();
    hint.classList.toggle('bad', !!v.error && !v.soft);
    if (v.error) { hint.textContent = v.error; return; }
    let text = isRange ? 'Will ' + v.summary + '.' : 'Will ' + v.summary + '.';
    const safe = st && st.live && st.live.safe_head;
    if (isRange && isNum(safe) && v.payload.to > safe) {
      text += ' Note: "to" is beyond the safe head (' + fmtInt(safe) + ').';
      hint.classList.add('bad');
    }
    hint.textContent = text;
  }

  function resetConfirm() {
    pending = null;
    const btn = $('bf-submit');
    btn.textContent = 'Start backfill…';
    btn.classList.remove('btn-confirm');
    $('bf-cancel').hidden = true;
  }

  function setResult(kind, text) {
    const r = $('bf-result');
    if (!kind) { r.hidden = true; r.textContent = ''; return; }
    r.hidden = false;
    r.className = 'result result-' + kind;
    r.textContent = text;
  }

  function prefillRange(start, end) {
    document.querySelector('input[name="mode"][value="range"]').checked = true;
    $('bf-from').value = String(start);
    $('bf-to').value = String(end);
    resetConfirm();
    setResult(null);
    updateHint();
    $('bf-form').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    $('bf-submit').focus({ preventScroll: true });
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (submitting) return;
    const v = validate();
    if (v.error) {
      // The hint under the fields already says what is wrong.
      resetConfirm();
      setResult(null);
      $('bf-hint').classList.add('bad');
      (mode() === 'range' ? (parseBlock($('bf-from').value) === null ? $('bf-from') : $('bf-to')) : $('bf-submit')).focus();
      return;
    }
    if (!pending) {
      pending = v.payload;
      const btn = $('bf-submit');
      btn.textContent = 'Confirm: ' + v.summary;
      btn.classList.add('btn-confirm');
      $('bf-cancel').hidden = false;
      setResult(null);
      return;
    }
    const payload = pending;
    submitting = true;
    const btn = $('bf-submit');
    btn.disabled = true;
    btn.textContent = 'Submitting…';
    try {
      const res = await api('/v1/backfills', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
      });
      const id = res && res.id ? String(res.id) : '(no id)';
      const st = res && res.status ? String(res.status) : 'accepted';
      setResult('ok', 'Backfill ' + id + ' accepted on ' + payload.chain + ' — status: ' + st + '.');
      poll();
    } catch (e) {
      const prefix = e.kind === 'network' ? 'API unreachable, backfill not submitted: ' : 'Rejected by the API — ';
      setResult('error', prefix + e.message);
    } finally {
      submitting = false;
      btn.disabled = false;
      resetConfirm();
    }
  }

  function wireForm() {
    $('bf-form').addEventListener('submit', onSubmit);
    $('bf-cancel').addEventListener('click', () => { resetConfirm(); });
    document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener('change', () => {
      resetConfirm(); setResult(null); updateHint();
    }));
    ['bf-from', 'bf-to'].forEach((id) => $(id).addEventListener('input', () => { resetConfirm(); updateHint(); }));
  }

  function wireButtons() {
    $('gaps-more').addEventListener('click', () => {
      const n = state.selected;
      if (!n) return;
      state.gapPages[n] = Math.min(MAX_GAP_PAGES, (state.gapPages[n] || 1) + 1);
      poll();
    });
    $('gaps-less').addEventListener('click', () => {
      const n = state.selected;
      if (!n) return;
      state.gapPages[n] = 1;
      if (state.gaps[n]) {
        // Trim right away; the next poll brings next_after up to date.
        const items = state.gaps[n].items;
        state.gaps[n] = {
          items: items.slice(0, GAP_PAGE_SIZE),
          nextAfter: items.length > GAP_PAGE_SIZE ? items[GAP_PAGE_SIZE - 1].end : state.gaps[n].nextAfter,
        };
      }
      poll();
    });
    $('bf-toggle').addEventListener('click', () => {
      state.showAllBackfills = !state.showAllBackfills;
      renderBackfills(state.selected);
    });
  }

  // ----------------------------------------------------------------- start

  wireForm();
  wireButtons();
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => renderCoverage(state.status[state.selected]), 150);
  });
  updateHint();
  setInterval(tickRelative, 1000);
  poll();
})();
