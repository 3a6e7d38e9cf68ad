/**
 * TopicTree matching throughput (src/broker/core/topic-tree.ts), in process.
 *
 * Subscriptions: `--subs` (100k) filters over an IoT-shaped topic space
 * `r<0..9>/s<0..99>/d<0..999>/m<0..9>`, each with its own client id:
 *   70% exact (`r3/s41/d907/m2`), 20% with one or two '+' levels (`r3/+/d907/m2`,
 *   `+/s41/+/m2`), 10% '#' under a device (`r3/s41/d907/#`, 70%), a site (`r3/s41/#`,
 *   29%) or a region (`r3/#`, 1%), and a handful of `#` and `$SYS/#`.
 * Publishes: random topics of the same space (pre-built, 64k of them, 1% `$SYS/...`),
 * each matched against the tree with a callback that counts deliveries.
 *
 * Also measured: fan-out (one filter with `--fanout` (10k) subscribers: deliveries/s)
 * and add + remove of every subscription.
 *
 *   node dist/bench/topic-tree.js [--subs 100000] [--seconds 3] [--fanout 10000] [--seed 1]
 *
 * Prints figures and, as its last line, JSON:
 *   { "subscriptions": N, "matches_per_s": N, "deliveries_per_match": N, "fanout_deliveries_per_s": N, "adds_per_s": N, "removes_per_s": N }
 */
import { parseArgs } from 'node:util';
import { TopicTree } from '../src/broker/core/topic-tree.js';

const { values } = parseArgs({
  options: {
    subs: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '3' },
    fanout: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
  },
});
const SUBS = Number(values.subs);
const SECONDS = Number(values.seconds);
const FANOUT = Number(values.fanout);

let state = Number(values.seed) >>> 0;
function rand(): number {
  // mulberry32
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number): number => Math.floor(rand() * n);

function randomLevels(): string[] {
  return [`r${int(10)}`, `s${int(100)}`, `d${int(1000)}`, `m${int(10)}`];
}

function randomFilter(): string {
  const x = rand();
  const levels = randomLevels();
  if (x < 0.7) return levels.join('/');
  if (x < 0.9) {
    levels[int(4)] = '+';
    if (rand() < 0.5) levels[int(4)] = '+';
    return levels.join('/');
  }
  if (x < 0.99995) {
    const y = rand(); // prefix of 3 levels (a device) mostly, of 1 (a whole region) rarely
    return [...levels.slice(0, y < 0.7 ? 3 : y < 0.99 ? 2 : 1), '#'].join('/');
  }
  return rand() < 0.5 ? '#' : '$SYS/#';
}

function buildTree(filters: string[]): TopicTree<number> {
  const tree = new TopicTree<number>();
  for (let i = 0; i < filters.length; i++) tree.add(filters[i]!, `client-${i}`, i);
  return tree;
}

/** Runs fn(i) for i = 0, 1, ... in batches for about `seconds`; returns calls per second. */
function timed(seconds: number, batch: number, fn: (i: number) => void): { calls: number; perSecond: number } {
  let calls = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < stop) {
    for (let j = 0; j < batch; j++) fn(calls + j);
    calls += batch;
    now = process.hrtime.bigint();
  }
  return { calls, perSecond: calls / (Number(now - start) / 1e9) };
}

const filters = Array.from({ length: SUBS }, randomFilter);
const topics = Array.from({ length: 65_536 }, () => (rand() < 0.01 ? `$SYS/broker/${randomLevels().slice(1).join('/')}` : randomLevels().join('/')));
const mask = topics.length - 1;

// Build (add) and tear down (remove) timings.
let t0 = process.hrtime.bigint();
let tree = buildTree(filters);
const addSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${SUBS} subscriptions on ${tree.filters()} distinct filters (built in ${(addSeconds * 1000).toFixed(0)} ms); heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`);

let deliveries = 0;
const onMatch = (value: number): void => {
  deliveries += value >= 0 ? 1 : 0;
};

// Warm up, then measure.
timed(0.5, 1024, (i) => tree.match(topics[i & mask]!, onMatch));
deliveries = 0;
const m = timed(SECONDS, 1024, (i) => tree.match(topics[i & mask]!, onMatch));
const perMatch = deliveries / m.calls;
console.log(`match: ${Math.round(m.perSecond).toLocaleString('en-US')} matches/s (${(1e9 / m.perSecond).toFixed(0)} ns each), ${perMatch.toFixed(2)} deliveries per match`);

// Fan-out: one filter, many subscribers.
const fan = new TopicTree<number>();
for (let i = 0; i < FANOUT; i++) fan.add('news/+/headlines', `client-${i}`, i);
deliveries = 0;
timed(0.3, 16, () => fan.match('news/world/headlines', onMatch));
deliveries = 0;
const f = timed(SECONDS / 2, 16, () => fan.match('news/world/headlines', onMatch));
const fanoutPerS = deliveries / (f.calls / f.perSecond);
console.log(`fan-out: ${FANOUT} subscribers on one filter: ${Math.round(fanoutPerS).toLocaleString('en-US')} deliveries/s`);

// Add and remove of every subscription, on a fresh tree.
tree = new TopicTree<number>();
t0 = process.hrtime.bigint();
for (let i = 0; i < SUBS; i++) tree.add(filters[i]!, `client-${i}`, i);
const addsPerS = SUBS / (Number(process.hrtime.bigint() - t0) / 1e9);
t0 = process.hrtime.bigint();
for (let i = 0; i < SUBS; i++) tree.remove(filters[i]!, `client-${i}`);
const removesPerS = SUBS / (Number(process.hrtime.bigint() - t0) / 1e9);
if (tree.size !== 0 || tree.filters() !== 0) throw new Error('tree not empty after removing everything');
console.log(`add: ${Math.round(addsPerS).toLocaleString('en-US')}/s, remove: ${Math.round(removesPerS).toLocaleString('en-US')}/s`);

console.log(
  JSON.stringify({
    subscriptions: SUBS,
    matches_per_s: Math.round(m.perSecond),
    deliveries_per_match: Number(perMatch.toFixed(2)),
    fanout_deliveries_per_s: Math.round(fanoutPerS),
    adds_per_s: Math.round(addsPerS),
    removes_per_s: Math.round(removesPerS),
  }),
);
