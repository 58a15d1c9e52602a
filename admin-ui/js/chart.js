// Blocks/s over time for the backfill detail panel, drawn with uPlot (vendor/uPlot.iife.min.js,
// loaded by index.html as the global `uPlot`; nothing is fetched at run time). The series comes
// from GET /v1/backfills/{id}/progress.

import { isNum } from './format.js';

// The chart's data from a progress answer: x in Unix seconds (bucket starts), y in blocks/s, and
// a summary (peak and mean rate over the buckets, total blocks in them).
export function progressSeries(progress) {
  const buckets = progress && Array.isArray(progress.buckets) ? progress.buckets : [];
  const width = progress && isNum(progress.bucket_seconds) && progress.bucket_seconds > 0 ? progress.bucket_seconds : 1;
  const xs = [];
  const ys = [];
  let total = 0;
  let peak = 0;
  for (const b of buckets) {
    const t = Date.parse(b && b.start);
    if (isNaN(t)) continue;
    const blocks = isNum(b.blocks) ? b.blocks : 0;
    const rate = isNum(b.blocks_per_second) ? b.blocks_per_second : blocks / width;
    xs.push(t / 1000);
    ys.push(rate);
    total += blocks;
    if (rate > peak) peak = rate;
  }
  // A step chart needs the end of the last bucket to show its width.
  if (xs.length) {
    xs.push(xs[xs.length - 1] + width);
    ys.push(ys[ys.length - 1]);
  }
  const span = buckets.length * width;
  return { xs: xs, ys: ys, total: total, peak: peak, mean: span > 0 ? total / span : 0, width: width };
}

const charts = new WeakMap();   // container -> {plot, key}

// Draws (or updates) the chart in `container`; returns false when uPlot is not loaded.
export function drawProgressChart(container, progress, key) {
  const U = globalThis.uPlot;
  if (typeof U !== 'function') return false;
  const s = progressSeries(progress);
  const width = Math.max(240, Math.floor(container.clientWidth || 600));
  const held = charts.get(container);
  const data = [s.xs, s.ys];
  if (held && held.key === key && held.width === width && held.plot.root.isConnected) {
    held.plot.setData(data);
    return true;
  }
  if (held) held.plot.destroy();
  container.replaceChildren();
  const axis = { stroke: '#7d8a9a', grid: { stroke: 'rgba(47, 61, 80, 0.6)', width: 1 }, ticks: { stroke: 'rgba(47, 61, 80, 0.6)' } };
  const plot = new U({
    width: width,
    height: 190,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [axis, Object.assign({}, axis, { size: 56, values: (u, vals) => vals.map((v) => (v >= 1000 ? (v / 1000).toFixed(1) + 'k' : String(+v.toFixed(1)))) })],
    series: [
      {},
      {
        label: 'blocks/s',
        stroke: '#58a6ff',
        fill: 'rgba(88, 166, 255, 0.16)',
        width: 1.5,
        points: { show: false },
        paths: U.paths && U.paths.stepped ? U.paths.stepped({ align: 1 }) : undefined,
        value: (u, v) => (v === null || v === undefined ? '—' : (+v.toFixed(1)) + ' blk/s'),
      },
    ],
  }, data, container);
  charts.set(container, { plot: plot, key: key, width: width });
  return true;
}

// Removes the chart of `container` (another backfill opened, or none yet).
export function clearChart(container, placeholder) {
  const held = charts.get(container);
  if (held) held.plot.destroy();
  charts.delete(container);
  container.replaceChildren();
  if (placeholder) container.appendChild(placeholder);
}
