// The endpoints panel (breaker, identity, errors, per-process reports) and the chain config.

import { state } from './config.js';
import { fmtDuration, fmtInt, fmtMs, fmtPerSec, fmtShare, isNum, maskUrl, parseTime, plural, redactUrls, truncate } from './format.js';
import { $, ago, el, kv, setText } from './dom.js';

export const BREAKER = {
  closed: { cls: 'closed', label: 'closed', title: 'Breaker closed: requests flow' },
  half_open: { cls: 'half_open', label: 'half-open', title: 'Breaker half-open: one probe at a time decides whether it closes again' },
  open: { cls: 'open', label: 'open', title: 'Breaker open: nothing is sent until the next probe' },
};
export const NO_REPORT = { cls: 'none', label: 'no report', title: 'No process has reported this endpoint in the last seconds' };

export function breakerInfo(b) { return (b && BREAKER[b]) || (b ? { cls: 'none', label: String(b), title: '' } : NO_REPORT); }

export function breakerBadge(b) {
  const i = breakerInfo(b);
  return el('span', { class: 'badge badge-br-' + i.cls, title: i.title }, i.label);
}

// Which chain the endpoint serves: checked (chain id and genesis block) before
// first use and periodically. A wrong-chain endpoint is never routed to.
export const IDENTITY = {
  verified: { cls: 'verified', label: 'verified', title: 'Serves this chain: its chain id and genesis block match' },
  unverified: { cls: 'unverified', label: 'unverified', title: 'Not checked yet, or it did not answer the check: not used until it does' },
  wrong_chain: { cls: 'wrong_chain', label: 'wrong chain', title: 'Serves another chain (another chain id or genesis block): never used until it serves this one again' },
};

export function identityBadge(identity, detail) {
  const i = IDENTITY[identity];
  if (!i) return null;
  return el('span', {
    class: 'badge badge-id-' + i.cls,
    title: i.title + (detail ? '\n' + detail : ''),
  }, i.label);
}

// Failure kinds that point at the endpoint itself; rate limits are a warning,
// "not yet available" (block past the endpoint's head) is routine near the tip.
export const ERROR_CLASS = { rate_limited: 'chip chip-warn', not_yet_available: 'chip' };
export const ERROR_ORDER = ['transport', 'timeout', 'http', 'rate_limited', 'malformed', 'rpc', 'not_yet_available'];

export function errorChips(errors) {
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

export function renderEndpoints(name) {
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

export function endpointRows(chain, e, index) {
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

export function renderConfig(c) {
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
