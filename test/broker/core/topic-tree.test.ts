import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidFilterError } from '../../../src/broker/core/shared-subscriptions.js';
import { TopicTree } from '../../../src/broker/core/topic-tree.js';
import { mqttFilterMatches } from '../../../src/meta/state/records/mqtt-topic.js';

/** Sorted "filter|key=value" strings for every entry matching the topic. */
function matched<V>(tree: TopicTree<V>, topic: string): string[] {
  const out: string[] = [];
  tree.match(topic, (value, key, filter) => out.push(`${filter}|${key}=${String(value)}`));
  return out.sort();
}

function filtersMatching(filters: string[], topic: string): string[] {
  const tree = new TopicTree<number>();
  filters.forEach((f, i) => tree.add(f, 'k', i));
  const out: string[] = [];
  tree.match(topic, (_v, _k, filter) => out.push(filter));
  return out.sort();
}

function matches(filter: string, topic: string): boolean {
  return filtersMatching([filter], topic).length === 1;
}

describe('TopicTree: MQTT §4.7 examples', () => {
  it("'sport/tennis/player1/#' matches the parent and every level below", () => {
    for (const t of ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon']) {
      assert.ok(matches('sport/tennis/player1/#', t), t);
    }
    assert.ok(!matches('sport/tennis/player1/#', 'sport/tennis/player2'));
    assert.ok(!matches('sport/tennis/player1/#', 'sport/tennis'));
    assert.ok(matches('sport/#', 'sport'));
    assert.ok(matches('#', 'sport/tennis'));
    assert.ok(matches('#', '/'));
  });

  it("'+' matches exactly one level", () => {
    assert.ok(matches('sport/tennis/+', 'sport/tennis/player1'));
    assert.ok(matches('sport/tennis/+', 'sport/tennis/player2'));
    assert.ok(!matches('sport/tennis/+', 'sport/tennis/player1/ranking'));
    assert.ok(!matches('sport/+', 'sport'));
    assert.ok(matches('sport/+', 'sport/'));
    assert.ok(matches('+', 'sport'));
    assert.ok(!matches('+', 'sport/tennis'));
    assert.ok(matches('+/tennis/#', 'sport/tennis/player1'));
    assert.ok(matches('+/tennis/#', 'sport/tennis'));
    assert.ok(matches('sport/+/player1', 'sport/tennis/player1'));
  });

  it("empty levels: '+/+' and '/+' match '/finance', '+' does not", () => {
    assert.ok(matches('+/+', '/finance'));
    assert.ok(matches('/+', '/finance'));
    assert.ok(!matches('+', '/finance'));
    assert.ok(matches('/finance', '/finance'));
    assert.ok(!matches('finance', '/finance'));
    assert.ok(matches('a//b', 'a//b'));
    assert.ok(matches('a/+/b', 'a//b'));
    assert.ok(matches('+', ''));
  });

  it("'$' topics are not matched by a first-level '+' or '#'", () => {
    assert.ok(!matches('#', '$SYS/monitor/Clients'));
    assert.ok(!matches('+/monitor/Clients', '$SYS/monitor/Clients'));
    assert.ok(!matches('+', '$SYS'));
    assert.ok(matches('$SYS/#', '$SYS/monitor/Clients'));
    assert.ok(matches('$SYS/#', '$SYS'));
    assert.ok(matches('$SYS/monitor/+', '$SYS/monitor/Clients'));
    assert.ok(matches('$SYS/+/Clients', '$SYS/monitor/Clients'));
    assert.ok(matches('a/+', 'a/$b'), "'$' matters only at the first level");
    assert.ok(matches('a/#', 'a/$b/c'));
  });

  it('calls back every matching entry once with its key, value and filter', () => {
    const tree = new TopicTree<string>();
    tree.add('a/b', 'c1', 'v1');
    tree.add('a/b', 'c2', 'v2');
    tree.add('a/+', 'c1', 'v3');
    tree.add('#', 'c3', 'v4');
    tree.add('a/#', 'c3', 'v5');
    tree.add('+/b/#', 'c4', 'v6');
    tree.add('a/c', 'c5', 'v7');
    assert.deepEqual(matched(tree, 'a/b'), ['#|c3=v4', '+/b/#|c4=v6', 'a/#|c3=v5', 'a/+|c1=v3', 'a/b|c1=v1', 'a/b|c2=v2']);
    assert.deepEqual(matched(tree, 'x'), ['#|c3=v4']);
    assert.deepEqual(matched(tree, '$x/b'), []);
  });
});

