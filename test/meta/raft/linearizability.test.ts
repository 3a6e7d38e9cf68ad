import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHistory, type HistoryOp } from './sim/linearizability.js';
import { randomLinearizableHistory } from './sim/histories.js';
import { Prng } from './sim/prng.js';

let nextId = 1;
function put(key: string, value: string, invoke: number, response?: number, indeterminate = false): HistoryOp {
  return { id: nextId++, input: { kind: 'put', key, value }, invoke, response, output: indeterminate ? undefined : { kind: 'put' } };
}
function get(key: string, value: string | undefined, invoke: number, response?: number): HistoryOp {
  return { id: nextId++, input: { kind: 'get', key }, invoke, response, output: { kind: 'get', value } };
}
function cas(key: string, expected: string | undefined, value: string, ok: boolean | undefined, invoke: number, response?: number): HistoryOp {
  return {
    id: nextId++,
    input: { kind: 'cas', key, expected, value },
    invoke,
    response,
    output: ok === undefined ? undefined : { kind: 'cas', ok },
  };
}

function assertOk(h: HistoryOp[]): void {
  const r = checkHistory(h);
  assert.ok(r.ok, r.ok ? '' : r.explanation);
  assert.deepEqual(r.inconclusive, []);
}
function assertViolation(h: HistoryOp[], key?: string): string {
  const r = checkHistory(h);
  assert.ok(!r.ok, 'expected a linearizability violation');
  if (key !== undefined) assert.equal(r.key, key);
  return r.explanation;
}

describe('linearizability checker: hand-made histories', () => {
  it('accepts the empty history and sequential histories', () => {
    assertOk([]);
    assertOk([get('x', undefined, 0, 1), put('x', 'a', 2, 3), get('x', 'a', 4, 5), cas('x', 'a', 'b', true, 6, 7), get('x', 'b', 8, 9), cas('x', 'a', 'c', false, 10, 11)]);
  });

  it('accepts concurrent ops in either order', () => {
    // The read overlaps the write: it may see either value.
    assertOk([put('x', 'a', 0, 1), put('x', 'b', 2, 10), get('x', 'a', 3, 4), get('x', 'b', 5, 6)]);
    assertOk([put('x', 'a', 0, 10), put('x', 'b', 0, 10), get('x', 'b', 1, 2), get('x', 'a', 3, 11)]);
    // Ops sharing a timestamp count as concurrent.
    assertOk([put('x', 'a', 0, 5), get('x', undefined, 5, 6)]);
  });

  it('rejects a stale read after a completed write', () => {
    const e = assertViolation([put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'a', 4, 5)], 'x');
    assert.match(e, /not linearizable/);
  });

  it('rejects a read of a value never written', () => {
    assertViolation([put('x', 'a', 0, 1), get('x', 'zzz', 2, 3)], 'x');
  });

  it('rejects two reads seeing two concurrent writes in opposite orders', () => {
    // Two writes overlap each other; reader 1 sees a then b, reader 2 sees b then a.
    assertViolation(
      [
        put('x', 'a', 0, 10),
        put('x', 'b', 0, 10),
        get('x', 'a', 1, 2),
        get('x', 'b', 3, 4),
        get('x', 'b', 1, 2),
        get('x', 'a', 3, 4),
      ],
      'x',
    );
  });

  it('rejects a lost completed write', () => {
    assertViolation([put('x', 'a', 0, 1), get('x', undefined, 2, 3)], 'x');
    assertViolation([put('x', 'a', 0, 1), put('x', 'b', 2, 3), get('x', 'b', 4, 5), get('x', 'a', 6, 7)], 'x');
  });

  it('rejects a cas that succeeded against the wrong value, and a wrongly failed cas', () => {
    assertViolation([put('x', 'a', 0, 1), cas('x', 'z', 'b', true, 2, 3)], 'x');
    assertViolation([put('x', 'a', 0, 1), cas('x', 'a', 'b', false, 2, 3)], 'x');
    // Two successful cas from the same expected value cannot both succeed.
    assertViolation([put('x', 'a', 0, 1), cas('x', 'a', 'b', true, 2, 5), cas('x', 'a', 'c', true, 2, 5)], 'x');
    assertOk([put('x', 'a', 0, 1), cas('x', 'a', 'b', true, 2, 5), cas('x', 'a', 'c', false, 2, 5), get('x', 'b', 6, 7)]);
  });

  it('treats an indeterminate write as may-or-may-not have happened, any time after its invoke', () => {
    // Never took effect.
    assertOk([put('x', 'a', 0, 1), put('x', 'b', 2, undefined, true), get('x', 'a', 10, 11)]);
    // Took effect long after the client gave up on it.
    assertOk([put('x', 'a', 0, 1), put('x', 'b', 2, undefined, true), get('x', 'a', 10, 11), get('x', 'b', 20, 21)]);
    // Cannot take effect before it was invoked.
    assertViolation([put('x', 'a', 0, 1), get('x', 'b', 2, 3), put('x', 'b', 5, undefined, true)], 'x');
    // Takes effect at most once: a -> b -> a -> b needs two writes of b.
    assertViolation(
      [put('x', 'a', 0, 1), put('x', 'b', 2, undefined, true), get('x', 'b', 3, 4), put('x', 'a', 5, 6), get('x', 'b', 7, 8)],
      'x',
    );
    // An indeterminate cas applies only if its expected value is current.
    assertOk([put('x', 'a', 0, 1), cas('x', 'a', 'b', undefined, 2), get('x', 'b', 5, 6)]);
    assertViolation([put('x', 'a', 0, 1), cas('x', 'z', 'b', undefined, 2), get('x', 'b', 5, 6)], 'x');
    // An indeterminate get constrains nothing.
    assertOk([put('x', 'a', 0, 1), { id: nextId++, input: { kind: 'get', key: 'x' }, invoke: 2 }]);
  });

  it('requires an op with a known output but unknown response time to be linearised after its invoke', () => {
    assertOk([put('x', 'a', 0, 1), cas('x', 'a', 'b', true, 2, undefined), get('x', 'a', 3, 4), get('x', 'b', 9, 10)]);
    // ... and it did take effect: once the value is no longer `a`, a successful cas(a -> b) invoked later is impossible.
    assertViolation([put('x', 'a', 0, 1), get('x', 'a', 2, 3), put('x', 'c', 4, 5), cas('x', 'a', 'b', true, 6, undefined)], 'x');
  });

  it('checks keys independently and names the failing key', () => {
    const e = assertViolation([put('x', 'a', 0, 1), get('x', 'a', 2, 3), put('y', 'a', 0, 1), put('y', 'b', 2, 3), get('y', 'a', 4, 5)], 'y');
    assert.match(e, /key "y"/);
  });

  it('explains a violation with a small set of ops', () => {
    const h: HistoryOp[] = [];
    for (let i = 0; i < 30; i++) h.push(get('x', i === 0 ? undefined : `v${i - 1}`, 4 * i, 4 * i + 1), put('x', `v${i}`, 4 * i + 2, 4 * i + 3));
    h.push(get('x', 'v3', 500, 501)); // stale
    const r = checkHistory(h);
    assert.ok(!r.ok);
    assert.ok(r.ops.length < h.length, `shrunk to ${r.ops.length}`);
    assert.ok(r.ops.some((o) => o.invoke === 500));
    assert.match(r.explanation, /get\(x\) -> "v3"/);
  });
});

