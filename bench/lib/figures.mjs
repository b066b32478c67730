// The report's figures: Vega-Lite specifications rendered headless to SVG by Vega (no
// browser, no canvas: `View.toSVG()` with the `none` renderer). We describe each chart as
// data plus encodings; the library draws axes, legends and marks. Every figure carries its
// title, axis titles with units, and a legend naming the systems compared, so it is
// readable on its own.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';

const WIDTH = 520;
const HEIGHT = 260;
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'right', labelLimit: 320, titleLimit: 320 },
  title: { fontSize: 14, anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555' },
};

/** Render a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec) {
  const vg = compile({ config: CONFIG, width: WIDTH, height: HEIGHT, ...spec }).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const titleOf = (title, subtitle) => (subtitle ? { text: title, subtitle } : title);

/**
 * Bars with min–max whiskers: one bar per row of `rows` ({ label, median, min, max,
 * group? }); `group` colours the bars (e.g. which system family) and names the legend.
 */
export function barSpec({ title, subtitle, rows, yTitle, xTitle = 'system', groupTitle = 'kind', logY = false }) {
  const data = rows.filter((r) => Number.isFinite(r.median));
  const order = data.map((r) => r.label);
  const x = { field: 'label', type: 'nominal', title: xTitle, sort: order, axis: { labelAngle: -30, labelLimit: 240 } };
  const y = { type: 'quantitative', title: yTitle, ...(logY ? { scale: { type: 'log' } } : {}) };
  return {
    title: titleOf(title, subtitle),
    data: { values: data.map((r) => ({ ...r, group: r.group ?? 'measured', min: r.min ?? r.median, max: r.max ?? r.median })) },
    layer: [
      { mark: 'bar', encoding: { x, y: { ...y, field: 'median' }, color: { field: 'group', type: 'nominal', title: groupTitle } } },
      { mark: { type: 'rule', color: 'black' }, encoding: { x, y: { ...y, field: 'min' }, y2: { field: 'max' } } },
      { mark: { type: 'text', dy: -8, fontSize: 10 }, encoding: { x, y: { ...y, field: 'max' }, text: { field: 'text' } } },
    ],
  };
}

/**
 * Lines (or points) of y over x, one per `series`: points ({ x, y, series }), optional
 * vertical markers ({ x, label }) for events such as host moves and the cut-over.
 */
export function lineSpec({ title, subtitle, points, xTitle, yTitle, seriesTitle = 'system', logX = false, logY = false, markers = [], mark = 'line', pointMarks = true, yDomainMin }) {
  const xs = { field: 'x', type: 'quantitative', title: xTitle, ...(logX ? { scale: { type: 'log' } } : {}) };
  const ys = { field: 'y', type: 'quantitative', title: yTitle, scale: { ...(logY ? { type: 'symlog' } : {}), ...(yDomainMin !== undefined ? { domainMin: yDomainMin } : {}) } };
  const layers = [{
    data: { values: points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) },
    mark: mark === 'line' ? { type: 'line', point: pointMarks, interpolate: 'linear' } : { type: mark, filled: true, size: 14, opacity: 0.7 },
    encoding: { x: xs, y: ys, color: { field: 'series', type: 'nominal', title: seriesTitle } },
  }];
  if (markers.length) {
    layers.push({
      data: { values: markers },
      mark: { type: 'rule', strokeDash: [4, 3], color: '#888' },
      encoding: { x: { field: 'x', type: 'quantitative' } },
    });
    layers.push({
      data: { values: markers },
      mark: { type: 'text', angle: 270, align: 'right', baseline: 'bottom', dx: -4, dy: -2, fontSize: 9, color: '#555' },
      encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
    });
  }
  return { title: titleOf(title, subtitle), layer: layers };
}

/** Small multiples of a line spec, one panel per value of `panel` in the points. */
export function panelLineSpec({ title, subtitle, points, xTitle, yTitle, seriesTitle = 'series', panelTitle, logY = false, mark = 'point', columns = 1, markers = [] }) {
  const panels = [...new Set(points.map((p) => p.panel))];
  return {
    title: titleOf(title, subtitle),
    vconcat: panels.map((panel) => {
      const inner = lineSpec({
        title: `${panelTitle ? `${panelTitle}: ` : ''}${panel}`, points: points.filter((p) => p.panel === panel),
        xTitle, yTitle, seriesTitle, logY, mark, markers: markers.filter((m) => m.panel === undefined || m.panel === panel),
      });
      return { width: WIDTH, height: Math.round(HEIGHT * 0.7), ...inner };
    }),
    ...(columns > 1 ? { columns } : {}),
  };
}

/** Write `figures/NAME.svg` under `dir`; returns the relative path for the report. */
export async function writeFigure(dir, name, spec) {
  const figDir = join(dir, 'figures');
  mkdirSync(figDir, { recursive: true });
  const svg = await renderSvg(spec);
  writeFileSync(join(figDir, `${name}.svg`), svg);
  return `figures/${name}.svg`;
}
