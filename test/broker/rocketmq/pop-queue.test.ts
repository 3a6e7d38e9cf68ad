import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PopQueue } from '../../../src/broker/rocketmq/pop-queue.js';

/** A queue with deterministic nonces 1, 2, 3, ... */
function queue(start = 0n): PopQueue<string> {
  let n = 0;
  return new PopQueue<string>(start, { nonce: () => ++n });
}

function admitAll(q: PopQueue<string>, items: Array<{ messageGroup?: string; deliverAt?: number }>): void {
  for (const it of items) q.admit(q.readOffset, it, `m${q.readOffset}`);
}

describe('rocketmq pop queue', () => {
  it('takes visible records oldest first, in flight until acked; the acked offset follows the oldest unacked', () => {
    const q = queue(10n);
    admitAll(q, [{}, {}, {}]);
    assert.equal(q.readOffset, 13n);
    assert.equal(q.ackedOffset, 10n);
    const taken = q.take(1000, 2, 500);
    assert.deepEqual(
      taken.map((d) => [d.offset, d.attempt, d.deadline, d.payload]),
      [
        [10n, 1, 1500, 'm10'],
        [11n, 1, 1500, 'm11'],
      ],
    );
    assert.equal(q.inflightCount, 2);
    assert.equal(q.take(1000, 5, 500).length, 1, 'only the one not in flight is left');
    assert.equal(q.ack(11n, taken[1]!.nonce, 1200), 'ok');
    assert.equal(q.ackedOffset, 10n, 'offset 10 is still unacked');
    assert.equal(q.ack(10n, taken[0]!.nonce, 1200), 'ok');
    assert.equal(q.ackedOffset, 12n);
  });

  it('an unacked record is delivered again after its invisible time, with the attempt raised and its old handle stale', () => {
    const q = queue();
    admitAll(q, [{}]);
    const [first] = q.take(0, 1, 100);
    assert.equal(q.take(50, 1, 100).length, 0, 'invisible until 100');
    assert.equal(q.nextVisibleAt(50), 100);
    assert.equal(q.ack(0n, first!.nonce, 100), 'expired', 'at the deadline the handle has expired');
    const [second] = q.take(100, 1, 100);
    assert.equal(second!.attempt, 2);
    assert.equal(second!.payload, undefined, 'the payload went with the first delivery; later ones read it again');
    assert.equal(q.ack(0n, first!.nonce, 120), 'stale');
    assert.equal(q.ack(0n, second!.nonce, 120), 'ok');
    assert.equal(q.ack(0n, second!.nonce, 120), 'unknown', 'acked already');
    assert.equal(q.size, 0);
  });

  it('renew moves the deadline and replaces the handle; zero makes the record visible at once', () => {
    const q = queue();
    admitAll(q, [{}]);
    const [d] = q.take(0, 1, 100);
    const renewed = q.renew(0n, d!.nonce, 50, 1000);
    assert.ok(typeof renewed !== 'string');
    assert.equal(renewed.deadline, 1050);
    assert.equal(q.check(0n, d!.nonce, 60), 'stale');
    assert.equal(q.take(500, 1, 100).length, 0);
    const again = q.renew(0n, renewed.nonce, 600, 0);
    assert.ok(typeof again !== 'string');
    const [redelivered] = q.take(600, 1, 100);
    assert.equal(redelivered!.attempt, 2);
  });

  it('records of one message group go out one at a time, in order, each after the previous is acked', () => {
    const q = queue();
    admitAll(q, [{ messageGroup: 'g1' }, { messageGroup: 'g1' }, { messageGroup: 'g2' }, { messageGroup: 'g1' }, {}]);
    const first = q.take(0, 10, 100);
    assert.deepEqual(
      first.map((d) => d.offset),
      [0n, 2n, 4n],
      'heads of g1 and g2, and the ungrouped record',
    );
    assert.equal(q.take(0, 10, 100).length, 0, 'g1 and g2 wait for their heads');
    q.ack(0n, first[0]!.nonce, 10);
    assert.deepEqual(
      q.take(10, 10, 100).map((d) => d.offset),
      [1n],
    );
    assert.equal(q.nextVisibleAt(10), 100, 'the g2 head and offset 4 are in flight until 100, offset 1 until 110; offset 3 waits behind 1');
    // Unacked heads come back, and the rest of their group still waits behind them.
    const again = q.take(110, 10, 100);
    assert.deepEqual(
      again.map((d) => [d.offset, d.attempt]),
      [
        [1n, 2],
        [2n, 2],
        [4n, 2],
      ],
    );
  });

  it('delay records wait for their delivery time; skipped records count as done', () => {
    const q = queue();
    q.admit(0n, { deliverAt: 5000 }, 'late');
    q.skip(1n);
    q.admit(2n, {}, 'now');
    const now = q.take(0, 10, 100);
    assert.deepEqual(
      now.map((d) => d.payload),
      ['now'],
    );
    assert.equal(q.nextVisibleAt(0), 100);
    assert.equal(q.ack(2n, now[0]!.nonce, 50), 'ok');
    assert.equal(q.nextVisibleAt(200), 5000);
    assert.deepEqual(
      q.take(5000, 10, 100).map((d) => [d.payload, d.attempt]),
      [['late', 1]],
    );
    assert.throws(() => q.admit(7n, {}, 'x'), /out of order/);
  });

  it('moving the read offset keeps what is owed; dropping forgets a record', () => {
    const q = queue();
    admitAll(q, [{}, {}]);
    q.moveReadOffset(100n);
    assert.equal(q.ackedOffset, 0n);
    q.drop(0n);
    q.drop(1n);
    assert.equal(q.ackedOffset, 100n);
  });
});
