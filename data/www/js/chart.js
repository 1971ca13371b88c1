// A small line chart on a canvas: a few series over the last `spanMs` (15 minutes), y from 0
// to the largest value shown. Written here instead of vendoring a library: the Overview needs
// only this.
import { h } from './ui.js';

const COLORS = ['#1f5fa8', '#d9730d', '#1e7d32', '#8e24aa'];

export class LineChart {
  constructor(title, seriesNames, { unit = '', spanMs = 15 * 60 * 1000, format } = {}) {
    this.names = seriesNames;
    this.points = seriesNames.map(() => []);
    this.spanMs = spanMs;
    this.unit = unit;
    this.format = format || (v => `${Math.round(v * 100) / 100}${unit ? ' ' + unit : ''}`);
    this.canvas = h('canvas', { role: 'img', 'aria-label': title });
    this.legend = h('div', { class: 'legend' });
    this.el = h('figure', { class: 'chart card' }, h('h3', {}, title), this.canvas, this.legend);
  }

  add(t, values) {
    values.forEach((v, i) => {
      if (Number.isFinite(v)) this.points[i].push([t, v]);
      while (this.points[i].length && this.points[i][0][0] < t - this.spanMs) this.points[i].shift();
    });
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth || 300, hgt = c.clientHeight || 150;
    const dpr = window.devicePixelRatio || 1;
    c.width = w * dpr; c.height = hgt * dpr;
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, hgt);
    const left = 4, right = w - 4, top = 14, bottom = hgt - 14;
    const now = Date.now();
    let max = 0;
    for (const s of this.points) for (const [, v] of s) max = Math.max(max, v);
    if (max === 0) max = 1;
    g.strokeStyle = '#d5dae0'; g.lineWidth = 1;
    g.beginPath(); g.moveTo(left, bottom + .5); g.lineTo(right, bottom + .5); g.stroke();
    g.fillStyle = '#5b6470'; g.font = '11px system-ui, sans-serif';
    g.fillText(this.format(max), left, 10);
    g.fillText('-15 min', left, hgt - 2);
    g.fillText('now', right - 20, hgt - 2);
    this.points.forEach((s, i) => {
      g.strokeStyle = COLORS[i % COLORS.length]; g.lineWidth = 1.8;
      g.beginPath();
      s.forEach(([t, v], j) => {
        const x = right - (now - t) / this.spanMs * (right - left);
        const y = bottom - v / max * (bottom - top);
        if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    });
    this.legend.replaceChildren(...this.names.map((n, i) => {
      const s = this.points[i];
      const last = s.length ? this.format(s[s.length - 1][1]) : '-';
      return h('span', { style: `color:${COLORS[i % COLORS.length]}; margin-right:1em` }, `● ${n}: ${last}`);
    }));
  }
}
