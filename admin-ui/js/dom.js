// DOM helpers: elements built from text (never parsed as HTML), relative times kept fresh.

import { fmtAgo } from './format.js';
import { renderTopbar } from './render.js';

export const $ = (id) => document.getElementById(id);

// el('td', {class: 'num', title: 'x'}, 'text', childNode, ...) -- strings
// become text nodes, so nothing is ever parsed as HTML.
export function el(tag, attrs) {
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

export function append(node, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { child.forEach((c) => append(node, c)); return; }
  node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

export function setText(id, text) { $(id).textContent = text; }

// A text span that keeps a relative time ("12s ago") fresh between polls.
export function ago(ms, prefix) {
  const span = el('span', { class: 'ago', title: ms === null ? null : new Date(ms).toISOString() });
  if (ms !== null) span.dataset.ts = String(ms);
  if (prefix) span.dataset.prefix = prefix;
  span.textContent = (prefix || '') + fmtAgo(ms);
  return span;
}

export function tickRelative() {
  document.querySelectorAll('.ago[data-ts]').forEach((s) => {
    s.textContent = (s.dataset.prefix || '') + fmtAgo(Number(s.dataset.ts));
  });
  renderTopbar();
}

export function kv(list, label, value, cls) {
  list.appendChild(el('dt', null, label));
  list.appendChild(el('dd', cls ? { class: cls } : null, value));
}
