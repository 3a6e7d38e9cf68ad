/**
 * A persistent MQTT session outlives its broker: on a three-node cluster storing
 * on the journal engine, a subscriber's node is killed with -9 while it is
 * offline with QoS 1 messages queued, and publishing goes on while the node is
 * down (before meta notices, and after); the client reconnects to another node
 * and gets every acknowledged message, once, in order. Real processes, mqtt.js.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { Cluster, until } from '../support/journal-cluster.js';

function connect5(port: number, clientId: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: '127.0.0.1', port, clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** Publishes at QoS 1 until acknowledged (an MQTT 5 error reason means: not taken, send it again). */
async function publishAcked(pub: mqtt.MqttClient, topic: string, v: string, retried: Set<string>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await pub.publishAsync(topic, v, { qos: 1 });
      return;
    } catch (err) {
      retried.add(v);
      assert.ok(attempt < 80, `publish of ${v} kept failing: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function connect(port: number, clientId: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: '127.0.0.1', port, clientId, clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

describe('mqtt session takeover after its broker dies', () => {
  const cluster = new Cluster({ e: 3, w: 3, a: 2 });
  after(() => cluster.stop());

  it('a queued persistent session resumes on another node with its queue', { timeout: 120_000 }, async () => {
    await cluster.write();
    await Promise.all([1, 2, 3].map((id) => cluster.start(id)));
    const metaLeader = await until('a meta leader', async () => {
      const v = await cluster.status(1);
      return v.leader_id !== 0 && v.nodes.length === 3 && v.nodes.every((n) => n.state === 'alive') ? v.leader_id : undefined;
    }, 15_000);
    // The subscriber's home is a node that is not the meta leader; the publisher uses a third one.
    const [home, other] = [1, 2, 3].filter((id) => id !== metaLeader) as [number, number];
    const mqttPort = (id: number) => cluster.ports.get(id)!.mqtt;

    const sub = await connect(mqttPort(home), 'takeover-sub');
    await sub.subscribeAsync('fleet/#', { qos: 1 });
    await sub.endAsync();

    const pub = await connect(mqttPort(other), 'takeover-pub');
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      await pub.publishAsync(`fleet/truck${i % 3}`, `m${i}`, { qos: 1 }); // resolves on PUBACK
      sent.push(`m${i}`);
    }
    await pub.endAsync();

    await cluster.kill(home);
    // Publishing goes on while the home node is down: these are queued in its session log by the publisher's node.
    const retried = new Set<string>();
    // From the third node, so the queueing is done by a node that is not the one the session resumes on.
    const pub2 = await connect5(mqttPort(metaLeader), 'takeover-pub2');
    for (let i = 30; i < 40; i++) {
      await publishAcked(pub2, `fleet/truck${i % 3}`, `m${i}`, retried);
      sent.push(`m${i}`);
    }
    // Meta notices the node is gone (suspect after 3 s in these configs).
    await until('the home node no longer alive', async () => {
      const v = await cluster.status(other);
      return v.nodes.find((n) => n.node_id === home)?.state !== 'alive' ? true : undefined;
    }, 15_000);
    for (let i = 40; i < 50; i++) {
      await publishAcked(pub2, `fleet/truck${i % 3}`, `m${i}`, retried);
      sent.push(`m${i}`);
    }

    const got: string[] = [];
    const resumed = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: mqttPort(other), clientId: 'takeover-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000 });
      c.on('message', (_t, payload) => got.push(payload.toString()));
      c.once('connect', (ack) => {
        assert.equal(ack.sessionPresent, true, 'the session is present on the new node');
        resolve(c);
      });
      c.once('error', reject);
    });
    // Publishes racing the takeover: queued for the session on its new node, or caught up from the old log.
    for (let i = 50; i < 60; i++) {
      await publishAcked(pub2, `fleet/truck${i % 3}`, `m${i}`, retried);
      sent.push(`m${i}`);
    }
    await pub2.endAsync();
    await until('every acknowledged message delivered', async () => (new Set(got).size >= sent.length ? true : undefined), 20_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: got ${new Set(got).size} of ${sent.length} (missing ${sent.filter((v) => !got.includes(v)).join(',')}); node logs:\n${cluster.logs(/took over|session|"level":(40|50)/)}`);
    });
    await new Promise((r) => setTimeout(r, 2500)); // the takeover's second read of the old log is done by now
    await resumed.endAsync();
    const firstSeen = got.filter((v, i) => got.indexOf(v) === i);
    assert.deepEqual(firstSeen, sent, 'all acknowledged messages, in order');
    const dupes = got.filter((v, i) => got.indexOf(v) !== i);
    assert.ok(dupes.every((v) => retried.has(v)), `only resent messages may come twice: ${dupes.join(',')}`);

    // The dead node comes back: it does not hand the session's old queue out again.
    await cluster.start(home);
    const again: string[] = [];
    const back = await connect(mqttPort(home), 'takeover-sub');
    back.on('message', (_t, payload) => again.push(payload.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    await back.endAsync();
    assert.deepEqual(again, [], 'nothing delivered twice after the old node restarts');
  });
  it('QoS 1 publishes to an offline session survive kill -9 of the meta leader (a journal node of its log)', { timeout: 120_000 }, async () => {
    const metaLeader = await until('a meta leader', async () => {
      const v = await cluster.status([...cluster.procs.keys()][0]!);
      return v.leader_id !== 0 && v.nodes.every((n) => n.state === 'alive') ? v.leader_id : undefined;
    }, 20_000);
    const [home, pubNode] = [1, 2, 3].filter((id) => id !== metaLeader) as [number, number];
    const mqttPort = (id: number) => cluster.ports.get(id)!.mqtt;
    const sub = await connect(mqttPort(home), 'kill-sub');
    await sub.subscribeAsync('load/#', { qos: 1 });
    await sub.endAsync();

    const pub = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: mqttPort(pubNode), clientId: 'kill-pub', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    const acked: string[] = [];
    const retried = new Set<string>();
    for (let i = 0; i < 300; i++) {
      if (i === 100) void cluster.kill(metaLeader);
      const v = `q${i}`;
      for (let attempt = 0; ; attempt++) {
        try {
          await pub.publishAsync('load/x', v, { qos: 1 });
          break;
        } catch (err) {
          // Not acknowledged (MQTT 5 error reason): a client sends it again.
          retried.add(v);
          assert.ok(attempt < 20, `publish of ${v} kept failing: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      acked.push(v);
    }
    await pub.endAsync();
    await cluster.start(metaLeader);

    const got: string[] = [];
    const back = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect({ host: '127.0.0.1', port: mqttPort(home), clientId: 'kill-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000 });
      c.on('message', (_t, payload) => got.push(payload.toString()));
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    await until('every acknowledged message delivered', async () => (new Set(got).size >= acked.length ? true : undefined), 30_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: got ${new Set(got).size} of ${acked.length}`);
    });
    await back.endAsync();
    const firstSeen = got.filter((v, i) => got.indexOf(v) === i);
    assert.deepEqual(firstSeen, acked, 'every acknowledged message, in publish order');
    const dupes = got.filter((v, i) => got.indexOf(v) !== i);
    assert.ok(dupes.every((v) => retried.has(v)), `only resent messages may come twice: ${dupes.join(',')}`);
  });

});

