/**
 * Cluster routing between MQTT brokers in one process: three real MqttServers,
 * each with its own inner gRPC server on 127.0.0.1, linked by MqttCluster over
 * real streams; the meta service's view of the brokers is a fake directory the
 * test edits. Clients are mqtt.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { MqttClient } from 'mqtt';
import { MqttCluster, type ClusterBroker, type PeerDirectory, type WireMessage } from '../../../src/broker/mqtt/cluster.js';
import { MqttMetrics } from '../../../src/broker/mqtt/metrics.js';
import { MqttServer } from '../../../src/broker/mqtt/server.js';
import { defaultMqttSettings, type MqttSettings } from '../../../src/broker/mqtt/settings.js';
import { MemoryMqttStore, type MqttStore, type StoredSession, type StoredSubscription } from '../../../src/broker/mqtt/store.js';
import type { Outgoing } from '../../../src/broker/mqtt/session.js';
import { loadProto, serviceClient } from '../../../src/rpc/proto.js';
import { FakeUsers, Inbox, connect, connectWithInbox, endClient, silentLog, sleep } from '../../support/mqtt.js';

function sub(filter: string, qos: 0 | 1 | 2, extra: Partial<StoredSubscription> = {}): StoredSubscription {
  return { filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra };
}

class FakeDirectory implements PeerDirectory {
  private list: ClusterBroker[] = [];
  private readonly listeners = new Set<() => void>();
  brokers(): ClusterBroker[] {
    return this.list.map((b) => ({ ...b }));
  }
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  set(b: ClusterBroker): void {
    this.list = [...this.list.filter((x) => x.id !== b.id), b].sort((x, y) => x.id - y.id);
    for (const fn of [...this.listeners]) fn();
  }
}

interface Node {
  id: number;
  server: MqttServer;
  cluster: MqttCluster;
  grpc: grpc.Server;
  port: number;
  grpcPort: number;
  metrics: MqttMetrics;
  stop(): Promise<void>;
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

async function startNode(id: number, dir: FakeDirectory, opts: { settings?: Partial<MqttSettings>; store?: MqttStore; ackTimeoutMs?: number } = {}): Promise<Node> {
  const g = new grpc.Server();
  const metrics = new MqttMetrics();
  const server = new MqttServer({
    settings: defaultMqttSettings({ nodeId: id, ...opts.settings }),
    store: opts.store ?? new MemoryMqttStore(),
    users: new FakeUsers(),
    log: silentLog,
    metrics,
    listeners: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
    wsPath: '/mqtt',
    version: 'test',
  });
  const cluster = new MqttCluster({ nodeId: id, clusterName: 'test', broker: server.broker, directory: dir, server: g, log: silentLog, registry: metrics.registry, ackTimeoutMs: opts.ackTimeoutMs ?? 2000, reconnectMs: 50 });
  server.cluster = cluster;
  const grpcPort = await bind(g);
  await server.start();
  dir.set({ id, grpcAddr: `127.0.0.1:${grpcPort}`, alive: true });
  const port = Number(server.listeners()[0]!.address.split(':').pop());
  return {
    id,
    server,
    cluster,
    grpc: g,
    port,
    grpcPort,
    metrics,
    stop: async () => {
      await server.stop();
      g.forceShutdown();
    },
  };
}

async function until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Waits until `node` knows `route` at every peer in `peers` (and only there, when exact). */
function routeAt(node: Node, peer: number, route: string): boolean {
  return node.cluster.remote.routesOf(peer).includes(route);
}

async function metricValue(node: Node, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await node.metrics.registry.getSingleMetric(name)?.get();
  let sum = 0;
  for (const v of m?.values ?? []) if (Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)) sum += v.value;
  return sum;
}

const clients = new Set<MqttClient>();
async function client(port: number, opts: Parameters<typeof connect>[1] = {}): Promise<{ c: MqttClient; inbox: Inbox }> {
  const { client: c, inbox } = await connectWithInbox(port, opts);
  clients.add(c);
  return { c, inbox };
}

