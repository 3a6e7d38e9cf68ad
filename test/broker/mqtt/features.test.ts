import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { createCredential } from '../../../src/broker/core/auth/credentials.js';
import { ScramClient } from '../../../src/broker/core/auth/scram-client.js';
import { RC } from '../../../src/broker/mqtt/codec/index.js';
import { FakeMeta, FakeUsers, connect, connectWithInbox, endClient, sleep, startBroker, type TestBroker } from '../../support/mqtt.js';
import { RawClient } from '../../support/raw-mqtt.js';
import { removeDir, tempDir } from '../../support/server.js';

const brokers: TestBroker[] = [];
async function broker(...args: Parameters<typeof startBroker>): Promise<TestBroker> {
  const b = await startBroker(...args);
  brokers.push(b);
  return b;
}
after(async () => {
  for (const b of brokers) await b.stop().catch(() => undefined);
});

describe('wills', () => {
  it('publishes the will when the connection drops, not after a normal DISCONNECT, and after DISCONNECT 0x04', async () => {
    const b = await broker();
    const { client: watcher, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await watcher.subscribeAsync('will/#', { qos: 1 });
    const dropped = await RawClient.open(b.port);
    await dropped.connect({ will: { topic: 'will/dropped', payload: Buffer.from('gone'), qos: 1, retain: false } });
    dropped.close();
    const polite = await RawClient.open(b.port);
    await polite.connect({ will: { topic: 'will/polite', payload: Buffer.from('no'), qos: 1, retain: false } });
    polite.send({ type: 'disconnect', reasonCode: 0 });
    const withWill = await RawClient.open(b.port);
    await withWill.connect({ will: { topic: 'will/asked', payload: Buffer.from('yes'), qos: 1, retain: false } });
    withWill.send({ type: 'disconnect', reasonCode: RC.DISCONNECT_WITH_WILL });
    await inbox.waitFor(2);
    await sleep(100);
    assert.deepEqual(inbox.messages.map((m) => m.topic).sort(), ['will/asked', 'will/dropped']);
    await endClient(watcher);
  });

  it('delays the will and cancels it when the client comes back in time (MQTT 5 will delay)', async () => {
    const b = await broker();
    const { client: watcher, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await watcher.subscribeAsync('wd/#', { qos: 1 });
    const w = (topic: string) => ({ topic, payload: Buffer.from(topic), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } });
    const back = await RawClient.open(b.port);
    await back.connect({ clientId: 'wd-back', cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: w('wd/back') });
    back.close();
    const away = await RawClient.open(b.port);
    await away.connect({ clientId: 'wd-away', cleanStart: false, properties: { sessionExpiryInterval: 60 }, will: w('wd/away') });
    away.close();
    await sleep(300);
    assert.equal(inbox.messages.length, 0, 'will sent before its delay');
    const again = await RawClient.open(b.port);
    await again.connect({ clientId: 'wd-back', cleanStart: false, properties: { sessionExpiryInterval: 60 } });
    await inbox.waitFor(1, 3000);
    await sleep(300);
    assert.deepEqual(inbox.messages.map((m) => m.topic), ['wd/away']);
    again.close();
    await endClient(watcher);
  });
});

describe('shared subscriptions', () => {
  it('spreads messages over the group round-robin and hands a leaving member its messages', async () => {
    const b = await broker();
    const m1 = await connectWithInbox(b.port, { protocolVersion: 5, clientId: 'm1' });
    const m2 = await connectWithInbox(b.port, { protocolVersion: 5, clientId: 'm2' });
    await m1.client.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await m2.client.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 5 });
    for (let i = 0; i < 10; i++) await pub.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
    await sleep(200);
    assert.equal(m1.inbox.messages.length + m2.inbox.messages.length, 10);
    assert.equal(m1.inbox.messages.length, 5);
    // m2 stops acknowledging: messages held for it go to m1 when it leaves.
    const raw = await RawClient.open(b.port);
    await raw.connect({ clientId: 'm3', properties: { receiveMaximum: 1 } });
    raw.send({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: '$share/g/jobs/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next('suback');
    await endClient(m2.client);
    for (let i = 10; i < 16; i++) await pub.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
    await raw.next('publish');
    raw.close();
    await sleep(300);
    const all = [...m1.inbox.messages, ...m2.inbox.messages].map((m) => Number(m.payload.toString()));
    for (let i = 10; i < 16; i++) assert.ok(all.includes(i), `message ${i} lost when a member left (got ${all.join(',')})`);
    await Promise.all([endClient(m1.client), endClient(pub)]);
  });
});

describe('delayed publish', () => {
  it('publishes $delayed/1/topic about a second later', async () => {
    const b = await broker();
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('later', { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 5 });
    const t0 = Date.now();
    await pub.publishAsync('$delayed/1/later', 'hi', { qos: 1 });
    const [m] = await inbox.waitFor(1, 3000);
    const waited = Date.now() - t0;
    assert.equal(m?.topic, 'later');
    assert.ok(waited >= 900, `delivered after ${waited} ms`);
    await Promise.all([endClient(sub), endClient(pub)]);
  });
});

describe('authentication and ACL', () => {
  it('checks passwords, refuses anonymous clients when configured, and applies ACL rules in order', async () => {
    const users = new FakeUsers();
    users.users.set('alice', { credential: await createCredential('s3cret'), superuser: false });
    const b = await broker({
      users,
      settings: {
        allowAnonymous: false,
        acl: [
          { permission: 'deny', action: 'subscribe', topic: 'test/nosubscribe' },
          { permission: 'allow', action: 'all', topic: 'users/%u/#' },
          { permission: 'deny', action: 'all', topic: 'users/#' },
        ],
      },
    });
    await assert.rejects(connect(b.port, { protocolVersion: 4 }), /Not authorized|not authorized/i);
    await assert.rejects(connect(b.port, { protocolVersion: 5, username: 'alice', password: 'wrong' }), /Bad User Name or Password/i);
    await assert.rejects(connect(b.port, { protocolVersion: 4, username: 'alice', password: 'wrong' }), /Bad username or password/i);
    const v5 = await RawClient.open(b.port);
    assert.equal((await v5.connect({ username: 'alice', password: Buffer.from('s3cret') })).reasonCode, 0);
    const sub = (filter: string) => ({ filter, qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const });
    v5.send({ type: 'subscribe', packetId: 1, subscriptions: [sub('test/nosubscribe'), sub('users/alice/x'), sub('users/bob/x')] });
    assert.deepEqual((await v5.next('suback')).reasonCodes, [RC.NOT_AUTHORIZED, 1, RC.NOT_AUTHORIZED]);
    v5.send({ type: 'publish', topic: 'users/bob/x', payload: Buffer.from('no'), qos: 1, retain: false, dup: false, packetId: 2 });
    assert.equal((await v5.next('puback')).reasonCode, RC.NOT_AUTHORIZED);
    const v4 = await RawClient.open(b.port, 4);
    assert.equal((await v4.connect({ username: 'alice', password: Buffer.from('s3cret') })).reasonCode, 0);
    v4.send({ type: 'subscribe', packetId: 1, subscriptions: [sub('test/nosubscribe')] });
    assert.deepEqual((await v4.next('suback')).reasonCodes, [0x80]);
    v5.close();
    v4.close();
  });

  it('accepts a JWT (RS256) as the password, checking its username claim', async () => {
    const dir = tempDir();
    try {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = join(dir, 'jwt.pem');
      writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }));
      const b = await broker({ settings: { allowAnonymous: false, jwtPublicKeyFile: pem } });
      const token = await new SignJWT({ username: 'dev1' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(privateKey);
      const ok = await connect(b.port, { protocolVersion: 5, username: 'dev1', password: token });
      await endClient(ok);
      await assert.rejects(connect(b.port, { protocolVersion: 5, username: 'dev2', password: token }), /Bad User Name or Password/i);
    } finally {
      removeDir(dir);
    }
  });

  it('authenticates with SCRAM-SHA-256 over AUTH packets (MQTT 5 enhanced authentication)', async () => {
    const users = new FakeUsers();
    users.users.set('carol', { credential: await createCredential('pencil'), superuser: false });
    const b = await broker({ users, settings: { allowAnonymous: false } });
    const raw = await RawClient.open(b.port);
    const scram = new ScramClient('carol', 'pencil');
    raw.send({ type: 'connect', protocolName: 'MQTT', protocolLevel: 5, cleanStart: true, keepAlive: 30, clientId: 'scram-1', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() } });
    const challenge = await raw.next('auth');
    assert.equal(challenge.reasonCode, RC.CONTINUE_AUTHENTICATION);
    raw.send({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.final(challenge.properties?.authenticationData as Buffer) } });
    const ack = await raw.next('connack');
    assert.equal(ack.reasonCode, 0);
    assert.ok(scram.verifyServerFinal(ack.properties?.authenticationData as Buffer));
    raw.close();

    const bad = await RawClient.open(b.port);
    const wrong = new ScramClient('carol', 'eraser');
    bad.send({ type: 'connect', protocolName: 'MQTT', protocolLevel: 5, cleanStart: true, keepAlive: 30, clientId: 'scram-2', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.first() } });
    const c2 = await bad.next('auth');
    bad.send({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.final(c2.properties?.authenticationData as Buffer) } });
    assert.equal((await bad.next('connack')).reasonCode, RC.NOT_AUTHORIZED);
    const other = await RawClient.open(b.port);
    const ack3 = await other.connect({ properties: { authenticationMethod: 'KERBEROS' } });
    assert.equal(ack3.reasonCode, RC.BAD_AUTHENTICATION_METHOD);

    // Re-authentication on a live connection (MQTT 5 §4.12.1).
    const live = await RawClient.open(b.port);
    const s1 = new ScramClient('carol', 'pencil');
    live.send({ type: 'connect', protocolName: 'MQTT', protocolLevel: 5, cleanStart: true, keepAlive: 30, clientId: 'scram-3', properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s1.first() } });
    const ch1 = await live.next('auth');
    live.send({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s1.final(ch1.properties?.authenticationData as Buffer) } });
    assert.equal((await live.next('connack')).reasonCode, 0);
    const s2 = new ScramClient('carol', 'pencil');
    live.send({ type: 'auth', reasonCode: RC.REAUTHENTICATE, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s2.first() } });
    const ch2 = await live.next('auth');
    assert.equal(ch2.reasonCode, RC.CONTINUE_AUTHENTICATION);
    live.send({ type: 'auth', reasonCode: RC.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: s2.final(ch2.properties?.authenticationData as Buffer) } });
    const done = await live.next('auth');
    assert.equal(done.reasonCode, RC.SUCCESS);
    assert.ok(s2.verifyServerFinal(done.properties?.authenticationData as Buffer));
    live.send({ type: 'pingreq' });
    await live.next('pingresp');
    live.close();
  });
});

