import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidFilterError, parseSharedFilter, SharedGroup, type SharedStrategy } from '../../../src/broker/core/shared-subscriptions.js';
import { RobustError } from '../../../src/common/errors.js';
import { mulberry32 } from '../../support/mulberry32.js';

function picks<M>(group: SharedGroup<M>, count: number, publisher = 'pub', eligible?: (m: M) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(group.pick(publisher, eligible)?.[0] ?? '-');
  return out;
}

function counts(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

function groupOf(strategy: SharedStrategy, keys: string[], seed = 1): SharedGroup<string> {
  const g = new SharedGroup<string>(strategy, mulberry32(seed));
  for (const k of keys) g.add(k, k.toUpperCase());
  return g;
}

describe('parseSharedFilter', () => {
  it('is undefined for a filter that is not shared', () => {
    for (const f of ['a/b', '#', '$SYS/#', '$share', '$shared/g/a', '$SHARE/g/a', 'x/$share/g/a']) assert.equal(parseSharedFilter(f), undefined, f);
  });

  it('splits $share/<group>/<filter>', () => {
    assert.deepEqual(parseSharedFilter('$share/g1/sport/tennis/+'), { group: 'g1', filter: 'sport/tennis/+' });
    assert.deepEqual(parseSharedFilter('$share/consumer1/#'), { group: 'consumer1', filter: '#' });
    assert.deepEqual(parseSharedFilter('$share/g//finance'), { group: 'g', filter: '/finance' });
    assert.deepEqual(parseSharedFilter('$share/g//'), { group: 'g', filter: '/' });
    assert.deepEqual(parseSharedFilter('$share/g/$SYS/#'), { group: 'g', filter: '$SYS/#' });
    assert.deepEqual(parseSharedFilter('$share/$share/a'), { group: '$share', filter: 'a' });
    assert.deepEqual(parseSharedFilter('$share/组/温度'), { group: '组', filter: '温度' });
  });

  it('throws InvalidFilterError for a malformed shared filter', () => {
    const bad = [
      '$share/',
      '$share/g',
      '$share/g/',
      '$share//a',
      '$share//',
      '$share/+/a',
      '$share/#/a',
      '$share/g+/a',
      '$share/g#/a',
      '$share/g/a#',
      '$share/g/a/#/b',
      '$share/g/a+/b',
      '$share/g/\u0000',
      '$share/g\u0000/a',
      `$share/g/${'a'.repeat(65535)}`,
    ];
    for (const f of bad) {
      assert.throws(
        () => parseSharedFilter(f),
        (err: unknown) => err instanceof InvalidFilterError && err instanceof RobustError && err.code === 'invalid_filter' && err.filter === f && err.reason.length > 0,
        JSON.stringify(f.slice(0, 40)),
      );
    }
  });
});

describe('SharedGroup: membership', () => {
  it('add, replace, remove, size, get, entries; empty group picks nothing', () => {
    const g = new SharedGroup<number>();
    assert.equal(g.strategy, 'round_robin');
    assert.equal(g.pick('p'), undefined);
    assert.equal(g.pickIndex('p'), -1);
    assert.equal(g.add('a', 1), true);
    assert.equal(g.add('b', 2), true);
    assert.equal(g.add('a', 3), false, 'replace keeps the place');
    assert.equal(g.size, 2);
    assert.equal(g.get('a'), 3);
    assert.equal(g.has('b'), true);
    assert.deepEqual([...g.entries()], [['a', 3], ['b', 2]]);
    assert.equal(g.remove('x'), false);
    assert.equal(g.remove('a'), true);
    assert.equal(g.remove('a'), false);
    assert.equal(g.size, 1);
    assert.equal(g.get('a'), undefined);
    assert.deepEqual(g.pick('p'), ['b', 2]);
    const i = g.pickIndex('p');
    assert.equal(g.keyAt(i), 'b');
    assert.equal(g.memberAt(i), 2);
    assert.throws(() => g.keyAt(5), RangeError);
    assert.throws(() => g.memberAt(-1), RangeError);
    g.remove('b');
    assert.equal(g.pick('p'), undefined);
  });

  it('rejects an unknown strategy', () => {
    assert.throws(() => new SharedGroup('least_busy' as SharedStrategy), RangeError);
  });

  for (const strategy of ['round_robin', 'random', 'sticky', 'hash_clientid'] as const) {
    it(`${strategy}: picks only eligible members, undefined when none is`, () => {
      const g = groupOf(strategy, ['a', 'b', 'c', 'd', 'e', 'f']);
      const ok = new Set(['B', 'E']);
      for (let i = 0; i < 200; i++) {
        const p = g.pick(`client-${i}`, (m) => ok.has(m));
        assert.ok(p !== undefined && ok.has(p[1]), String(p));
      }
      assert.equal(g.pick('p', () => false), undefined);
      // Every member ineligible once, then eligible again: picks resume.
      assert.notEqual(g.pick('p'), undefined);
    });

    it(`${strategy}: never picks a removed member; a re-added one is picked again`, () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.constantFrom('add', 'remove', 'pick'), fc.constantFrom('a', 'b', 'c', 'd')), { maxLength: 100 }), fc.integer(), (ops, seed) => {
          const g = new SharedGroup<string>(strategy, mulberry32(seed));
          const members = new Set<string>();
          for (const [op, k] of ops) {
            if (op === 'add') {
              assert.equal(g.add(k, k), !members.has(k));
              members.add(k);
            } else if (op === 'remove') {
              assert.equal(g.remove(k), members.delete(k));
            } else {
              const p = g.pick(`pub-${k}`);
              if (members.size === 0) assert.equal(p, undefined);
              else assert.ok(p !== undefined && members.has(p[0]) && p[1] === p[0]);
            }
            assert.equal(g.size, members.size);
          }
        }),
        { numRuns: 200 },
      );
    });
  }
});

