import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RC } from '../../../src/broker/mqtt/codec/index.js';
import { Inbox, connect, connectWithInbox, endClient, sleep, startBroker, type TestBroker } from '../../support/mqtt.js';
import { RawClient } from '../../support/raw-mqtt.js';

describe('MQTT 5 features', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker({ settings: { receiveMaximum: 10 } });
  });
  after(async () => {
    await b.stop();
  });

  it('assigns a client id to an empty one and advertises limits in CONNACK', async () => {
    const raw = await RawClient.open(b.port);
    const ack = await raw.connect({ clientId: '' });
    assert.equal(ack.reasonCode, 0);
    assert.match(ack.properties?.assignedClientIdentifier ?? '', /^auto-/);
    assert.equal(ack.properties?.receiveMaximum, 10);
    assert.equal(ack.properties?.maximumPacketSize, 1024 * 1024);
    raw.close();
  });

  it('refuses an empty client id with clean session 0 in MQTT 3.1.1 (return code 2)', async () => {
    const raw = await RawClient.open(b.port, 4);
    const ack = await raw.connect({ clientId: '', cleanStart: false });
    assert.equal(ack.reasonCode, 2);
    await raw.waitClosed();
  });

  it('answers an unsupported protocol level with CONNACK 0x01 and closes', async () => {
    const raw = await RawClient.open(b.port, 4);
    // CONNECT, protocol name MQTT, level 6.
    raw.sendBytes(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 6, 2, 0, 60, 0, 0]));
    const ack = await raw.next('connack');
    assert.equal(ack.reasonCode, 1);
    await raw.waitClosed();
  });

  it('disconnects with 0x81 on a malformed packet and 0x82 on a second CONNECT', async () => {
    const raw = await RawClient.open(b.port);
    await raw.connect();
    raw.sendBytes(Buffer.from([0x82, 0x02, 0x00, 0x01])); // SUBSCRIBE with no topic filter
    const d = await raw.next('disconnect');
    assert.equal(d.reasonCode, RC.MALFORMED_PACKET);
    await raw.waitClosed();
    const raw2 = await RawClient.open(b.port);
    await raw2.connect();
    raw2.send({ type: 'connect', protocolName: 'MQTT', protocolLevel: 5, cleanStart: true, keepAlive: 0, clientId: 'x' });
    assert.equal((await raw2.next('disconnect')).reasonCode, RC.PROTOCOL_ERROR);
    await raw2.waitClosed();
  });

  it('closes a connection whose first packet is not CONNECT', async () => {
    const raw = await RawClient.open(b.port);
    raw.send({ type: 'pingreq' });
    await raw.waitClosed();
  });

  it('takes over a client id: the old connection gets DISCONNECT 0x8E', async () => {
    const first = await RawClient.open(b.port);
    await first.connect({ clientId: 'dup-id' });
    const second = await RawClient.open(b.port);
    const ack = await second.connect({ clientId: 'dup-id', cleanStart: false, properties: { sessionExpiryInterval: 10 } });
    assert.equal(ack.reasonCode, 0);
    assert.equal((await first.next('disconnect')).reasonCode, RC.SESSION_TAKEN_OVER);
    await first.waitClosed();
    second.close();
  });

  it('delivers one copy with every subscription identifier for overlapping subscriptions', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('ov/+', { qos: 0, properties: { subscriptionIdentifier: 7 } });
    await sub.subscribeAsync('ov/#', { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('ov/a', 'x', { qos: 1 });
    const [m] = await inbox.waitFor(1);
    await sleep(50);
    assert.equal(inbox.messages.length, 1);
    assert.equal(m?.packet.qos, 1);
    assert.deepEqual([...((m?.packet.properties?.subscriptionIdentifier as number[] | undefined) ?? [])].sort(), [7, 9]);
    await Promise.all([endClient(sub), endClient(pub)]);
  });

  it('does not match $SYS topics with a leading wildcard', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('#', { qos: 0 });
    b.server.broker.publish({ topic: '$SYS/x', payload: Buffer.from('s'), qos: 0, retain: false, properties: undefined, expiresAt: undefined, publisher: '', receivedAt: Date.now() });
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('plain', 'p', { qos: 1 });
    await inbox.waitFor(1);
    await sleep(50);
    assert.deepEqual(
      inbox.messages.map((m) => m.topic),
      ['plain'],
    );
    await Promise.all([endClient(sub), endClient(pub)]);
  });

  it('honours no-local, retain-as-published and retain handling 1 and 2', async () => {
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('rh/t', 'kept', { qos: 1, retain: true });
    const { client: c, inbox } = await connectWithInbox(b.port, { protocolVersion: 5, clientId: 'rh-client' });
    await c.subscribeAsync('rh/t', { qos: 1, rh: 2 });
    await sleep(50);
    assert.equal(inbox.messages.length, 0, 'retain handling 2: nothing on subscribe');
    await c.subscribeAsync('rh/+', { qos: 1, rh: 1 });
    await inbox.waitFor(1);
    await c.subscribeAsync('rh/+', { qos: 1, rh: 1 });
    await sleep(50);
    assert.equal(inbox.messages.length, 1, 'retain handling 1: only for a new subscription');
    assert.equal(inbox.messages[0]?.packet.retain, true);
    await c.subscribeAsync('nl/t', { qos: 1, nl: true, rap: true });
    await c.publishAsync('nl/t', 'own', { qos: 1, retain: false });
    await pub.publishAsync('nl/t', 'other', { qos: 1, retain: true });
    await inbox.waitFor(2);
    await sleep(50);
    const last = inbox.messages.slice(1);
    assert.deepEqual(
      last.map((m) => [m.payload.toString(), m.packet.retain]),
      [['other', true]],
    );
    await pub.publishAsync('nl/t', '', { qos: 1, retain: true });
    await pub.publishAsync('rh/t', '', { qos: 1, retain: true });
    await Promise.all([endClient(c), endClient(pub)]);
  });

  it('passes request/response properties and user properties through', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('rr/req', { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('rr/req', 'q', {
      qos: 1,
      properties: { responseTopic: 'rr/resp', correlationData: Buffer.from('c1'), userProperties: { a: '1', b: ['2', '3'] }, contentType: 'text/plain', payloadFormatIndicator: true },
    });
    const [m] = await inbox.waitFor(1);
    const p = m?.packet.properties;
    assert.equal(p?.responseTopic, 'rr/resp');
    assert.equal(p?.correlationData?.toString(), 'c1');
    assert.equal(p?.contentType, 'text/plain');
    assert.equal(p?.payloadFormatIndicator, true);
    assert.deepEqual({ ...p?.userProperties }, { a: "1", b: ["2", "3"] });
    await Promise.all([endClient(sub), endClient(pub)]);
  });

  it('rejects a payload that is not UTF-8 when the format indicator says it is (0x99)', async () => {
    const raw = await RawClient.open(b.port);
    await raw.connect();
    raw.send({ type: 'publish', topic: 'pfi', payload: Buffer.from([0xff, 0xfe]), qos: 1, retain: false, dup: false, packetId: 3, properties: { payloadFormatIndicator: 1 } });
    const ack = await raw.next('puback');
    assert.equal(ack.reasonCode, RC.PAYLOAD_FORMAT_INVALID);
    raw.close();
  });

  it('answers 0x10 when nobody subscribes, and resolves inbound topic aliases', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('alias/long/topic/name', { qos: 1 });
    const raw = await RawClient.open(b.port);
    await raw.connect();
    raw.send({ type: 'publish', topic: 'alias/long/topic/name', payload: Buffer.from('1'), qos: 1, retain: false, dup: false, packetId: 1, properties: { topicAlias: 4 } });
    assert.equal((await raw.next('puback')).reasonCode, 0);
    raw.send({ type: 'publish', topic: '', payload: Buffer.from('2'), qos: 1, retain: false, dup: false, packetId: 2, properties: { topicAlias: 4 } });
    assert.equal((await raw.next('puback')).reasonCode, 0);
    raw.send({ type: 'publish', topic: 'nobody/here', payload: Buffer.from('3'), qos: 1, retain: false, dup: false, packetId: 3 });
    assert.equal((await raw.next('puback')).reasonCode, RC.NO_MATCHING_SUBSCRIBERS);
    await inbox.waitFor(2);
    assert.deepEqual(
      inbox.messages.map((m) => [m.topic, m.payload.toString()]),
      [
        ['alias/long/topic/name', '1'],
        ['alias/long/topic/name', '2'],
      ],
    );
    // An alias that was never set is a protocol error.
    raw.send({ type: 'publish', topic: '', payload: Buffer.from('4'), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } });
    assert.equal((await raw.next('disconnect')).reasonCode, RC.PROTOCOL_ERROR);
    await endClient(sub);
  });

  it('assigns topic aliases to outgoing messages when the client allows them', async () => {
    const raw = await RawClient.open(b.port);
    await raw.connect({ properties: { topicAliasMaximum: 2 } });
    raw.send({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'oa/#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next('suback');
    const pub = await connect(b.port, { protocolVersion: 5 });
    for (const t of ['oa/1', 'oa/1', 'oa/2', 'oa/3', 'oa/1']) await pub.publishAsync(t, 'x', { qos: 1 });
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await raw.next('publish'));
    assert.deepEqual(
      got.map((p) => [p.topic, p.properties?.topicAlias]),
      [
        ['oa/1', 1],
        ['', 1],
        ['oa/2', 2],
        ['oa/3', undefined],
        ['', 1],
      ],
    );
    raw.close();
    await endClient(pub);
  });

  it('never has more unacknowledged messages in flight than the client Receive Maximum', async () => {
    const raw = await RawClient.open(b.port);
    await raw.connect({ properties: { receiveMaximum: 2 } });
    raw.send({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'rm', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next('suback');
    const pub = await connect(b.port, { protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await pub.publishAsync('rm', String(i), { qos: 1 });
    const a = await raw.next('publish');
    const bb = await raw.next('publish');
    await sleep(100);
    assert.equal(raw.received.filter((p) => p.type === 'publish').length, 0, 'a third message was sent before an ack');
    raw.send({ type: 'puback', packetId: a.packetId as number, reasonCode: 0 });
    const c = await raw.next('publish');
    assert.deepEqual([a, bb, c].map((p) => p.payload.toString()), ['0', '1', '2']);
    raw.close();
    await endClient(pub);
  });

  it('disconnects a client that exceeds the broker Receive Maximum (0x93)', async () => {
    const raw = await RawClient.open(b.port);
    await raw.connect();
    // QoS 2 publishes never released: each one stays counted.
    for (let i = 1; i <= 11; i++) raw.send({ type: 'publish', topic: 'rx', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: i });
    const d = await raw.next('disconnect');
    assert.equal(d.reasonCode, RC.RECEIVE_MAXIMUM_EXCEEDED);
  });

  it('does not forward a resent QoS 2 PUBLISH twice', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('q2', { qos: 2 });
    const raw = await RawClient.open(b.port);
    await raw.connect();
    const p = { type: 'publish' as const, topic: 'q2', payload: Buffer.from('once'), qos: 2 as const, retain: false, dup: false, packetId: 42 };
    raw.send(p);
    await raw.next('pubrec');
    raw.send({ ...p, dup: true });
    await raw.next('pubrec');
    raw.send({ type: 'pubrel', packetId: 42, reasonCode: 0 });
    assert.equal((await raw.next('pubcomp')).reasonCode, 0);
    await inbox.waitFor(1);
    await sleep(100);
    assert.equal(inbox.messages.length, 1);
    raw.close();
    await endClient(sub);
  });

  it('drops a message larger than the client Maximum Packet Size', async () => {
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5, properties: { maximumPacketSize: 200 } });
    await sub.subscribeAsync('big', { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('big', Buffer.alloc(500), { qos: 1 });
    await pub.publishAsync('big', 'small', { qos: 1 });
    await inbox.waitFor(1);
    await sleep(50);
    assert.deepEqual(
      inbox.messages.map((m) => m.payload.toString()),
      ['small'],
    );
    await Promise.all([endClient(sub), endClient(pub)]);
  });

  it('never delivers an expired message and decrements the expiry interval', async () => {
    const id = 'exp-client';
    const s = await connect(b.port, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    await s.subscribeAsync('exp/#', { qos: 1 });
    await endClient(s);
    const pub = await connect(b.port, { protocolVersion: 5 });
    await pub.publishAsync('exp/short', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('exp/long', 'kept', { qos: 1, properties: { messageExpiryInterval: 100 } });
    await sleep(1200);
    const { client: again, inbox } = await connectWithInbox(b.port, { protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    const [m] = await inbox.waitFor(1);
    await sleep(50);
    assert.equal(inbox.messages.length, 1);
    assert.equal(m?.payload.toString(), 'kept');
    const left = m?.packet.properties?.messageExpiryInterval ?? 0;
    assert.ok(left < 100 && left >= 98, `expiry interval ${left}`);
    await Promise.all([endClient(again), endClient(pub)]);
  });

  it('ends a session when its expiry interval passes', async () => {
    const s = await connect(b.port, { protocolVersion: 5, clientId: 'short-lived', clean: false, properties: { sessionExpiryInterval: 1 } });
    await s.subscribeAsync('sl', { qos: 1 });
    await endClient(s);
    assert.ok(b.server.broker.sessions.has('short-lived'));
    await sleep(1300);
    assert.ok(!b.server.broker.sessions.has('short-lived'));
    const raw = await RawClient.open(b.port);
    const ack = await raw.connect({ clientId: 'short-lived', cleanStart: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(ack.sessionPresent, false);
    raw.close();
  });
});
