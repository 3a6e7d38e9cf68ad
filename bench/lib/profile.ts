/**
 * Reading a V8 CPU profile (`node --cpu-prof`): self time by function, with positions
 * mapped back to the TypeScript sources through the .js.map files next to dist/.
 * Shared by the benchmarks under bench/ that profile our broker (--profile DIR).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './processes.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

const sourceMaps = new Map<string, SourceMap | null>();
function originalPosition(url: string, line0: number, col0: number): string {
  if (!url.startsWith('file://')) return url === '' ? '' : `${url}:${line0 + 1}`;
  const file = fileURLToPath(url);
  let sm = sourceMaps.get(file);
  if (sm === undefined) {
    sm = null;
    try {
      if (existsSync(`${file}.map`)) sm = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      sm = null;
    }
    sourceMaps.set(file, sm);
  }
  const rel = (p: string) => (p.startsWith(ROOT) ? relative(ROOT, p) : p);
  if (sm && line0 >= 0) {
    const e = sm.findEntry(line0, Math.max(0, col0)) as { originalSource?: string; originalLine?: number };
    if (e.originalSource !== undefined && e.originalLine !== undefined) {
      const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource);
      return `${rel(src)}:${e.originalLine + 1}`;
    }
  }
  return `${rel(file)}:${line0 + 1}`;
}

export interface ProfileSummary {
  /** Non-idle sampled time, ms. */
  total_ms: number;
  /** Idle sampled time, ms (the main thread waiting for I/O). */
  idle_ms: number;
  top: Array<{ self_ms: number; self_pct: number; function: string; location: string }>;
}

/** Self time by function (name + original file:line), from a .cpuprofile; percentages of the non-idle time. */
export function summariseProfile(path: string, top: number): ProfileSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time after sample i belongs to it.
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const agg = new Map<string, { us: number; fn: string; loc: string }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const fn = cf.functionName || '(anonymous)';
    const loc = originalPosition(cf.url, cf.lineNumber, cf.columnNumber);
    const key = `${fn}\0${loc}`;
    const a = agg.get(key) ?? { us: 0, fn, loc };
    a.us += us;
    agg.set(key, a);
  }
  const rows = [...agg.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    total_ms: round(total / 1000, 1),
    idle_ms: round(idle / 1000, 1),
    top: rows.map((r) => ({ self_ms: round(r.us / 1000, 1), self_pct: round((100 * r.us) / total, 1), function: r.fn, location: r.loc })),
  };
}

/** The newest .cpuprofile in `dir` that is not in `before` (undefined: none was written). */
export function newestProfile(dir: string, before: ReadonlySet<string>): string | undefined {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && !before.has(f))
    .map((f) => join(dir, f))
    .sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
}
