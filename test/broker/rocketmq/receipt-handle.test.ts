import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RocketmqError } from '../../../src/broker/rocketmq/errors.js';
import { decodeReceiptHandle, encodeReceiptHandle } from '../../../src/broker/rocketmq/receipt-handle.js';

describe('rocketmq receipt handles', () => {
  it('decode(encode(h)) is h', () => {
    fc.assert(
      fc.property(
        fc.record({
          queue: fc.integer({ min: 0, max: 9999 }),
          offset: fc.bigInt({ min: 0n, max: 2n ** 53n }),
          attempt: fc.integer({ min: 1, max: 1000 }),
          deadline: fc.integer({ min: 0, max: 2 ** 50 }),
          nonce: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        }),
        (h) => {
          assert.deepEqual(decodeReceiptHandle(encodeReceiptHandle(h)), { ...h });
        },
      ),
    );
  });

  it('anything else is INVALID_RECEIPT_HANDLE, never a crash', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        if (/^r1\.\d+\.\d+\.\d+\.\d+\.\d+$/.test(s)) return;
        assert.throws(() => decodeReceiptHandle(s), (err: unknown) => err instanceof RocketmqError && err.status === 'INVALID_RECEIPT_HANDLE');
      }),
    );
    for (const bad of ['', 'r1', 'r1.1.2.3.4', 'r2.1.2.3.4.5', 'r1.a.2.3.4.5', `r1.1.${'9'.repeat(30)}.1.1.1`]) {
      assert.throws(() => decodeReceiptHandle(bad), RocketmqError, bad);
    }
  });
});