describe('limits and redirection', () => {
  it('redirects MQTT 5 clients with a Server Reference and MQTT 3 clients with "server unavailable"', async () => {
    const b = await broker({ settings: { redirectTo: 'other.example:1883', redirectPermanent: true } });
    const raw = await RawClient.open(b.port);
    const ack = await raw.connect();
    assert.equal(ack.reasonCode, RC.SERVER_MOVED);
    assert.equal(ack.properties?.serverReference, 'other.example:1883');
    const raw4 = await RawClient.open(b.port, 4);
    assert.equal((await raw4.connect()).reasonCode, 3);
  });

  it('closes a client silent for 1.5 x its keep alive, and imposes Server Keep Alive', async () => {
    const b = await broker({ settings: { serverKeepAlive: 2 } });
    const raw = await RawClient.open(b.port);
    const ack = await raw.connect({ keepAlive: 1 });
    assert.equal(ack.properties?.serverKeepAlive, 2);
    const t0 = Date.now();
    const d = await raw.next('disconnect', () => true, 6000);
    assert.equal(d.reasonCode, RC.KEEP_ALIVE_TIMEOUT);
    const waited = Date.now() - t0;
    assert.ok(waited >= 2900 && waited < 5000, `closed after ${waited} ms`);
  });

  it('bounds the offline queue and counts what it drops', async () => {
    const b = await broker({ settings: { maxQueuedMessages: 3 } });
    const s = await connect(b.port, { protocolVersion: 5, clientId: 'bounded', clean: false, properties: { sessionExpiryInterval: 60 } });
    await s.subscribeAsync('bq', { qos: 1 });
    await endClient(s);
    const pub = await connect(b.port, { protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await pub.publishAsync('bq', String(i), { qos: 1 });
    const dropped = (await b.metrics.registry.getSingleMetric('robust_mqtt_messages_dropped_total')?.get())?.values.find((v) => v.labels['reason'] === 'queue_full')?.value;
    assert.equal(dropped, 2);
    const { client, inbox } = await connectWithInbox(b.port, { protocolVersion: 5, clientId: 'bounded', clean: false, properties: { sessionExpiryInterval: 60 } });
    await inbox.waitFor(3);
    assert.deepEqual(inbox.messages.map((m) => m.payload.toString()), ['0', '1', '2']);
    await Promise.all([endClient(client), endClient(pub)]);
  });

  it('throttles a client above max_message_rate', async () => {
    const b = await broker({ settings: { maxMessageRate: 50 } });
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await sub.subscribeAsync('rate', { qos: 0 });
    const pub = await connect(b.port, { protocolVersion: 5 });
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) pub.publish('rate', String(i), { qos: 0 });
    await inbox.waitFor(100, 6000);
    const took = Date.now() - t0;
    // 50 pass at once (a full bucket), the other 50 at 50/s.
    assert.ok(took >= 800, `100 messages at 50/s took only ${took} ms`);
    await Promise.all([endClient(sub), endClient(pub)]);
  });

  it('drops QoS 0 messages to a subscriber that does not read, and counts them', async () => {
    const b = await broker({ settings: { slowClientBytes: 64 * 1024 } });
    const raw = await RawClient.open(b.port);
    await raw.connect();
    raw.send({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'flood', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next('suback');
    raw.socket.pause();
    const pub = await RawClient.open(b.port);
    await pub.connect();
    const body = Buffer.alloc(1024, 1);
    for (let i = 0; i < 20_000; i++) pub.send({ type: 'publish', topic: 'flood', payload: body, qos: 0, retain: false, dup: false });
    pub.send({ type: 'pingreq' });
    await pub.next('pingresp', () => true, 10_000);
    assert.ok(b.metrics.droppedCount('slow_client_qos0') > 0, 'nothing was dropped for the slow subscriber');
    const rss = process.memoryUsage().rss;
    assert.ok(rss < 2 * 1024 ** 3, `memory grew to ${rss}`);
    raw.close();
    pub.close();
  });

  it('holds QoS 1 publishers back while a connected subscriber is backed up, instead of dropping', async () => {
    const b = await broker({ settings: { maxQueuedMessages: 100, maxInflight: 8 } });
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 4, clientId: 'fan-in-sub' });
    await sub.subscribeAsync('fanin/#', { qos: 1 });
    const pubs = await Promise.all(Array.from({ length: 10 }, () => RawClient.open(b.port, 4)));
    await Promise.all(pubs.map((p) => p.connect()));
    const per = 500;
    pubs.forEach((p, i) => {
      for (let k = 1; k <= per; k++) p.send({ type: 'publish', topic: `fanin/${i}`, payload: Buffer.from(`${i}:${k}`), qos: 1, retain: false, dup: false, packetId: k });
    });
    await inbox.waitFor(pubs.length * per, 20_000);
    assert.equal(b.metrics.droppedCount('queue_full'), 0);
    for (const p of pubs) p.close();
    await endClient(sub);
  });

  it('speaks MQTT 3.1 (MQIsdp, level 3)', async () => {
    const b = await broker();
    const { client: sub, inbox } = await connectWithInbox(b.port, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'old-client' });
    await sub.subscribeAsync('v31', { qos: 1 });
    const pub = await connect(b.port, { protocolVersion: 3, protocolId: 'MQIsdp' });
    await pub.publishAsync('v31', 'hello', { qos: 1 });
    assert.equal((await inbox.waitFor(1))[0]?.payload.toString(), 'hello');
    await Promise.all([endClient(sub), endClient(pub)]);
  });
});

