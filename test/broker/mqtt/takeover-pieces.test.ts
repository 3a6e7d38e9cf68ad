/**
 * The pieces a session takeover across brokers relies on: a session holding
 * new messages back until older ones found late are put in front of them, and
 * the matcher of an unreachable broker's persistent sessions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutState, Session, type Outgoing, type SessionHooks, type SessionLink } from '../../../src/broker/mqtt/session.js';
import type { StoredSession, StoredSubscription } from '../../../src/broker/mqtt/store.js';
import { UnreachableSessions, type UnreachableMatch } from '../../../src/broker/mqtt/unreachable-sessions.js';
import type { QoS } from '../../../src/broker/mqtt/codec/packets.js';

const hooks: SessionHooks = { done() {}, published() {}, released() {}, overflow() {}, expired() {} };

function out(payload: string, qos: QoS = 1): Outgoing {
  return { msg: { topic: 't', payload: Buffer.from(payload), qos, retain: false, properties: undefined, expiresAt: undefined, publisher: 'p', receivedAt: 1 }, qos, retain: false, subIds: undefined, mid: 0, packetId: 0, state: OutState.Queued, share: undefined };
}

function recorder(quota = 100): SessionLink & { sent: string[] } {
  const sent: string[] = [];
  return { sendQuota: quota, sent, sendPublish: (o) => sent.push(o.msg.payload.toString()), sendPubrel() {} };
}

function sub(filter: string, qos: QoS, extra: Partial<StoredSubscription> = {}): StoredSubscription {
  return { filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra };
}

describe('session hold for a takeover', () => {
  it('sends what was queued before the hold, holds what comes after, and puts late older messages in front on release', () => {
    const s = new Session('c', { persistent: true, expiryIntervalSec: 60 }, hooks, 1000);
    s.restore(out('old1'));
    s.restore(out('old2'));
    s.holdNew();
    const link = recorder();
    s.attach(link, 0);
    assert.deepEqual(link.sent, ['old1', 'old2'], 'the queue restored before the hold goes out at once');
    assert.equal(s.sendsAtOnce(1), false, 'nothing new is sent at once while held');
    s.offer(out('new1'), 0);
    s.offer(out('new2', 0), 0);
    assert.deepEqual(link.sent, ['old1', 'old2'], 'new messages wait');
    assert.equal(s.queued, 2);
    s.releaseHold([out('late1'), out('late2')], 0);
    assert.deepEqual(link.sent, ['old1', 'old2', 'late1', 'late2', 'new1', 'new2']);
    assert.equal(s.sendsAtOnce(1), true, 'sending at once again after the release');
  });

  it('a release with nothing late resumes sending, and the quota still applies', () => {
    const s = new Session('c', { persistent: true, expiryIntervalSec: 60 }, hooks, 1000);
    s.holdNew();
    const link = recorder(1);
    s.attach(link, 0);
    s.offer(out('a'), 0);
    s.offer(out('b'), 0);
    assert.deepEqual(link.sent, []);
    s.releaseHold([], 0);
    assert.deepEqual(link.sent, ['a'], 'one in flight at a quota of 1');
    s.releaseHold([out('ignored')], 0);
    assert.equal(s.queued, 1, 'a second release does nothing');
  });
});

describe('sessions of an unreachable broker', () => {
  const sessions: StoredSession[] = [
    { clientId: 'a', expiryIntervalSec: 60, connected: false, lastSeenMs: 0, nodeId: 2, subscriptions: [sub('s/#', 1, { subscriptionId: 4 }), sub('s/+', 2, { retainAsPublished: true, subscriptionId: 5 }), sub('$share/g/s/#', 2)] },
    { clientId: 'b', expiryIntervalSec: 60, connected: false, lastSeenMs: 0, nodeId: 2, subscriptions: [sub('s/x', 1, { noLocal: true }), sub('bad/#/x', 1)] },
  ];
  let version = 1;
  const matcher = new UnreachableSessions({ sessionsOf: (n) => (n === 2 ? sessions : []), sessionsVersion: () => version });
  const matches = (node: number, topic: string, publisher = 'p'): UnreachableMatch[] => {
    const got: UnreachableMatch[] = [];
    matcher.match(node, topic, publisher, (m) => got.push({ ...m }));
    return got.sort((x, y) => x.clientId.localeCompare(y.clientId));
  };

  it('one match per session: highest QoS, retain-as-published if any, every subscription id; no shares, no local', () => {
    assert.deepEqual(matches(2, 's/x'), [
      { clientId: 'a', qos: 2, retainAsPublished: true, subIds: [4, 5] },
      { clientId: 'b', qos: 1, retainAsPublished: false, subIds: undefined },
    ]);
    assert.deepEqual(matches(2, 's/x', 'b').map((m) => m.clientId), ['a'], 'no local');
    assert.deepEqual(matches(2, 's/x/y').map((m) => [m.clientId, m.qos]), [['a', 1]]);
    assert.deepEqual(matches(3, 's/x'), [], 'another node holds none');
  });

  it('follows the sessions when their version changes', () => {
    sessions.push({ clientId: 'c', expiryIntervalSec: 60, connected: false, lastSeenMs: 0, nodeId: 2, subscriptions: [sub('t', 1)] });
    assert.deepEqual(matches(2, 't'), [], 'cached until the version moves');
    version++;
    assert.deepEqual(matches(2, 't').map((m) => m.clientId), ['c']);
  });
});