/** Exhaustive reference: try every order (and every subset of indeterminate ops). Small histories only. */
function bruteForceLinearizable(ops: HistoryOp[]): boolean {
  const byKey = new Map<string, HistoryOp[]>();
  for (const o of ops) {
    const l = byKey.get(o.input.key) ?? [];
    l.push(o);
    byKey.set(o.input.key, l);
  }
  for (const list of byKey.values()) {
    const relevant = list.filter((o) => !(o.output === undefined && o.input.kind === 'get'));
    const placed = new Array<boolean>(relevant.length).fill(false);
    const resp = (o: HistoryOp): number => (o.output === undefined || o.response === undefined ? Infinity : o.response);
    const dfs = (s: string | undefined): boolean => {
      if (relevant.every((o, i) => placed[i] || o.output === undefined)) return true;
      for (let i = 0; i < relevant.length; i++) {
        if (placed[i]) continue;
        const x = relevant[i]!;
        // Every unplaced op that must be linearised and returned before x was invoked must come first.
        if (relevant.some((o, j) => !placed[j] && j !== i && o.output !== undefined && resp(o) < x.invoke)) continue;
        let next: string | undefined = s;
        const inp = x.input;
        if (inp.kind === 'put') next = inp.value;
        else if (inp.kind === 'get') {
          if (x.output?.kind === 'get' && x.output.value !== s) continue;
        } else {
          const match = s === inp.expected;
          if (x.output !== undefined && (x.output.kind !== 'cas' || x.output.ok !== match)) continue;
          if (match) next = inp.value;
        }
        placed[i] = true;
        const ok = dfs(next);
        placed[i] = false;
        if (ok) return true;
      }
      return false;
    };
    if (!dfs(undefined)) return false;
  }
  return true;
}

function randomSmallHistory(rng: Prng): HistoryOp[] {
  const n = 2 + rng.int(6);
  const vals = ['a', 'b', 'c'];
  const ops: HistoryOp[] = [];
  for (let k = 0; k < n; k++) {
    const invoke = rng.int(10);
    const response = rng.chance(0.1) ? undefined : invoke + rng.int(6);
    const key = rng.chance(0.8) ? 'x' : 'y';
    const r = rng.int(3);
    const maybe = rng.chance(0.15);
    if (r === 0) ops.push({ id: k, input: { kind: 'put', key, value: rng.pick(vals) }, invoke, response, output: maybe ? undefined : { kind: 'put' } });
    else if (r === 1) ops.push({ id: k, input: { kind: 'get', key }, invoke, response, output: { kind: 'get', value: rng.chance(0.2) ? undefined : rng.pick(vals) } });
    else
      ops.push({
        id: k,
        input: { kind: 'cas', key, expected: rng.chance(0.2) ? undefined : rng.pick(vals), value: rng.pick(vals) },
        invoke,
        response,
        output: maybe ? undefined : { kind: 'cas', ok: rng.chance(0.5) },
      });
  }
  return ops;
}