describe('durable state (session log, retained, delayed) across a broker restart', () => {
  it('keeps a persistent session, its queued QoS 1/2 messages, retained and delayed messages', async () => {
    const meta = new FakeMeta();
    const b1 = await startBroker({ meta });
    const s = await connect(b1.port, { protocolVersion: 5, clientId: 'dur', clean: false, properties: { sessionExpiryInterval: 600 } });
    await s.subscribeAsync('d/#', { qos: 2 });
    await endClient(s);
    const pub = await connect(b1.port, { protocolVersion: 5 });
    await pub.publishAsync('d/1', 'one', { qos: 1 });
    await pub.publishAsync('d/2', 'two', { qos: 2 });
    await pub.publishAsync('d/keep', 'retained', { qos: 1, retain: true });
    await pub.publishAsync('$delayed/1/d/later', 'delayed', { qos: 1 });
    await endClient(pub);
    await b1.stop();
    assert.equal(meta.sessionMap.get('dur')?.subscriptions[0]?.filter, 'd/#');

    const b2 = await startBroker({ meta });
    brokers.push(b2);
    const { client, inbox } = await connectWithInbox(b2.port, { protocolVersion: 5, clientId: 'dur', clean: false, properties: { sessionExpiryInterval: 600 } });
    await inbox.waitFor(4, 4000);
    // mqtt.js emits a QoS 2 message only once PUBREL arrives, so it may come out after later QoS 1 ones.
    assert.deepEqual(inbox.messages.map((m) => `${m.payload.toString()}@${m.packet.qos}`).sort(), ['delayed@1', 'one@1', 'retained@1', 'two@2']);
    assert.deepEqual(inbox.messages.filter((m) => m.packet.qos === 1).map((m) => m.payload.toString()), ['one', 'retained', 'delayed']);
    const fresh = await connectWithInbox(b2.port, { protocolVersion: 5 });
    await fresh.client.subscribeAsync('d/keep', { qos: 1 });
    assert.equal((await fresh.inbox.waitFor(1))[0]?.payload.toString(), 'retained');
    await Promise.all([endClient(client), endClient(fresh.client)]);
  });
});