describe('SharedGroup: round_robin', () => {
  it('rotates through the members in join order', () => {
    const g = groupOf('round_robin', ['a', 'b', 'c']);
    assert.deepEqual(picks(g, 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('is stable under removes before, at and after the cursor, and adds', () => {
    const g = groupOf('round_robin', ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(picks(g, 2), ['a', 'b']); // next: c
    g.remove('a'); // before the cursor
    assert.deepEqual(picks(g, 1), ['c']); // next: d
    g.remove('d'); // at the cursor: the one after it is next
    assert.deepEqual(picks(g, 1), ['e']); // next: b (wrapped)
    g.remove('e'); // after the cursor
    g.add('f', 'F'); // joins at the end, gets its turn
    assert.deepEqual(picks(g, 4), ['b', 'c', 'f', 'b']);
    g.remove('c'); // next was c: f is next
    assert.deepEqual(picks(g, 3), ['f', 'b', 'f']);
    g.remove('f'); // the last one, cursor wraps
    assert.deepEqual(picks(g, 2), ['b', 'b']);
  });

  it('skips ineligible members and carries on after the one picked', () => {
    const g = groupOf('round_robin', ['a', 'b', 'c', 'd']);
    const skip = new Set(['B', 'C']);
    assert.deepEqual(picks(g, 4, 'p', (m) => !skip.has(m)), ['a', 'd', 'a', 'd']);
    assert.deepEqual(picks(g, 4), ['a', 'b', 'c', 'd']);
  });

  it('gives every member the same share', () => {
    const g = groupOf('round_robin', Array.from({ length: 7 }, (_, i) => `m${i}`));
    for (const n of counts(picks(g, 7 * 1000)).values()) assert.equal(n, 1000);
  });
});

describe('SharedGroup: random', () => {
  it('is roughly uniform', () => {
    const keys = Array.from({ length: 10 }, (_, i) => `m${i}`);
    const c = counts(picks(groupOf('random', keys, 42), 50_000));
    assert.equal(c.size, 10);
    for (const n of c.values()) assert.ok(n > 4500 && n < 5500, String(n));
  });

  it('is roughly uniform over the eligible members when some are not', () => {
    const keys = Array.from({ length: 10 }, (_, i) => `m${i}`);
    const ok = new Set(['M1', 'M2', 'M7']);
    const c = counts(picks(groupOf('random', keys, 7), 30_000, 'p', (m) => ok.has(m)));
    assert.deepEqual([...c.keys()].sort(), ['m1', 'm2', 'm7']);
    for (const n of c.values()) assert.ok(n > 9000 && n < 11000, String(n));
  });
});

describe('SharedGroup: sticky', () => {
  it('keeps the same member until it leaves or is not eligible', () => {
    const g = groupOf('sticky', ['a', 'b', 'c', 'd'], 3);
    const first = picks(g, 50);
    assert.equal(new Set(first).size, 1);
    const s1 = first[0]!;
    // Ineligible: another member, which then sticks, even once the first is eligible again.
    const second = picks(g, 50, 'p', (m) => m !== s1.toUpperCase());
    assert.equal(new Set(second).size, 1);
    const s2 = second[0]!;
    assert.notEqual(s2, s1);
    assert.deepEqual(new Set(picks(g, 50)), new Set([s2]));
    g.add('e', 'E');
    assert.deepEqual(new Set(picks(g, 10)), new Set([s2]), 'a new member does not unstick');
    g.remove(s2);
    const third = picks(g, 50);
    assert.equal(new Set(third).size, 1);
    assert.notEqual(third[0], s2);
  });

  it('the member it sticks to is chosen at random', () => {
    const c = new Map<string, number>();
    for (let seed = 0; seed < 400; seed++) {
      const k = groupOf('sticky', ['a', 'b', 'c', 'd'], seed).pick('p')![0];
      c.set(k, (c.get(k) ?? 0) + 1);
    }
    assert.equal(c.size, 4);
    for (const n of c.values()) assert.ok(n > 60, String(n));
  });
});

describe('SharedGroup: hash_clientid', () => {
  const members = Array.from({ length: 8 }, (_, i) => `sub-${i}`);
  const publishers = Array.from({ length: 8000 }, (_, i) => `client-${i}`);
  const assign = (g: SharedGroup<string>, eligible?: (m: string) => boolean) => new Map(publishers.map((p) => [p, g.pick(p, eligible)?.[0]]));

  it('sends a publisher to the same member every time, whatever the join order', () => {
    const g1 = groupOf('hash_clientid', members);
    const g2 = groupOf('hash_clientid', [...members].reverse());
    for (const p of publishers.slice(0, 500)) {
      const k = g1.pick(p)![0];
      for (let i = 0; i < 3; i++) assert.equal(g1.pick(p)![0], k);
      assert.equal(g2.pick(p)![0], k);
    }
  });

  it('spreads publishers roughly evenly', () => {
    const c = counts([...assign(groupOf('hash_clientid', members)).values()].map(String));
    assert.equal(c.size, 8);
    for (const n of c.values()) assert.ok(n > 800 && n < 1200, String(n));
  });

  it('a member leaving moves only its own publishers; one joining takes publishers only from the others', () => {
    const g = groupOf('hash_clientid', members);
    const before = assign(g);
    g.remove('sub-3');
    const after = assign(g);
    for (const p of publishers) if (before.get(p) !== 'sub-3') assert.equal(after.get(p), before.get(p));
    g.add('sub-new', 'SUB-NEW');
    const joined = assign(g);
    let moved = 0;
    for (const p of publishers) {
      if (joined.get(p) !== after.get(p)) {
        assert.equal(joined.get(p), 'sub-new');
        moved++;
      }
    }
    assert.ok(moved > 600 && moved < 1400, String(moved));
  });

  it('an ineligible member\'s publishers go to other members, consistently, and the rest stay put', () => {
    const g = groupOf('hash_clientid', members);
    const before = assign(g);
    const eligible = (m: string) => m !== 'SUB-5';
    const during = assign(g, eligible);
    for (const p of publishers) {
      if (before.get(p) === 'sub-5') assert.notEqual(during.get(p), 'sub-5');
      else assert.equal(during.get(p), before.get(p));
    }
    assert.deepEqual(assign(g, eligible), during);
    // Those publishers spread over several members, not all onto one.
    const moved = counts(publishers.filter((p) => before.get(p) === 'sub-5').map((p) => String(during.get(p))));
    assert.ok(moved.size >= 5, String(moved.size));
  });
});
