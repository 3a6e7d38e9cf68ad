/**
 * The transaction state machine and its check-back schedule: first check
 * after the delay, then every interval, at most maxChecks, then given up;
 * ends remove an entry and are idempotent; an end that fails puts it back;
 * a restored entry waits for producers to reconnect.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransactionBook } from '../../../src/broker/rocketmq/transaction-book.js';

const schedule = { firstCheckMs: 6000, intervalMs: 30_000, maxChecks: 15 };
const half = (id: string, storedAtMs = 0, offset = 0) => ({ transactionId: id, messageId: `m-${id}`, topic: 't', clientId: 'c1', offset, storedAtMs });

describe('TransactionBook', () => {
  it('checks after 6 s, then every 30 s, 15 times; gives up 30 s after the 15th check', () => {
    const book = new TransactionBook(schedule);
    book.add(half('a'));
    const checks: number[] = [];
    let gaveUpAt: number | undefined;
    for (let t = 0; t <= 600_000 && gaveUpAt === undefined; t += 500) {
      const { check, giveUp } = book.due(t);
      if (check.length > 0) checks.push(t);
      if (giveUp.length > 0) gaveUpAt = t;
    }
    assert.equal(checks.length, 15);
    assert.equal(checks[0], 6000);
    for (let i = 1; i < checks.length; i++) assert.equal(checks[i]! - checks[i - 1]!, 30_000);
    assert.equal(gaveUpAt, checks[14]! + 30_000);
    assert.equal(book.get('a')?.ending, true, 'a given-up entry is being ended (discarded), out of the schedule');
    book.finishEnd('a', 'DISCARDED');
    assert.equal(book.size, 0);
    assert.equal(book.outcome('a'), 'DISCARDED');
  });

  it('an entry being ended is not checked; a failed end puts it back on its schedule; a finished end is remembered', () => {
    const book = new TransactionBook(schedule);
    book.add(half('b'));
    assert.ok(book.beginEnd('b'));
    assert.equal(book.beginEnd('b'), undefined, 'a second concurrent end does not get it');
    assert.deepEqual(book.due(10_000).check, []);
    book.abortEnd('b');
    assert.deepEqual(book.due(10_000).check.map((h) => h.transactionId), ['b']);
    assert.ok(book.beginEnd('b'));
    book.finishEnd('b', 'COMMIT');
    assert.equal(book.get('b'), undefined);
    assert.equal(book.outcome('b'), 'COMMIT');
    assert.deepEqual(book.due(1_000_000), { check: [], giveUp: [] });
  });

  it('a restored entry keeps its check count and schedule, but is checked no sooner than the first delay after the restart', () => {
    const book = new TransactionBook(schedule);
    const never = book.restore({ ...half('fresh', 0), checks: 0 }, undefined, 100_000);
    assert.equal(never.nextCheckAtMs, 106_000, 'overdue: waits for producers to reconnect');
    const checked = book.restore({ ...half('old', 0), checks: 3 }, 200_000, 201_000);
    assert.equal(checked.nextCheckAtMs, 230_000, 'the next check an interval after the last one');
    const spent = book.restore({ ...half('spent', 0), checks: 15 }, 0, 500_000);
    assert.deepEqual(book.due(spent.nextCheckAtMs).giveUp.map((h) => h.transactionId), ['spent']);
  });

  it('minOffset is the oldest pending half message (how far the log may be compacted)', () => {
    const book = new TransactionBook(schedule);
    assert.equal(book.minOffset(), undefined);
    book.add(half('x', 0, 7));
    book.add(half('y', 0, 3));
    assert.equal(book.minOffset(), 3);
    book.beginEnd('y');
    assert.equal(book.minOffset(), 3, 'still needed while its end is written');
    book.finishEnd('y', 'ROLLBACK');
    assert.equal(book.minOffset(), 7);
  });
});
