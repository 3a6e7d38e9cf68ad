import type { HistoryOp, KvInput, KvOutput } from './linearizability.js';
import type { Prng } from './prng.js';

/** A sequential reference model run on random ops, then given random overlapping timing. */
export function randomLinearizableHistory(rng: Prng, nOps: number, keys: string[]): HistoryOp[] {
  const state = new Map<string, string>();
  const ops: HistoryOp[] = [];
  let valueSeq = 0;
  let lp = 0;
  for (let k = 0; k < nOps; k++) {
    lp += 1 + rng.int(3);
    const key = rng.pick(keys);
    const cur = state.get(key);
    const r = rng.int(10);
    let input: KvInput;
    let output: KvOutput;
    if (r < 4) {
      input = { kind: 'get', key };
      output = { kind: 'get', value: cur };
    } else if (r < 7) {
      const value = `v${valueSeq++}`;
      input = { kind: 'put', key, value };
      output = { kind: 'put' };
      state.set(key, value);
    } else {
      const value = `v${valueSeq++}`;
      const expected = rng.chance(0.6) ? cur : rng.chance(0.5) ? undefined : `v${rng.int(valueSeq)}`;
      const ok = expected === cur;
      input = { kind: 'cas', key, expected, value };
      output = { kind: 'cas', ok };
      if (ok) state.set(key, value);
    }
    const invoke = lp - rng.int(12);
    const roll = rng.int(20);
    const op: HistoryOp = { id: k, client: rng.int(5), input, invoke, response: lp + rng.int(12), output };
    if (roll === 0 && input.kind !== 'get') op.output = undefined; // took effect, client never learned
    else if (roll === 1) op.response = undefined; // known output, unknown time
    ops.push(op);
    // Sometimes a write that never takes effect at all.
    if (rng.chance(0.05)) {
      ops.push({ id: 100_000 + k, input: { kind: 'put', key, value: `lost${valueSeq++}` }, invoke: lp - rng.int(5), output: undefined });
    }
  }
  return rng.shuffle(ops);
}