describe('MQTT cluster routing (three brokers in one process)', () => {
  const dir = new FakeDirectory();
  let n1: Node;
  let n2: Node;
  let n3: Node;
  before(async () => {
    const settings = { maxPacketSize: 16 * 1024 * 1024 };
    n1 = await startNode(1, dir, { settings });
    n2 = await startNode(2, dir, { settings });
    n3 = await startNode(3, dir, { settings });
    await until('every pair linked', () => n1.cluster.linked.length === 2 && n2.cluster.linked.length === 2 && n3.cluster.linked.length === 2);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const n of [n1, n2, n3]) await n?.stop();
  });

  it('QoS 0/1/2 published on node 1 reach subscribers on nodes 2 and 3 exactly once, wildcards included', async () => {
    const s2 = await client(n2.port, { clientId: 's2' });
    const s3 = await client(n3.port, { clientId: 's3' });
    await s2.c.subscribeAsync('q/+/x', { qos: 2 });
    await s3.c.subscribeAsync('q/#', { qos: 2 });
    await s3.c.subscribeAsync('q/+/x', { qos: 1 }); // overlapping: still one copy
    await until('routes known on node 1', () => routeAt(n1, 2, 'q/+/x') && routeAt(n1, 3, 'q/#') && routeAt(n1, 3, 'q/+/x'));
    const p = await client(n1.port, { clientId: 'p1' });
    for (const qos of [0, 1, 2] as const) await p.c.publishAsync(`q/${qos}/x`, `m${qos}`, { qos });
    await p.c.publishAsync('q/other', 'wild', { qos: 1 });
    await s2.inbox.waitFor(3);
    await s3.inbox.waitFor(4);
    await sleep(200);
    assert.deepEqual(
      s2.inbox.messages.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
      [
        ['q/0/x', 'm0', 0],
        ['q/1/x', 'm1', 1],
        ['q/2/x', 'm2', 2],
      ],
    );
    assert.deepEqual(
      s3.inbox.messages.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
      [
        ['q/0/x', 'm0', 0],
        ['q/1/x', 'm1', 1],
        ['q/2/x', 'm2', 2],
        ['q/other', 'wild', 1],
      ],
    );
    assert.equal(await metricValue(n1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' }), 3);
    assert.equal(await metricValue(n1, 'robust_mqtt_cluster_forwarded_total', { peer: '3' }), 4);
    assert.equal(await metricValue(n2, 'robust_mqtt_cluster_received_total', { peer: '1' }), 3);
    assert.ok((await metricValue(n1, 'robust_mqtt_cluster_routes', { peer: '3' })) >= 2);
    await Promise.all([endClient(s2.c), endClient(s3.c), endClient(p.c)]);
  });

  it('keeps MQTT 5 properties, message expiry, retain-as-published and the publisher for no-local', async () => {
    const s = await client(n2.port, { clientId: 'v5-sub', protocolVersion: 5 });
    await s.c.subscribeAsync('v5/rap', { qos: 1, rap: true });
    await s.c.subscribeAsync('v5/plain', { qos: 1 });
    // Same client id as the publisher on node 1 (ids are per broker): no-local must still hold it back.
    const twin = await client(n3.port, { clientId: 'v5-pub', protocolVersion: 5 });
    await twin.c.subscribeAsync('v5/#', { qos: 1, nl: true });
    const other = await client(n3.port, { clientId: 'v5-other', protocolVersion: 5 });
    await other.c.subscribeAsync('v5/#', { qos: 1 });
    await until('routes', () => routeAt(n1, 2, 'v5/rap') && routeAt(n1, 3, 'v5/#'));
    const p = await client(n1.port, { clientId: 'v5-pub', protocolVersion: 5 });
    await p.c.publishAsync('v5/rap', 'r', {
      qos: 1,
      retain: true,
      properties: { userProperties: { k: 'v' }, contentType: 'text/plain', responseTopic: 'reply/to', correlationData: Buffer.from('cid'), payloadFormatIndicator: true, messageExpiryInterval: 60 },
    });
    await p.c.publishAsync('v5/plain', 'n', { qos: 1, retain: true });
    const got = await s.inbox.waitFor(2);
    const rap = got.find((m) => m.topic === 'v5/rap')!;
    const props = rap.packet.properties!;
    assert.equal(rap.packet.retain, true, 'retain-as-published keeps the flag');
    assert.deepEqual({ ...props.userProperties }, { k: 'v' });
    assert.equal(props.contentType, 'text/plain');
    assert.equal(props.responseTopic, 'reply/to');
    assert.equal(Buffer.from(props.correlationData!).toString(), 'cid');
    assert.equal(props.payloadFormatIndicator, true);
    assert.ok(props.messageExpiryInterval! > 55 && props.messageExpiryInterval! <= 60, `expiry ${props.messageExpiryInterval}`);
    assert.equal(got.find((m) => m.topic === 'v5/plain')!.packet.retain, false, 'without retain-as-published the flag is cleared');
    await other.inbox.waitFor(2);
    await sleep(200);
    assert.equal(twin.inbox.messages.length, 0, 'no-local compares the original publisher');
    // The retained messages are known on node 2 too: a new subscriber there gets them.
    const late = await client(n2.port, { clientId: 'v5-late', protocolVersion: 5 });
    await late.c.subscribeAsync('v5/+', { qos: 1 });
    const retained = await late.inbox.waitFor(2);
    assert.deepEqual(retained.map((m) => m.payload.toString()).sort(), ['n', 'r']);
    // Clearing on node 1 clears everywhere.
    await p.c.publishAsync('v5/rap', '', { qos: 1, retain: true });
    await p.c.publishAsync('v5/plain', '', { qos: 1, retain: true });
    await until('retained cleared on node 3', () => !n3.server.broker.retained.has('v5/rap') && !n3.server.broker.retained.has('v5/plain'));
    for (const c of [s, twin, other, late, p]) await endClient(c.c);
  });

  it('message expiry: the time left travels with the message', async () => {
    const s = await client(n2.port, { clientId: 'exp-sub', protocolVersion: 5 });
    await s.c.subscribeAsync('exp/x', { qos: 1 });
    await until('route', () => routeAt(n1, 2, 'exp/x'));
    const p = await client(n1.port, { clientId: 'exp-pub', protocolVersion: 5 });
    await p.c.publishAsync('exp/x', 'soon', { qos: 1, properties: { messageExpiryInterval: 2 } });
    const [m] = await s.inbox.waitFor(1);
    assert.ok(m!.packet.properties!.messageExpiryInterval! <= 2);
    await Promise.all([endClient(s.c), endClient(p.c)]);
  });

  it('a shared subscription with members on several nodes gets each message once in total', async () => {
    const members = [
      await client(n1.port, { clientId: 'm1' }),
      await client(n2.port, { clientId: 'm2' }),
      await client(n2.port, { clientId: 'm2b' }),
      await client(n3.port, { clientId: 'm3' }),
    ];
    for (const m of members) await m.c.subscribeAsync('$share/workers/jobs/+', { qos: 1 });
    await until('share routes', () => routeAt(n1, 2, '$share/workers/jobs/+') && routeAt(n1, 3, '$share/workers/jobs/+') && routeAt(n2, 3, '$share/workers/jobs/+') && routeAt(n3, 1, '$share/workers/jobs/+'));
    assert.equal(n2.server.broker.routes.count('$share/workers/jobs/+'), 2, 'two members on node 2: one route, counted twice');
    const pubs = [await client(n1.port, { clientId: 'jp1' }), await client(n3.port, { clientId: 'jp3' })];
    const N = 60;
    for (let i = 0; i < N; i++) await pubs[i % 2]!.c.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
    await until('every job delivered', () => members.reduce((n, m) => n + m.inbox.messages.length, 0) >= N);
    await sleep(300);
    const all = members.flatMap((m) => m.inbox.messages.map((x) => Number(x.payload.toString())));
    assert.equal(all.length, N, 'each message once in total');
    assert.deepEqual([...new Set(all)].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
    for (const [i, m] of members.entries()) assert.ok(m.inbox.messages.length > 0, `member ${i} got some`);
    for (const c of [...members, ...pubs]) await endClient(c.c);
    await until('share routes gone', () => !routeAt(n1, 2, '$share/workers/jobs/+') && !routeAt(n1, 3, '$share/workers/jobs/+'));
  });

  it('unsubscribe (and a session ending) stops forwarding', async () => {
    const s = await client(n2.port, { clientId: 'unsub' });
    await s.c.subscribeAsync('u/+', { qos: 1 });
    await until('route', () => routeAt(n1, 2, 'u/+'));
    const p = await client(n1.port, { clientId: 'unsub-pub' });
    await p.c.publishAsync('u/1', 'one', { qos: 1 });
    await s.inbox.waitFor(1);
    await s.c.unsubscribeAsync('u/+');
    await until('route withdrawn', () => !routeAt(n1, 2, 'u/+'));
    const before = await metricValue(n1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' });
    await p.c.publishAsync('u/2', 'two', { qos: 1 });
    await sleep(200);
    assert.equal(await metricValue(n1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' }), before, 'nothing forwarded to node 2');
    assert.equal(s.inbox.messages.length, 1);
    // A clean session that ends takes its routes with it.
    await s.c.subscribeAsync('u/+', { qos: 1 });
    await until('route back', () => routeAt(n1, 2, 'u/+'));
    await endClient(s.c);
    await until('route gone with the session', () => !routeAt(n1, 2, 'u/+'));
    await endClient(p.c);
  });

  it('large messages go in several frames, in order', async () => {
    const s = await client(n2.port, { clientId: 'big-sub' });
    await s.c.subscribeAsync('big/#', { qos: 1 });
    await until('route', () => routeAt(n1, 2, 'big/#'));
    const p = await client(n1.port, { clientId: 'big-pub' });
    const body = (i: number) => Buffer.alloc(3 * 1024 * 1024 + i, i);
    await Promise.all(Array.from({ length: 5 }, (_, i) => p.c.publishAsync(`big/${i}`, body(i), { qos: 1 })));
    const got = await s.inbox.waitFor(5, 10_000);
    assert.deepEqual(
      got.map((m) => m.topic),
      ['big/0', 'big/1', 'big/2', 'big/3', 'big/4'],
    );
    for (const [i, m] of got.entries()) assert.ok(m.payload.equals(body(i)), `payload ${i} intact`);
    await Promise.all([endClient(s.c), endClient(p.c)]);
  });

  it('wills and delayed publishes on node 1 reach subscribers on node 2', async () => {
    const s = await client(n2.port, { clientId: 'will-sub' });
    await s.c.subscribeAsync('last/#', { qos: 1 });
    await s.c.subscribeAsync('later/x', { qos: 1 });
    await until('routes', () => routeAt(n1, 2, 'last/#') && routeAt(n1, 2, 'later/x'));
    const dying = await client(n1.port, { clientId: 'dying', will: { topic: 'last/words', payload: Buffer.from('bye'), qos: 1, retain: false } });
    (dying.c as unknown as { stream: { destroy(): void } }).stream.destroy();
    const p = await client(n1.port, { clientId: 'delayer' });
    await p.c.publishAsync('$delayed/1/later/x', 'delayed', { qos: 1 });
    const got = await s.inbox.waitFor(2, 5000);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]).sort(), [
      ['last/words', 'bye'],
      ['later/x', 'delayed'],
    ]);
    await Promise.all([endClient(s.c), endClient(p.c)]);
  });

  it("QoS 1: the publisher's PUBACK waits until the peer has stored the message for a persistent session", async () => {
    // A fourth node whose session store takes 400 ms to make a message durable.
    const slow = new MemoryMqttStore();
    const append = slow.appendMessage.bind(slow);
    slow.appendMessage = (clientId: string, out: Outgoing) => {
      const p = append(clientId, out);
      return p.then(() => sleep(400)).then(() => undefined);
    };
    const n4 = await startNode(4, dir, { store: slow });
    try {
      await until('node 4 linked', () => n1.cluster.linked.includes(4) && n4.cluster.linked.length === 3);
      const s = await client(n4.port, { clientId: 'durable-sub', clean: false });
      await s.c.subscribeAsync('d/x', { qos: 1 });
      await until('route', () => routeAt(n1, 4, 'd/x'));
      const p = await client(n1.port, { clientId: 'durable-pub' });
      const t0 = Date.now();
      await p.c.publishAsync('d/x', 'stored', { qos: 1 });
      const waited = Date.now() - t0;
      assert.ok(waited >= 350, `PUBACK after ${waited} ms`);
      await s.inbox.waitFor(1);
      await Promise.all([endClient(s.c), endClient(p.c)]);
    } finally {
      await n4.stop();
      dir.set({ id: 4, grpcAddr: `127.0.0.1:${n4.grpcPort}`, alive: false });
    }
  });

  it('QoS 1/2 for the persistent sessions of a broker that is down is queued in its session log; the PUBACK waits for it', async () => {
    // Node 6 is a broker meta knows but holds down; node 5's store can queue in its log.
    const queued: Array<{ node: number; clientId: string; qos: number; topic: string; retain: boolean }> = [];
    const store = new MemoryMqttStore() as MemoryMqttStore & Required<Pick<MqttStore, 'sessionsOf' | 'sessionsVersion' | 'queueForNode'>>;
    const away: StoredSession[] = [
      { clientId: 'away-sub', expiryIntervalSec: 3600, connected: false, lastSeenMs: 0, nodeId: 6, subscriptions: [sub('away/#', 1), sub('$share/g/away/#', 2), sub('away/+', 2, { retainAsPublished: true })] },
      { clientId: 'away-pub', expiryIntervalSec: 3600, connected: false, lastSeenMs: 0, nodeId: 6, subscriptions: [sub('away/x', 1, { noLocal: true })] },
      { clientId: 'away-low', expiryIntervalSec: 3600, connected: false, lastSeenMs: 0, nodeId: 6, subscriptions: [sub('away/x', 0)] },
    ];
    store.sessionsOf = (node) => (node === 6 ? away : []);
    store.sessionsVersion = () => 1;
    store.queueForNode = async (node, clientId, out) => {
      await sleep(300);
      queued.push({ node, clientId, qos: out.qos, topic: out.msg.topic, retain: out.retain });
    };
    dir.set({ id: 6, grpcAddr: '127.0.0.1:1', alive: false });
    const n5 = await startNode(5, dir, { store });
    try {
      await until('node 5 linked to the live nodes, 6 down', () => n5.cluster.linked.length === 3 && n5.cluster.down.includes(6));
      const p = await client(n5.port, { clientId: 'away-pub', protocolVersion: 5 });
      // While meta holds node 6 alive, its sessions wait a moment for a link to it; none opens, so it goes to node 6's log.
      dir.set({ id: 6, grpcAddr: '127.0.0.1:1', alive: true });
      await until('6 alive but unlinked', () => n5.cluster.unlinked.includes(6));
      const w0 = Date.now();
      await p.c.publishAsync('away/x', 'zero', { qos: 1 });
      assert.ok(Date.now() - w0 >= 900, `the publish waited for the link (${Date.now() - w0} ms)`);
      assert.deepEqual(queued.map((q) => q.clientId), ['away-sub'], 'then queued in its log');
      queued.length = 0;
      dir.set({ id: 6, grpcAddr: '127.0.0.1:1', alive: false });
      await until('6 down', () => n5.cluster.down.includes(6));
      const t0 = Date.now();
      await p.c.publishAsync('away/x', 'one', { qos: 2, retain: true });
      assert.ok(Date.now() - t0 >= 250, 'the PUBACK waited for the queueing');
      // One copy per session at its highest matching QoS; not for the publisher itself (no local), the QoS 0
      // subscriber (nothing is queued at QoS 0) or the shared subscription (a live member serves it).
      assert.deepEqual(queued, [{ node: 6, clientId: 'away-sub', qos: 2, topic: 'away/x', retain: true }]);
      await p.c.publishAsync('away/y/z', 'two', { qos: 0 });
      await sleep(100);
      assert.equal(queued.length, 1, 'QoS 0 is not queued for an offline session');
      await endClient(p.c);
    } finally {
      await n5.stop();
      dir.set({ id: 5, grpcAddr: `127.0.0.1:${n5.grpcPort}`, alive: false });
      dir.set({ id: 6, grpcAddr: '127.0.0.1:1', alive: false });
    }
  });

  it('one connection per client id across the brokers: connecting at another broker closes the older connection', async () => {
    const first = await client(n1.port, { clientId: 'twin', protocolVersion: 5 });
    let reason: number | undefined;
    let firstClosed = false;
    first.c.on('disconnect', (p) => (reason = p.reasonCode));
    first.c.on('close', () => (firstClosed = true));
    await sleep(5); // a later connection time than the first
    const second = await client(n2.port, { clientId: 'twin', protocolVersion: 5 });
    let secondClosed = false;
    second.c.on('close', () => (secondClosed = true));
    await until('the older connection closed', () => firstClosed);
    assert.equal(reason, 0x8e, 'DISCONNECT Session taken over');
    await sleep(300);
    assert.equal(secondClosed, false, 'the newer connection stays');
    // And a third broker takes it from the second in turn.
    await sleep(5);
    const third = await client(n3.port, { clientId: 'twin', protocolVersion: 4 });
    await until('the connection at node 2 closed', () => secondClosed);
    assert.ok(third.c.connected);
    await endClient(third.c);
  });

  it('a peer the meta service marks not alive drops out of the table; when alive again it links and syncs', async () => {
    const s = await client(n3.port, { clientId: 'alive-sub' });
    await s.c.subscribeAsync('alive/#', { qos: 0 });
    await until('route', () => routeAt(n1, 3, 'alive/#') && routeAt(n2, 3, 'alive/#'));
    dir.set({ id: 3, grpcAddr: `127.0.0.1:${n3.grpcPort}`, alive: false });
    await until('node 3 dropped', () => !n1.cluster.remote.has(3) && !n2.cluster.remote.has(3) && !n1.cluster.linked.includes(3));
    assert.equal(await metricValue(n1, 'robust_mqtt_cluster_routes', { peer: '3' }), 0);
    dir.set({ id: 3, grpcAddr: `127.0.0.1:${n3.grpcPort}`, alive: true });
    await until('node 3 linked again', () => n1.cluster.linked.includes(3), 5000);
    // Linked means routable: a publish in between would otherwise miss node 3's sessions.
    assert.ok(routeAt(n1, 3, 'alive/#'), 'a peer counts as linked only once its route table arrived');
    await until('node 3 back with its routes (full sync)', () => routeAt(n1, 3, 'alive/#') && routeAt(n2, 3, 'alive/#'), 5000);
    const p = await client(n1.port, { clientId: 'alive-pub' });
    await p.c.publishAsync('alive/1', 'x', { qos: 1 });
    await s.inbox.waitFor(1);
    await Promise.all([endClient(s.c), endClient(p.c)]);
  });
});

describe('MQTT cluster: a session handed over follows its forwarding address', () => {
  const dir = new FakeDirectory();
  const nodes: Node[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    for (const n of nodes) await n.stop();
  });

  it('a broker asked for a session it passed on sends the caller to the broker that has it', async () => {
    for (const id of [1, 2, 3]) nodes.push(await startNode(id, dir));
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    await until('every pair linked', () => nodes.every((n) => n.cluster.linked.length === 2));
    // A persistent session with a queued message on node 1.
    const s = await client(n1.port, { clientId: 'hopper', clean: false });
    await s.c.subscribeAsync('hop/#', { qos: 1 });
    await endClient(s.c);
    const p = await client(n1.port, { clientId: 'hop-pub' });
    await p.c.publishAsync('hop/1', 'queued', { qos: 1 });
    // Node 2 takes it (its meta view was current).
    const first = await n2.cluster.takeSession(1, 'hopper');
    assert.deepEqual(first?.messages.map((m) => m.msg.payload.toString()), ['queued']);
    assert.equal(n1.server.broker.movedTo('hopper'), 2);
    // The client is now connected at node 2.
    const at2 = await client(n2.port, { clientId: 'hopper', clean: false });
    let closedAt2 = false;
    at2.c.once('close', () => (closedAt2 = true));
    // Node 3's meta view still names node 1: node 1 sends it on to node 2, which hands the session over.
    const second = await n3.cluster.takeSession(1, 'hopper');
    assert.ok(second !== undefined, 'the session was found one hop on');
    await until('the connection at node 2 closed', () => closedAt2);
    assert.equal(n2.server.broker.movedTo('hopper'), 3);
    // Nobody on the way holds an unknown session.
    assert.equal(await n3.cluster.takeSession(1, 'never-here'), undefined);
    await endClient(p.c);
  });
});

describe('MQTT cluster: a peer that never confirms', () => {
  const ClusterClient = serviceClient(loadProto('robust/broker/v1/cluster.proto'), 'robust.broker.v1.MqttCluster');

  it('a QoS 1 publisher is acknowledged after the bounded wait, and the failure is counted', async () => {
    const dir = new FakeDirectory();
    const n1 = await startNode(1, dir, { ackTimeoutMs: 300 });
    // Node 2: speaks the protocol, announces a route, takes messages and never acknowledges them.
    const fake = new grpc.Server();
    const received: WireMessage[] = [];
    fake.addService(ClusterClient.service, {
      Link: (call: grpc.ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>) => {
        call.on('data', (f: { body?: string; forward?: { messages: WireMessage[] } }) => {
          if (f.body === 'hello') {
            call.write({ hello: { cluster_name: 'test', node_id: 2, started_at_ms: Date.now() } });
            call.write({ sync: { routes: ['mute/#'] } });
          } else if (f.body === 'forward') received.push(...f.forward!.messages);
        });
        call.on('error', () => undefined);
      },
    });
    const port = await bind(fake);
    try {
      dir.set({ id: 2, grpcAddr: `127.0.0.1:${port}`, alive: true });
      await until('route from the mute peer', () => n1.cluster.remote.routesOf(2).includes('mute/#'));
      const p = await connect(n1.port, { clientId: 'mute-pub', protocolVersion: 5 });
      const t0 = Date.now();
      // Not confirmed by the peer within the bound: not acknowledged as stored (MQTT 5: an error reason code).
      await assert.rejects(p.publishAsync('mute/x', 'hello', { qos: 1 }), /131|Implementation specific/i);
      const waited = Date.now() - t0;
      assert.ok(waited >= 250 && waited < 2000, `negative PUBACK after ${waited} ms`);
      assert.equal(received.length, 1);
      assert.equal(received[0]!.topic, 'mute/x');
      assert.equal(received[0]!.route, true);
      assert.equal(await metricValue(n1, 'robust_mqtt_cluster_forward_failures_total', { peer: '2', reason: 'timeout' }), 1);
      // The peer's stream breaks: publishes go on without waiting (its routes are gone).
      fake.forceShutdown();
      await until('mute peer dropped', () => !n1.cluster.remote.has(2));
      const t1 = Date.now();
      await p.publishAsync('mute/y', 'again', { qos: 1 });
      assert.ok(Date.now() - t1 < 250);
      await endClient(p);
    } finally {
      fake.forceShutdown();
      await n1.stop();
    }
  });
});
