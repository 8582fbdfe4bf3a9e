// uPlot charts: a time-series chart that follows its container's width, and a sparkline.

import uPlot from '../vendor/uPlot.min.js';
import { num } from './dom.js';

// Colours that stay apart for the usual few series, readable on light and dark.
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

function axisColor() {
  return getComputedStyle(document.documentElement).getPropertyValue('--fg-muted').trim() || '#666';
}
function gridColor() {
  return getComputedStyle(document.documentElement).getPropertyValue('--grid').trim() || '#e5e5e5';
}

/**
 * A time-series chart in `host`. series: [{label}], data: uPlot's aligned data (x in
 * seconds). onZoom(fromMs, toMs) is called when a range is selected by dragging.
 * Returns {plot, setData(data, keepScale), destroy()}.
 */
export function timeChart(host, series, data, { height = 260, onZoom, yLabel } = {}) {
  const width = Math.max(240, host.clientWidth || 600);
  const opts = {
    width,
    height,
    pxAlign: 0,
    cursor: { drag: { x: true, y: false, setScale: false }, focus: { prox: 24 } },
    focus: { alpha: 0.35 },
    legend: { live: true },
    scales: { x: { time: true } },
    axes: [
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } },
      { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, size: 56, values: (u, vals) => vals.map(num), label: yLabel },
    ],
    series: [
      { label: 'time' },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { show: (u, si, i0, i1) => i1 - i0 < 60 },
        value: (u, v) => num(v),
      })),
    ],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 4 || !onZoom) return;
          const from = u.posToVal(u.select.left, 'x');
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onZoom(Math.round(from * 1000), Math.round(to * 1000));
        },
      ],
    },
  };
  const plot = new uPlot(opts, data, host);
  const ro = new ResizeObserver(() => {
    const w = Math.max(240, host.clientWidth);
    if (w !== plot.width) plot.setSize({ width: w, height });
  });
  ro.observe(host);
  return {
    plot,
    setData(d) {
      plot.setData(d, true);
    },
    destroy() {
      ro.disconnect();
      plot.destroy();
    },
  };
}

/** A small area chart of one series without axes (the ingest rate). */
export function sparkline(host, data, { height = 48 } = {}) {
  const plot = new uPlot({
    width: Math.max(120, host.clientWidth || 240),
    height,
    pxAlign: 0,
    cursor: { show: false },
    legend: { show: false },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: '#0b5cad', width: 1.5, fill: 'rgba(11,92,173,0.15)' }],
  }, data, host);
  const ro = new ResizeObserver(() => {
    const w = Math.max(120, host.clientWidth);
    if (w !== plot.width) plot.setSize({ width: w, height });
  });
  ro.observe(host);
  return { plot, setData: (d) => plot.setData(d), destroy: () => { ro.disconnect(); plot.destroy(); } };
}
