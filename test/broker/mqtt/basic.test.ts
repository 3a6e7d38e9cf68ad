import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Inbox, connect, connectWithInbox, endClient, startBroker, type TestBroker } from '../../support/mqtt.js';

for (const protocolVersion of [4, 5] as const) {
  describe(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5.0'} basics (mqtt.js)`, () => {
    let b: TestBroker;
    before(async () => {
      b = await startBroker();
    });
    after(async () => {
      await b.stop();
    });

    it('publishes at QoS 0, 1 and 2 and delivers at the granted QoS', async () => {
      const sub = await connect(b.port, { protocolVersion, clientId: `sub-${protocolVersion}` });
      const inbox = new Inbox(sub);
      const granted = await sub.subscribeAsync([`t${protocolVersion}/+/x`], { qos: 2 });
      assert.equal(granted[0]?.qos, 2);
      const pub = await connect(b.port, { protocolVersion });
      for (const qos of [0, 1, 2] as const) await pub.publishAsync(`t${protocolVersion}/${qos}/x`, `m${qos}`, { qos });
      const got = await inbox.waitFor(3);
      assert.deepEqual(
        got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
        [
          [`t${protocolVersion}/0/x`, 'm0', 0],
          [`t${protocolVersion}/1/x`, 'm1', 1],
          [`t${protocolVersion}/2/x`, 'm2', 2],
        ],
      );
      await endClient(pub);
      await endClient(sub);
    });

    it('retains, replaces and clears a retained message', async () => {
      const pub = await connect(b.port, { protocolVersion });
      const topic = `r${protocolVersion}/a`;
      await pub.publishAsync(topic, 'one', { qos: 1, retain: true });
      await pub.publishAsync(topic, 'two', { qos: 1, retain: true });
      const s1 = await connect(b.port, { protocolVersion });
      const in1 = new Inbox(s1);
      await s1.subscribeAsync(`r${protocolVersion}/#`, { qos: 1 });
      const [m] = await in1.waitFor(1);
      assert.equal(m?.payload.toString(), 'two');
      assert.equal(m?.packet.retain, true);
      await pub.publishAsync(topic, '', { qos: 1, retain: true });
      const s2 = await connect(b.port, { protocolVersion });
      const in2 = new Inbox(s2);
      await s2.subscribeAsync(`r${protocolVersion}/#`, { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(in2.messages.length, 0);
      await Promise.all([endClient(pub), endClient(s1), endClient(s2)]);
    });

    it('queues QoS 1 messages for a persistent session while offline', async () => {
      const clientId = `persist-${protocolVersion}`;
      const persistent = protocolVersion === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };
      const s = await connect(b.port, { protocolVersion, clientId, ...persistent });
      await s.subscribeAsync(`q${protocolVersion}/#`, { qos: 1 });
      await endClient(s);
      const pub = await connect(b.port, { protocolVersion });
      for (let i = 0; i < 5; i++) await pub.publishAsync(`q${protocolVersion}/${i}`, String(i), { qos: 1 });
      const { client: again, inbox } = await connectWithInbox(b.port, { protocolVersion, clientId, ...persistent });
      const got = await inbox.waitFor(5);
      assert.deepEqual(
        got.map((m) => m.payload.toString()),
        ['0', '1', '2', '3', '4'],
      );
      await Promise.all([endClient(pub), endClient(again)]);
    });
  });
}