describe('TopicTree: entries', () => {
  it('add/replace/get/remove keep size and filters() right and prune empty nodes', () => {
    const tree = new TopicTree<number>();
    assert.equal(tree.add('a/b', 'k1', 1), true);
    assert.equal(tree.add('a/b', 'k1', 2), false, 'replace');
    assert.equal(tree.get('a/b', 'k1'), 2);
    assert.equal(tree.add('a/b', 'k2', 3), true);
    assert.equal(tree.add('a/#', 'k1', 4), true);
    assert.equal(tree.add('a/+', 'k1', 5), true);
    assert.equal(tree.add('a', 'k1', 6), true);
    assert.equal(tree.size, 5);
    assert.equal(tree.filters(), 4);
    assert.equal(tree.get('a/b', 'nope'), undefined);
    assert.equal(tree.get('a/c', 'k1'), undefined);
    assert.equal(tree.get('a/b/c', 'k1'), undefined);
    assert.equal(tree.get('a/#', 'k1'), 4);
    assert.equal(tree.get('a/+', 'k1'), 5);
    assert.equal(tree.hasFilter('a'), true);
    assert.equal(tree.hasFilter('a/b/c'), false);

    assert.equal(tree.remove('a/b', 'k1'), true);
    assert.equal(tree.remove('a/b', 'k1'), false);
    assert.equal(tree.remove('a/c', 'k1'), false);
    assert.equal(tree.remove('#', 'k1'), false);
    assert.equal(tree.get('a/b', 'k2'), 3, 'the other entry of the filter stays');
    assert.equal(tree.size, 4);
    assert.equal(tree.filters(), 4);
    assert.equal(tree.remove('a/b', 'k2'), true);
    assert.equal(tree.filters(), 3);
    assert.equal(tree.remove('a', 'k1'), true, "a node with children ('a/#', 'a/+') loses its entries but stays");
    assert.deepEqual(matched(tree, 'a/b'), ['a/#|k1=4', 'a/+|k1=5']);
    assert.equal(tree.remove('a/#', 'k1'), true);
    assert.equal(tree.remove('a/+', 'k1'), true);
    assert.equal(tree.size, 0);
    assert.equal(tree.filters(), 0);
    assert.deepEqual([...tree.entries()], []);
    assert.ok((tree as unknown as { root: { isEmpty(): boolean } }).root.isEmpty(), 'every node was pruned');
  });

  it('entries() lists every (filter, key, value)', () => {
    const tree = new TopicTree<number>();
    const want: string[] = [];
    ['a', 'a/b', '+', '#', '+/#', '/', '', 'a/+/c', '$SYS/#'].forEach((f, i) => {
      for (let k = 0; k < 3; k++) {
        tree.add(f, `k${k}`, i * 10 + k);
        want.push(`${f}|k${k}|${i * 10 + k}`);
      }
    });
    assert.deepEqual([...tree.entries()].map(([f, k, v]) => `${f}|${k}|${v}`).sort(), want.sort());
    assert.equal(tree.size, 27);
    assert.equal(tree.filters(), 9);
  });

  it("rejects '#' before the last level", () => {
    const tree = new TopicTree<number>();
    assert.throws(() => tree.add('a/#/b', 'k', 1), InvalidFilterError);
    assert.throws(() => tree.add('#/', 'k', 1), InvalidFilterError);
    assert.equal(tree.size, 0);
    assert.equal(tree.get('a/#/b', 'k'), undefined);
    assert.equal(tree.remove('a/#/b', 'k'), false);
  });

  it('clear() empties the tree', () => {
    const tree = new TopicTree<number>();
    tree.add('a/#', 'k', 1);
    tree.add('b', 'k', 1);
    tree.clear();
    assert.equal(tree.size, 0);
    assert.equal(tree.filters(), 0);
    assert.deepEqual(matched(tree, 'a/b'), []);
    tree.add('a/#', 'k', 2);
    assert.deepEqual(matched(tree, 'a/b'), ['a/#|k=2']);
  });
});

describe('TopicTree: match callbacks', () => {
  it('a callback may match again (nested), but not add or remove', () => {
    const tree = new TopicTree<string>();
    tree.add('a/+', 'k1', 'x');
    tree.add('a/b', 'k2', 'y');
    tree.add('b/#', 'k3', 'z');
    const seen: string[] = [];
    tree.match('a/b', (v) => {
      seen.push(v);
      tree.match('b/c/d', (w) => seen.push(`${v}>${w}`));
    });
    assert.deepEqual(seen.sort(), ['x', 'x>z', 'y', 'y>z']);
    assert.throws(() => tree.match('a/b', () => tree.add('c', 'k', 'w')), /inside a match callback/);
    assert.throws(() => tree.match('a/b', () => tree.remove('a/b', 'k2')), /inside a match callback/);
    // After a callback threw, the tree is usable again.
    tree.add('c', 'k', 'w');
    assert.equal(tree.remove('a/b', 'k2'), true);
    assert.deepEqual(matched(tree, 'a/b'), ['a/+|k1=x']);
  });

  it('an exception from the callback propagates and leaves the tree usable', () => {
    const tree = new TopicTree<number>();
    tree.add('a/b/c', 'k', 1);
    assert.throws(() => tree.match('a/b/c', () => { throw new Error('boom'); }), /boom/);
    assert.deepEqual(matched(tree, 'a/b/c'), ['a/b/c|k=1']);
    assert.deepEqual(matched(tree, 'a'), []);
  });
});

