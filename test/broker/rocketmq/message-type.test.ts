import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RocketmqError } from '../../../src/broker/rocketmq/errors.js';
import { acceptedMessageTypes, checkMessageTypeConfig, checkTopicAccepts, messageTypeOf, topicMessageType } from '../../../src/broker/rocketmq/message-type.js';

const status = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof RocketmqError ? err.status : String(err);
  }
};

describe('rocketmq message types', () => {
  it('a topic takes the type in its "message.type" config; without one it is MIXED and takes every type', () => {
    assert.equal(topicMessageType({ 'message.type': 'FIFO' }), 'FIFO');
    assert.equal(topicMessageType({ 'message.type': 'delay' }), 'DELAY');
    assert.equal(topicMessageType({}), 'MIXED');
    assert.deepEqual(acceptedMessageTypes('FIFO'), ['FIFO']);
    assert.deepEqual(acceptedMessageTypes('MIXED'), ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION']);
    assert.equal(checkMessageTypeConfig('fifo'), undefined);
    assert.match(checkMessageTypeConfig('ORDERED') ?? '', /must be one of/);
  });

  it('a message type must agree with its properties', () => {
    assert.equal(messageTypeOf(undefined, true, false), 'FIFO');
    assert.equal(messageTypeOf('MESSAGE_TYPE_UNSPECIFIED', false, true), 'DELAY');
    assert.equal(messageTypeOf('NORMAL', false, false), 'NORMAL');
    assert.equal(messageTypeOf('TRANSACTION', false, false), 'TRANSACTION');
    assert.equal(status(() => messageTypeOf('NORMAL', true, false)), 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
    assert.equal(status(() => messageTypeOf('FIFO', true, true)), 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
    assert.equal(status(() => messageTypeOf('TRANSACTION', true, false)), 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
  });

  it('a message of another type than the topic is refused with MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', () => {
    assert.equal(status(() => checkTopicAccepts('t', 'FIFO', 'FIFO')), undefined);
    assert.equal(status(() => checkTopicAccepts('t', 'MIXED', 'DELAY')), undefined);
    assert.equal(status(() => checkTopicAccepts('t', 'FIFO', 'NORMAL')), 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
  });
});
