/**
 * Property test without a dependency: a seeded generator (reproducible: the
 * seed is in the failure message) throws garbage and near-miss commands at the
 * machine. Properties: apply never throws; a rejected entry changes no state
 * and publishes nothing; two machines fed the same entries stay identical.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeCommand } from '../../../src/meta/state/commands.js';
import { createMetaStateMachine } from '../../../src/meta/state/default-records.js';
import { Harness, replay, sampleHistory, stateBytes } from './support.js';
import { mulberry32 } from '../../support/mulberry32.js';

const rng = mulberry32;

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => {
  const x = xs[int(r, xs.length)];
  if (x === undefined) throw new Error('empty choice');
  return x;
};

const STRINGS = ['', 'a', 'orders', '*', '.', '..', '__proto__', 'constructor', 'a/#', '+', '$share/g/a', 'x'.repeat(300), '\u0000', 'ü', 'n1:1228'];
const NUMBERS = [0, 1, -1, 2, 3, 0.5, 1e21, -0, 4294967296, Number.MAX_SAFE_INTEGER, 10_000, 10_001, 2 ** 53];

function value(r: Rand, depth = 0): unknown {
  switch (int(r, depth > 2 ? 5 : 7)) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return pick(r, NUMBERS);
    case 3:
      return pick(r, STRINGS);
    case 4:
      return int(r, 5);
    case 5:
      return Array.from({ length: int(r, 4) }, () => value(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 4); i > 0; i--) o[pick(r, [...STRINGS, 'kind', 'name', 'topic', 'shards'])] = value(r, depth + 1);
      return o;
    }
  }
}

/** A valid command with one or two fields broken, dropped or added. */
function nearMiss(r: Rand, kinds: readonly string[]): object {
  const base: Record<string, unknown> = { ...pick(r, sampleHistory()) };
  for (let n = 1 + int(r, 2); n > 0; n--) {
    const keys = Object.keys(base);
    const key = pick(r, keys);
    switch (int(r, 4)) {
      case 0:
        delete base[key];
        break;
      case 1:
        base[key] = value(r);
        break;
      case 2:
        base[pick(r, STRINGS)] = value(r);
        break;
      default:
        base['kind'] = pick(r, kinds);
    }
  }
  return base;
}

function entry(r: Rand, kinds: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  switch (int(r, 4)) {
    case 0:
      return Uint8Array.from({ length: int(r, 48) }, () => int(r, 256));
    case 1:
      return enc.encode(JSON.stringify(value(r)) ?? 'undefined');
    case 2:
      return enc.encode(JSON.stringify({ kind: pick(r, kinds), ...(value(r) as object) }));
    default:
      return enc.encode(JSON.stringify(nearMiss(r, kinds)));
  }
}

describe('fuzzing apply', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    it(`never throws, and rejected entries change nothing (seed ${seed})`, () => {
      const r = rng(seed);
      const a = new Harness();
      const b = new Harness();
      replay(a, sampleHistory());
      replay(b, sampleHistory());
      const kinds = a.machine.commandKinds();
      let rejected = 0;
      for (let i = 0; i < 600; i++) {
        const data = entry(r, kinds);
        const before = stateBytes(a.machine);
        const events = a.changes.length;
        let result;
        try {
          result = a.machine.apply(++a.index, data);
        } catch (err) {
          assert.fail(`seed ${seed} step ${i}: apply threw ${String(err)} for ${new TextDecoder().decode(data)}`);
        }
        assert.equal(b.machine.apply(++b.index, data).ok, result.ok);
        if (!result.ok) {
          rejected++;
          assert.equal(typeof result.code, 'string');
          assert.notEqual(result.code, 'internal', `seed ${seed} step ${i}: ${result.message}`);
          assert.equal(stateBytes(a.machine), before, `seed ${seed} step ${i}: rejected entry changed state`);
          assert.equal(a.changes.length, events);
        }
      }
      assert.ok(rejected > 300, 'the generator mostly produces bad input');
      assert.deepEqual(a.machine.snapshot(), b.machine.snapshot());
      const restored = createMetaStateMachine();
      restored.restore(a.machine.snapshot());
      assert.deepEqual(restored.snapshot(), a.machine.snapshot(), 'whatever the fuzz produced round-trips');
      assert.equal(restored.apply(restored.appliedIndex + 1, encodeCommand({ kind: 'config.set', key: 'k', value: 'v' })).ok, true);
    });
  }
});