describe('delayed messages stored before the delayed log became per node', () => {
  it('are moved from __mqtt.delayed into the node\'s own log and still fire, once', async () => {
    const meta = new FakeMeta();
    const b1 = await startBroker({ meta });
    const pub = await connect(b1.port, { protocolVersion: 5 });
    await pub.publishAsync('$delayed/2/legacy/t', 'from-before', { qos: 1 });
    await endClient(pub);
    await b1.stop();
    // Make it look like an older version wrote it: the record lives in the shared legacy log.
    const engine = meta.engine;
    const records = await engine.read('__mqtt.delayed.n1-0', 0n, { maxRecords: 100, maxBytes: 1 << 20 });
    assert.equal(records.length, 1);
    await engine.createShard({ shard: '__mqtt.delayed-0', topic: '__mqtt.delayed', engine: 'memory', retentionMs: -1, retentionBytes: -1 });
    await engine.append('__mqtt.delayed-0', records.map(({ offset: _o, ...r }) => r));
    await engine.deleteShard('__mqtt.delayed.n1-0');

    const b2 = await startBroker({ meta });
    brokers.push(b2);
    const { client, inbox } = await connectWithInbox(b2.port, { protocolVersion: 5 });
    await client.subscribeAsync('legacy/#', { qos: 1 });
    assert.equal((await inbox.waitFor(1, 5000))[0]?.payload.toString(), 'from-before');
    const legacy = await engine.shardInfo('__mqtt.delayed-0');
    assert.equal(legacy.startOffset, legacy.endOffset, 'the legacy log was emptied');
    await b2.stop();
    const b3 = await startBroker({ meta });
    brokers.push(b3);
    const again = await connectWithInbox(b3.port, { protocolVersion: 5 });
    await again.client.subscribeAsync('legacy/#', { qos: 1 });
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(again.inbox.messages.length, 0, 'fired once, not again after another restart');
    await Promise.all([endClient(client), endClient(again.client)]);
  });
});