/** Small histories whose writes all write distinct values (the checker prunes more then), many floating. */
function randomUniqueHistory(rng: Prng): HistoryOp[] {
  const n = 3 + rng.int(6);
  const written: string[] = [];
  const ops: HistoryOp[] = [];
  for (let k = 0; k < n; k++) {
    const invoke = rng.int(12);
    const response = rng.chance(0.3) ? undefined : invoke + rng.int(6);
    const r = rng.int(3);
    const maybe = rng.chance(0.3);
    const anyValue = (): string | undefined => (written.length === 0 || rng.chance(0.25) ? undefined : rng.pick(written));
    if (r === 0) {
      const value = `w${k}`;
      written.push(value);
      ops.push({ id: k, input: { kind: 'put', key: 'x', value }, invoke, response, output: maybe ? undefined : { kind: 'put' } });
    } else if (r === 1) {
      ops.push({ id: k, input: { kind: 'get', key: 'x' }, invoke, response, output: { kind: 'get', value: anyValue() } });
    } else {
      const value = `w${k}`;
      const expected = anyValue();
      written.push(value);
      ops.push({ id: k, input: { kind: 'cas', key: 'x', expected, value }, invoke, response, output: maybe ? undefined : { kind: 'cas', ok: rng.chance(0.5) } });
    }
  }
  return ops;
}

describe('linearizability checker: random histories', () => {
  it('accepts 400 random histories produced by a sequential model with overlapping timing', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const rng = new Prng(seed);
      const h = randomLinearizableHistory(rng, 20 + rng.int(120), ['a', 'b', 'c'].slice(0, 1 + rng.int(3)));
      const r = checkHistory(h);
      assert.ok(r.ok, `seed ${seed}: ${r.ok ? '' : r.explanation}`);
      assert.deepEqual(r.inconclusive, [], `seed ${seed}`);
    }
  });

  it('detects a stale read injected into random linearizable histories', () => {
    let detected = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const rng = new Prng(seed * 7919);
      const h = randomLinearizableHistory(rng, 40, ['k']).filter((o) => o.output !== undefined && o.response !== undefined);
      // After everything has completed, read a value that is certainly not the last one written.
      const end = Math.max(...h.map((o) => o.response ?? 0)) + 10;
      h.push(put('k', 'final', end, end + 1), get('k', 'not-final', end + 2, end + 3));
      if (!checkHistory(h).ok) detected++;
    }
    assert.equal(detected, 100);
  });

  it('agrees with an exhaustive search on 3000 small random histories', () => {
    let violations = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const rng = new Prng(seed + 1_000_000);
      const h = randomSmallHistory(rng);
      const expected = bruteForceLinearizable(h);
      const r = checkHistory(h);
      if (!expected) violations++;
      assert.equal(r.ok, expected, `seed ${seed}: checker says ${r.ok}, brute force says ${expected}\n${JSON.stringify(h)}`);
    }
    assert.ok(violations > 100, `only ${violations} non-linearizable samples`);
  });

  it('agrees with an exhaustive search on 3000 small random histories with unique values and floating writes', () => {
    let violations = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const rng = new Prng(seed + 2_000_000);
      const h = randomUniqueHistory(rng);
      const expected = bruteForceLinearizable(h);
      const r = checkHistory(h);
      if (!expected) violations++;
      assert.equal(r.ok, expected, `seed ${seed}: checker says ${r.ok}, brute force says ${expected}\n${JSON.stringify(h)}`);
    }
    assert.ok(violations > 300 && violations < 2700, `${violations} non-linearizable samples`);
  });

  it('gives the same verdict with and without pruning on 300 perturbed random histories', () => {
    let violations = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Prng(seed + 3_000_000);
      const h = randomLinearizableHistory(rng, 10 + rng.int(40), ['k']);
      // Perturb: shift an op's timing or corrupt a read.
      for (let m = rng.int(3); m > 0; m--) {
        const op = rng.pick(h);
        if (rng.chance(0.5)) op.invoke += rng.int(20) - 10;
        else if (op.input.kind === 'get' && op.output?.kind === 'get') op.output = { kind: 'get', value: `v${rng.int(60)}` };
        if (op.response !== undefined && op.response < op.invoke) op.response = op.invoke;
      }
      const pruned = checkHistory(h, { shrink: false });
      const full = checkHistory(h, { shrink: false, prune: false });
      if (!full.ok) violations++;
      assert.equal(pruned.ok, full.ok, `seed ${seed}`);
    }
    assert.ok(violations > 20, `only ${violations} violations`);
  });
});
