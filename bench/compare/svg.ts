/**
 * Pure: grouped bar charts as a standalone SVG document, written by hand. One row per
 * metric; in each row one panel per workload, each with its own linear axis from 0 (the
 * workloads differ by orders of magnitude), one bar per broker, the value above each bar.
 */

export interface Series {
  name: string;
  color: string;
}

export interface Panel {
  /** Workload label under the panel. */
  label: string;
  /** Unit of this panel's values (shown in the bars' tooltips). */
  unit: string;
  /** One value per series, in the chart's series order; null = no figure. */
  values: Array<number | null>;
}

export interface ChartRow {
  title: string;
  panels: Panel[];
}

export interface ChartSpec {
  title: string;
  subtitle?: string;
  series: Series[];
  rows: ChartRow[];
}

export const PALETTE: Record<string, string> = { robust: '#2f6fb3', mosquitto: '#5aa05a', aedes: '#d98c2b' };

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k that is ≥ v (v > 0); 1 for v ≤ 0. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * e >= v * (1 - 1e-12)) return m * e;
  return 10 * e;
}

/** 1234567 → "1.23M", 534000 → "534k", 12.34 → "12.3", 0.834 → "0.83". */
export function compact(v: number): string {
  const a = Math.abs(v);
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  const sig3 = (x: number) => trim(x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (a >= 1e9) return `${sig3(v / 1e9)}G`;
  if (a >= 1e6) return `${sig3(v / 1e6)}M`;
  if (a >= 1e4) return `${sig3(v / 1e3)}k`;
  if (a >= 1000) return trim(v.toFixed(0));
  if (a === 0) return '0';
  if (a < 0.01) return v.toPrecision(2);
  return sig3(v);
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const PANEL_W = 176;
const PLOT_H = 120;
const BAR_GAP = 6;
const LEFT = 44;
const MARGIN = 16;

export function renderChartsSvg(spec: ChartSpec): string {
  const { parts, width, height } = chartParts(spec, 0);
  return document(width, height, parts);
}

/** Several charts one under the other in one SVG document (as wide as the widest). */
export function renderStackedSvg(specs: readonly ChartSpec[]): string {
  const parts: string[] = [];
  let top = 0;
  let width = 0;
  for (const spec of specs) {
    const c = chartParts(spec, top);
    parts.push(...c.parts);
    width = Math.max(width, c.width);
    top = c.height;
  }
  return document(Math.max(width, MARGIN * 2 + PANEL_W), Math.max(top, MARGIN * 2), parts);
}

function document(width: number, height: number, parts: readonly string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>
${parts.join('\n')}
</svg>
`;
}

/** One chart's elements, drawn from y = top down; `height` is where it ends (its bottom margin included). */
function chartParts(spec: ChartSpec, top0: number): { parts: string[]; width: number; height: number } {
  const nPanels = Math.max(1, ...spec.rows.map((r) => r.panels.length));
  let width = MARGIN * 2 + nPanels * PANEL_W;
  const parts: string[] = [];
  let y = top0 + MARGIN + 16;
  parts.push(`<text x="${MARGIN}" y="${y}" ${FONT} font-size="16" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle !== undefined) {
    y += 18;
    parts.push(`<text x="${MARGIN}" y="${y}" ${FONT} font-size="11" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  }
  // Legend.
  y += 20;
  let lx = MARGIN;
  for (const s of spec.series) {
    parts.push(`<rect class="legend" x="${lx}" y="${y - 10}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${lx + 16}" y="${y}" ${FONT} font-size="12">${escapeXml(s.name)}</text>`);
    lx += 28 + 7 * s.name.length;
  }
  width = Math.max(width, lx + MARGIN); // a long legend widens the chart
  y += 14;

  spec.rows.forEach((row, ri) => {
    y += 22;
    parts.push(`<text x="${MARGIN}" y="${y}" ${FONT} font-size="13" font-weight="bold">${escapeXml(row.title)}</text>`);
    const top = y + 22; // top of the plot area (room for the value labels)
    row.panels.forEach((p, pi) => {
      const x0 = MARGIN + pi * PANEL_W;
      const plotX = x0 + LEFT;
      const plotW = PANEL_W - LEFT - 10;
      const finite = p.values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      const max = niceCeil(Math.max(0, ...finite));
      const g: string[] = [];
      // Grid lines and tick labels at 0, 1/2 and 1 of the axis.
      for (const f of [0, 0.5, 1]) {
        const gy = top + PLOT_H - f * PLOT_H;
        g.push(`<line x1="${plotX}" y1="${gy}" x2="${plotX + plotW}" y2="${gy}" stroke="${f === 0 ? '#333' : '#ddd'}" stroke-width="1"/>`);
        g.push(`<text x="${plotX - 4}" y="${gy + 4}" ${FONT} font-size="10" fill="#555" text-anchor="end">${escapeXml(compact(f * max))}</text>`);
      }
      const n = Math.max(1, p.values.length);
      const bw = (plotW - BAR_GAP * (n + 1)) / n;
      p.values.forEach((v, si) => {
        const s = spec.series[si];
        if (!s) return;
        const bx = plotX + BAR_GAP + si * (bw + BAR_GAP);
        const cx = bx + bw / 2;
        if (v === null || !Number.isFinite(v)) {
          g.push(`<text x="${fmt(cx)}" y="${top + PLOT_H - 4}" ${FONT} font-size="9" fill="#888" text-anchor="middle">n/a</text>`);
          return;
        }
        const h = max > 0 ? (Math.max(0, v) / max) * PLOT_H : 0;
        const by = top + PLOT_H - h;
        g.push(
          `<rect class="bar" data-row="${ri}" data-panel="${pi}" data-series="${escapeXml(s.name)}" data-value="${v}" x="${fmt(bx)}" y="${fmt(by)}" width="${fmt(bw)}" height="${fmt(h)}" fill="${s.color}"><title>${escapeXml(`${s.name}, ${p.label}: ${compact(v)} ${p.unit}`)}</title></rect>`,
        );
        g.push(`<text x="${fmt(cx)}" y="${fmt(by - 3)}" ${FONT} font-size="9" text-anchor="middle">${escapeXml(compact(v))}</text>`);
      });
      g.push(`<text x="${fmt(plotX + plotW / 2)}" y="${top + PLOT_H + 14}" ${FONT} font-size="10" text-anchor="middle">${escapeXml(p.label)}</text>`);
      g.push(`<text x="${fmt(plotX + plotW / 2)}" y="${top + PLOT_H + 26}" ${FONT} font-size="9" fill="#777" text-anchor="middle">${escapeXml(p.unit)}</text>`);
      parts.push(`<g class="panel">${g.join('')}</g>`);
    });
    y = top + PLOT_H + 30;
  });
  return { parts, width, height: y + MARGIN };
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}
