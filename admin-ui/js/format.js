// Formatting numbers, rates, durations, times and ranges; masking URLs in error texts.

import { $ } from './dom.js';

export const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const dec1Fmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function isNum(v) { return typeof v === 'number' && isFinite(v); }

export function fmtInt(n) { return isNum(n) ? intFmt.format(n) : '—'; }

export function fmtRate(n) {
  if (!isNum(n)) return '—';
  return (n > 0 && n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + ' blk/s';
}

// Percentages never round up to 100 unless complete, and tiny values stay visible.
export function fmtPct(p) {
  if (!isNum(p)) return '—';
  if (p <= 0) return '0%';
  if (p >= 100) return '100%';
  if (p < 0.001) return '<0.001%';
  const digits = p < 1 ? 3 : 2;
  const f = Math.pow(10, digits);
  return (Math.floor(p * f) / f).toFixed(digits) + '%';
}

export function pad2(n) { return n < 10 ? '0' + n : String(n); }

export function fmtDuration(sec) {
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

export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return isNaN(t) ? null : t;
}

export function fmtAgo(ms) {
  if (ms === null) return '—';
  const s = (Date.now() - ms) / 1000;
  if (s < 2) return 'just now';
  if (s < 60) return Math.floor(s) + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

export function fmtClock(ms) {
  if (ms === null) return '—';
  const d = new Date(ms);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}

export function fmtStamp(ms) {
  if (ms === null) return '—';
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const date = d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
  return sameDay ? fmtClock(ms) : date + ' ' + fmtClock(ms);
}

export function fmtRange(a, b) {
  if (!isNum(a) && !isNum(b)) return '—';
  return fmtInt(a) + ' – ' + fmtInt(b);
}

export function plural(n, one, many) { return fmtInt(n) + ' ' + (n === 1 ? one : many); }

export function fmtPerSec(n) {
  if (!isNum(n)) return '—';
  return (n > 0 && n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + '/s';
}

export function fmtMs(n) {
  if (!isNum(n)) return '—';
  if (n >= 10000) return fmtDuration(n / 1000);
  return (n < 10 ? dec1Fmt.format(n) : intFmt.format(n)) + ' ms';
}

// A share of successes that never rounds up to 100% while something failed.
export function fmtShare(part, whole) {
  if (!isNum(part) || !isNum(whole) || whole <= 0) return '—';
  if (part >= whole) return '100%';
  if (part <= 0) return '0%';
  return (Math.floor(part / whole * 1000) / 10).toFixed(1) + '%';
}

// RPC URLs often carry an API key in the path or query (…/v3/<key>,
// ?apikey=…) or credentials before the host, so only scheme://host[:port]
// is ever shown; anything after it becomes "/…".
export function maskUrl(raw) {
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
export function redactUrls(text) {
  return String(text).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()\[\]{},]+/gi, (m) => {
    const tail = /[.,:;!?]*$/.exec(m)[0];    // sentence punctuation after the URL stays
    return maskUrl(m.slice(0, m.length - tail.length)).text + tail;
  });
}

export function truncate(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}
