import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRebalance } from '../../src/server/shard-placement.js';

const shards = (leaders: number[], topic = 't', movable = true) => leaders.map((leader, shard) => ({ topic, shard, leader, epoch: shard + 1, movable }));

function after(s: ReturnType<typeof shards>, moves: ReturnType<typeof planRebalance>): Map<number, number> {
  const lead = new Map<string, number>(s.map((x) => [`${x.topic}-${x.shard}`, x.leader]));
  for (const m of moves) {
    assert.equal(lead.get(`${m.topic}-${m.shard}`), m.from, 'a move starts from the current leader');
    lead.set(`${m.topic}-${m.shard}`, m.to);
  }
  const count = new Map<number, number>();
  for (const l of lead.values()) count.set(l, (count.get(l) ?? 0) + 1);
  return count;
}

describe('planRebalance', () => {
  it('evens out leadership after a broker came back empty', () => {
    const s = shards([1, 2, 1, 2, 1, 2]);
    const moves = planRebalance(s, [1, 2, 3]);
    assert.equal(moves.length, 2);
    assert.ok(moves.every((m) => m.to === 3));
    assert.deepEqual([...after(s, moves).entries()].sort(), [
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    assert.deepEqual(moves.map((m) => m.epoch), moves.map((m) => s.find((x) => x.shard === m.shard)!.epoch), 'each move carries the epoch it was planned at');
  });

  it('does nothing when balanced within one, or with one broker', () => {
    assert.deepEqual(planRebalance(shards([1, 2, 3, 1]), [1, 2, 3]), []);
    assert.deepEqual(planRebalance(shards([1, 1, 1]), [1]), []);
  });

  it('never moves shards whose data lives on their leader, but counts them', () => {
    const s = [...shards([1, 1, 1, 1], 'local', false), ...shards([1, 1], 'replicated')];
    const moves = planRebalance(s, [1, 2]);
    assert.ok(moves.every((m) => m.topic === 'replicated'));
    assert.equal(moves.length, 2, 'both movable shards go to the idle broker');
  });

  it('ignores shards led by brokers that are not alive (placement moves those)', () => {
    const moves = planRebalance(shards([9, 9, 1, 1, 1, 1]), [1, 2]);
    assert.equal(moves.length, 2);
    assert.ok(moves.every((m) => m.from === 1 && m.to === 2));
  });
});