describe('unacknowledged messages across a graceful restart', () => {
  it('are resent with DUP under their original packet ids (QoS 1 and QoS 2)', async () => {
    const meta = new FakeMeta();
    const b1 = await startBroker({ meta });
    const raw = await RawClient.open(b1.port);
    await raw.connect({ clientId: 'keeps-ids', cleanStart: false, properties: { sessionExpiryInterval: 600 } });
    raw.send({ type: 'subscribe', packetId: 1, subscriptions: [{ filter: 'ids/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next('suback');
    const pub = await connect(b1.port, { protocolVersion: 5 });
    await pub.publishAsync('ids/1', 'q1', { qos: 1 });
    await pub.publishAsync('ids/2', 'q2', { qos: 2 });
    const first = [await raw.next('publish'), await raw.next('publish')];
    await endClient(pub);
    raw.close();
    await b1.stop();
    const b2 = await startBroker({ meta });
    brokers.push(b2);
    const again = await RawClient.open(b2.port);
    const ack = await again.connect({ clientId: 'keeps-ids', cleanStart: false, properties: { sessionExpiryInterval: 600 } });
    assert.equal(ack.sessionPresent, true);
    const resent = [await again.next('publish'), await again.next('publish')];
    assert.deepEqual(
      resent.map((p) => [p.payload.toString(), p.qos, p.packetId, p.dup]),
      first.map((p) => [p.payload.toString(), p.qos, p.packetId, true]),
    );
    again.close();
  });
});

describe('retained set and clear in quick succession', () => {
  it('a clear right after a set wins, also after a restart', async () => {
    const meta = new FakeMeta();
    const b1 = await startBroker({ meta });
    const raw = await RawClient.open(b1.port);
    await raw.connect();
    raw.send({ type: 'publish', topic: 'rq/t', payload: Buffer.from('x'), qos: 0, retain: true, dup: false });
    raw.send({ type: 'publish', topic: 'rq/t', payload: Buffer.alloc(0), qos: 1, retain: true, dup: false, packetId: 1 });
    await raw.next('puback');
    raw.close();
    await b1.stop();
    assert.equal(meta.retained.has('rq/t'), false);
    const b2 = await startBroker({ meta });
    brokers.push(b2);
    assert.equal(b2.server.broker.retained.has('rq/t'), false);
  });
});

describe('$SYS topics', () => {
  it('publishes broker facts under $SYS/brokers/<node>/ periodically', async () => {
    const b = await broker({ settings: { sysIntervalMs: 200 } });
    const { client, inbox } = await connectWithInbox(b.port, { protocolVersion: 5 });
    await client.subscribeAsync('$SYS/brokers/1/#', { qos: 0 });
    await inbox.waitFor(11, 3000);
    const byTopic = new Map(inbox.messages.map((m) => [m.topic, m.payload.toString()]));
    assert.equal(byTopic.get('$SYS/brokers/1/version'), 'test');
    assert.equal(byTopic.get('$SYS/brokers/1/clients/connected'), '1');
    for (const t of ['uptime', 'messages/received', 'messages/sent', 'bytes/received', 'bytes/sent', 'subscriptions/count', 'retained/count']) {
      assert.match(byTopic.get(`$SYS/brokers/1/${t}`) ?? '', /^\d+$/, t);
    }
    await endClient(client);
  });
});