// Property tests: a small alphabet of levels so that filters and topics collide often.
const TOPIC_LEVELS = ['a', 'b', '', '$x', '$SYS'];
const FILTER_LEVELS = [...TOPIC_LEVELS, '+', '+', '#'];
const topicArb = fc.array(fc.constantFrom(...TOPIC_LEVELS), { minLength: 1, maxLength: 5 }).map((l) => l.join('/'));
const filterArb = fc
  .array(fc.constantFrom(...FILTER_LEVELS), { minLength: 1, maxLength: 5 })
  .map((l) => l.filter((x, i) => x !== '#' || i === l.length - 1)) // '#' only last
  .filter((l) => l.length > 0)
  .map((l) => l.join('/'));

describe('TopicTree: properties', () => {
  it('match equals the naive matcher over random filters and topics', () => {
    fc.assert(
      fc.property(fc.uniqueArray(filterArb, { maxLength: 40 }), fc.array(topicArb, { minLength: 1, maxLength: 20 }), (filters, topics) => {
        const tree = new TopicTree<number>();
        filters.forEach((f, i) => tree.add(f, `k${i % 3}`, i));
        for (const topic of topics) {
          const want = filters.filter((f) => mqttFilterMatches(f, topic)).sort();
          assert.deepEqual(filtersMatching(filters, topic), want, `topic '${topic}'`);
          const got: string[] = [];
          tree.match(topic, (v, _k, f) => {
            assert.equal(f, filters[v]);
            got.push(f);
          });
          assert.deepEqual(got.sort(), want, `topic '${topic}'`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('add/remove/re-add sequences keep size, filters() and matches equal to a model', () => {
    type Op = { op: 'add' | 'remove'; filter: string; key: string; value: number };
    const opArb: fc.Arbitrary<Op> = fc.record({
      op: fc.constantFrom('add', 'add', 'remove') as fc.Arbitrary<'add' | 'remove'>,
      filter: filterArb,
      key: fc.constantFrom('k1', 'k2', 'k3'),
      value: fc.integer({ min: 0, max: 99 }),
    });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), fc.array(topicArb, { minLength: 1, maxLength: 8 }), (ops, topics) => {
        const tree = new TopicTree<number>();
        const model = new Map<string, Map<string, number>>(); // filter -> key -> value
        for (const { op, filter, key, value } of ops) {
          const entries = model.get(filter);
          if (op === 'add') {
            assert.equal(tree.add(filter, key, value), !entries?.has(key));
            if (entries) entries.set(key, value);
            else model.set(filter, new Map([[key, value]]));
          } else {
            assert.equal(tree.remove(filter, key), entries?.has(key) ?? false);
            entries?.delete(key);
            if (entries?.size === 0) model.delete(filter);
          }
          assert.equal(tree.size, [...model.values()].reduce((n, m) => n + m.size, 0));
          assert.equal(tree.filters(), model.size);
          assert.equal(tree.get(filter, key), model.get(filter)?.get(key));
        }
        const all = [...model].flatMap(([f, m]) => [...m].map(([k, v]) => `${f}|${k}=${v}`)).sort();
        assert.deepEqual([...tree.entries()].map(([f, k, v]) => `${f}|${k}=${v}`).sort(), all);
        for (const topic of topics) {
          const want = [...model].filter(([f]) => mqttFilterMatches(f, topic)).flatMap(([f, m]) => [...m].map(([k, v]) => `${f}|${k}=${v}`)).sort();
          assert.deepEqual(matched(tree, topic), want, `topic '${topic}'`);
        }
        // Removing everything prunes the tree to an empty root.
        for (const [f, m] of model) for (const k of m.keys()) assert.ok(tree.remove(f, k));
        assert.equal(tree.size, 0);
        assert.equal(tree.filters(), 0);
        assert.ok((tree as unknown as { root: { isEmpty(): boolean } }).root.isEmpty());
      }),
      { numRuns: 300 },
    );
  });

  it('many keys on one filter: swap-remove keeps every other entry', () => {
    const tree = new TopicTree<number>();
    for (let i = 0; i < 1000; i++) tree.add('x/#', `c${i}`, i);
    for (let i = 0; i < 1000; i += 3) assert.ok(tree.remove('x/#', `c${i}`));
    const got: number[] = [];
    tree.match('x/y', (v, k) => {
      assert.equal(k, `c${v}`);
      got.push(v);
    });
    assert.deepEqual(got.sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 !== 0));
    for (let i = 0; i < 1000; i++) assert.equal(tree.get('x/#', `c${i}`), i % 3 === 0 ? undefined : i);
  });
});
