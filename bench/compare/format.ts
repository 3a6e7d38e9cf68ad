/** Pure: number formatting for the comparison's report (Markdown tables and terminal lines). */

export function fmtInt(n: number | null | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

/** Milliseconds with about 3 significant digits. */
export function fmtMs(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  if (n >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

export function fmtNum(n: number | null | undefined, digits = 2): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '—';
}

export function fmtRatio(r: number | null | undefined): string {
  if (typeof r !== 'number' || !Number.isFinite(r)) return '—';
  return `×${r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

export function fmtMiB(bytes: number | null | undefined): string {
  return typeof bytes === 'number' && Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) : '—';
}

export function fmtKiB(bytes: number | null | undefined): string {
  return typeof bytes === 'number' && Number.isFinite(bytes) ? (bytes / 1024).toFixed(1) : '—';
}
