/**
 * The DLQ decision and names, and the recall handle format.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadLetterTopic, exceedsMaxAttempts, maxDeliveryAttempts } from '../../../src/broker/rocketmq/dead-letter-policy.js';
import { decodeRecallHandle, encodeRecallHandle } from '../../../src/broker/rocketmq/recall.js';
import { isValidStoredTopicName, isValidTopicName } from '../../../src/meta/state/records/topics.js';

describe('dead-letter policy', () => {
  it('a delivery attempt past the maximum goes to the DLQ; up to it is delivered', () => {
    assert.equal(exceedsMaxAttempts(16, 16), false);
    assert.equal(exceedsMaxAttempts(17, 16), true);
    assert.equal(exceedsMaxAttempts(2, 1), true);
  });

  it("the maximum is the group's own, else the broker's, else 16", () => {
    assert.equal(maxDeliveryAttempts('g', { g: 3 }, 10), 3);
    assert.equal(maxDeliveryAttempts('h', { g: 3 }, 10), 10);
    assert.equal(maxDeliveryAttempts('h', undefined, undefined), 16);
  });

  it('the DLQ topic is %DLQ%{group}, a name meta stores but Kafka clients cannot create', () => {
    assert.equal(deadLetterTopic('billing'), '%DLQ%billing');
    assert.equal(deadLetterTopic('a|b%c'), '%DLQ%a_b_c', 'characters a topic name cannot hold become _');
    assert.equal(deadLetterTopic('..'), '%DLQ%__');
    for (const name of [deadLetterTopic('billing'), '%RETRY%billing']) {
      assert.ok(isValidStoredTopicName(name), name);
      assert.ok(!isValidTopicName(name), `${name} is not a Kafka name`);
    }
    for (const bad of ['%DLQ%', '%OTHER%x', 'a%DLQ%b', '%DLQ%..', '%DLQ%a/b']) assert.ok(!isValidStoredTopicName(bad), bad);
  });
});

describe('recall handles', () => {
  it('round-trip, and anything else is refused with BAD_REQUEST', () => {
    const h = { nodeId: 3, offset: 42, deliverAt: 1_700_000_123_000, messageId: '01ABCDEF' };
    assert.deepEqual(decodeRecallHandle(encodeRecallHandle(h)), h);
    const spaced = { ...h, messageId: 'an id with spaces' };
    assert.deepEqual(decodeRecallHandle(encodeRecallHandle(spaced)), spaced);
    for (const junk of ['', 'nope', Buffer.from('v1 x 1 2 id').toString('base64url'), Buffer.from('v2 1 1 2 id').toString('base64url')]) {
      assert.throws(() => decodeRecallHandle(junk), (err: Error & { status?: string }) => err.status === 'BAD_REQUEST', junk);
    }
  });
});