// A cluster of its own: no node restarted just before, so the brokers' links are steady.
describe('mqtt session moving between live brokers', () => {
  const cluster = new Cluster({ e: 3, w: 3, a: 2 });
  after(() => cluster.stop());

  it('a session moves between live brokers with its queue; one connection per client id across the cluster', { timeout: 120_000 }, async () => {
    await cluster.startAll(30_000);
    const mqttPort = (id: number) => cluster.ports.get(id)!.mqtt;
    const [a, b, c] = [1, 2, 3];
    const sub = await connect(mqttPort(a), 'mover');
    await sub.subscribeAsync('live/#', { qos: 1 });
    await sub.endAsync();
    // Routes reach the other brokers in milliseconds, after the SUBACK: the publishing broker knows this one first.
    await until('the route known at the publishing broker', async () => {
      const view = (await (await fetch(`http://127.0.0.1:${cluster.ports.get(c)!.http}/api/v1/mqtt/routes`)).json()) as { nodes: Array<{ node_id: number; connected: boolean; routes: Array<{ filter: string }> }> };
      const at = view.nodes.find((n) => n.node_id === a);
      return at?.connected && at.routes.some((r) => r.filter === 'live/#') ? true : undefined;
    }, 10_000);

    const pub = await connect5(mqttPort(c), 'mover-pub');
    const retried = new Set<string>();
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      await publishAcked(pub, `live/${i % 2}`, `l${i}`, retried);
      sent.push(`l${i}`);
    }

    // The client comes back on another live broker: the queue left on the first one follows it.
    const got: string[] = [];
    let closedAtB = false;
    const atB = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const cl = mqtt.connect({ host: '127.0.0.1', port: mqttPort(b), clientId: 'mover', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0, connectTimeout: 20_000 });
      cl.on('message', (_t, payload) => got.push(payload.toString()));
      cl.once('connect', (ack) => {
        assert.equal(ack.sessionPresent, true, 'the session is present on the new broker');
        resolve(cl);
      });
      cl.once('close', () => (closedAtB = true));
      cl.once('error', reject);
    });
    for (let i = 20; i < 30; i++) {
      await publishAcked(pub, `live/${i % 2}`, `l${i}`, retried);
      sent.push(`l${i}`);
    }
    await until('the queue and the new messages delivered', async () => (new Set(got).size >= sent.length ? true : undefined), 20_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: got ${new Set(got).size} of ${sent.length} (missing ${sent.filter((v) => !got.includes(v)).join(',')}); node logs:\n${cluster.logs(/moved|session|mqtt cluster|"level":(40|50)/)}`);
    });
    const firstSeen = got.filter((v, i) => got.indexOf(v) === i);
    assert.deepEqual(firstSeen, sent, 'every message, in order');
    assert.ok(got.filter((v, i) => got.indexOf(v) !== i).every((v) => retried.has(v)), 'no duplicates but resent ones');

    // The same client id connecting at the first broker while connected at the second: the second connection is closed.
    const back = await connect(mqttPort(a), 'mover');
    await until('the connection at the second broker closed', async () => (closedAtB ? true : undefined), 10_000);
    const gotBack: string[] = [];
    back.on('message', (_t, payload) => gotBack.push(payload.toString()));
    await publishAcked(pub, 'live/x', 'after', retried);
    await until('the client at the first broker gets new messages', async () => (gotBack.includes('after') ? true : undefined), 10_000).catch(async (err: unknown) => {
      const routes = await Promise.all([a, b, c].map((id) => fetch(`http://127.0.0.1:${cluster.ports.get(id)!.http}/api/v1/mqtt/routes`).then((x) => x.text(), (e: unknown) => String(e))));
      throw new Error(`${(err as Error).message}; routes: ${routes.join(' | ').replace(/\s+/g, '')}; logs:\n${cluster.logs(/moved|session|mqtt cluster|"level":(40|50)/)}`);
    });
    assert.ok(!got.includes('after'), 'the closed connection got nothing more');

    // A clean start on a third broker also closes the connection where the session was.
    let backClosed = false;
    back.once('close', () => (backClosed = true));
    const clean = await new Promise<mqtt.MqttClient>((resolve, reject) => {
      const cl = mqtt.connect({ host: '127.0.0.1', port: mqttPort(c), clientId: 'mover', clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000 });
      cl.once('connect', (ack) => {
        assert.equal(ack.sessionPresent, false);
        resolve(cl);
      });
      cl.once('error', reject);
    });
    await until('the connection at the first broker closed', async () => (backClosed ? true : undefined), 10_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; logs:\n${cluster.logs(/moved|session|let it go|"level":(40|50)/)}`);
    });
    await clean.endAsync();
    await pub.endAsync();
    atB.end(true);
    back.end(true);
  });
});
