/**
 * Stateless brokers: a real three-node cluster (meta + broker on each, file
 * storage, 127.0.0.1, free ports) where an MQTT publish on any node reaches the
 * matching subscribers on every node, checked with mqtt.js and, where
 * installed, mosquitto_pub/mosquitto_sub. Covers QoS 0/1/2 exactly once,
 * wildcards, a shared subscription spread over two nodes, unsubscribe, the
 * operator surface (admin API, robust-ctl, metrics), and kill -9 of a node.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { MqttRoutesView } from '../../src/admin/mqtt-routes.js';
import { Inbox, connect, endClient, sleep } from '../support/mqtt.js';
import { BIN, ServerProcess, freePort, removeDir, run, tempDir, until } from '../support/server.js';

const HAVE_MOSQUITTO = ['mosquitto_pub', 'mosquitto_sub', 'stdbuf'].every((cmd) => spawnSync(cmd, ['--help'], { stdio: 'ignore' }).error === undefined);
const IDS = [1, 2, 3] as const;

interface NodePorts {
  grpc: number;
  http: number;
  mqtt: number;
  journal: number;
}

const dir = tempDir('robust-mqtt-cluster-');
const servers = new Map<number, ServerProcess>();
const clients = new Set<MqttClient>();
let ports: Record<number, NodePorts>;

after(async () => {
  for (const c of clients) c.end(true);
  for (const s of servers.values()) await s.kill();
  removeDir(dir);
});

function writeConfigs(): Record<number, string> {
  const metaAddrs = IDS.map((id) => `${id} = "127.0.0.1:${ports[id]!.grpc}"`).join(', ');
  const files: Record<number, string> = {};
  for (const id of IDS) {
    const p = ports[id]!;
    const file = join(dir, `node${id}.toml`);
    writeFileSync(
      file,
      `cluster_name = "mqtt-cluster-e2e"
node_id = ${id}
roles = ["meta", "broker"]
advertised_host = "127.0.0.1"
bind_host = "127.0.0.1"
grpc_port = ${p.grpc}
http_port = ${p.http}
meta_addrs = { ${metaAddrs} }
data_dir = "${join(dir, `data${id}`)}"

[log]
format = "json"

[storage]
default_engine = "file"

[journal]
tcp_port = ${p.journal}

[mqtt]
tcp_port = ${p.mqtt}
tls_port = 0
ws_port = 0
wss_port = 0
sys_interval_ms = 0

[kafka]
tcp_port = 0

[rocketmq]
grpc_port = 0
`,
    );
    files[id] = file;
  }
  return files;
}

/** Starts the three nodes together (meta needs a quorum); new ports when one was taken meanwhile. */
async function startCluster(): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    ports = {};
    for (const id of IDS) ports[id] = { grpc: await freePort(), http: await freePort(), mqtt: await freePort(), journal: await freePort() };
    const files = writeConfigs();
    for (const id of IDS) servers.set(id, new ServerProcess(['start', files[id]!]));
    const started = await Promise.allSettled(IDS.map((id) => servers.get(id)!.waitReady(ports[id]!.http, 30_000)));
    const failed = started.find((s) => s.status === 'rejected');
    if (!failed) return;
    for (const s of servers.values()) await s.kill();
    servers.clear();
    if (attempt >= 3 || !/address (already )?in use|EADDRINUSE|also used by/i.test(String(failed.reason))) throw failed.reason;
  }
}

async function routes(id: number): Promise<MqttRoutesView> {
  const res = await fetch(`http://127.0.0.1:${ports[id]!.http}/api/v1/mqtt/routes`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as MqttRoutesView;
}

/** Waits until node `at` knows `filter` as a route of node `of` (or, with present = false, no longer). */
async function routeKnown(at: number, of: number, filter: string, present = true): Promise<void> {
  await until(`node ${at} ${present ? 'knows' : 'forgot'} route ${filter} of node ${of}`, async () => {
    const n = (await routes(at)).nodes.find((x) => x.node_id === of);
    const has = n?.routes.some((r) => r.filter === filter) ?? false;
    return has === present ? true : undefined;
  });
}

async function metric(id: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ports[id]!.http}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function mqttClient(node: number, opts: Parameters<typeof connect>[1] = {}): Promise<{ c: MqttClient; inbox: Inbox }> {
  let inbox!: Inbox;
  const c = await connect(ports[node]!.mqtt, { connectTimeout: 10_000, ...opts }, undefined, (cl) => {
    inbox = new Inbox(cl);
    cl.on('error', () => undefined); // a killed node's clients see their socket reset
  });
  clients.add(c);
  return { c, inbox };
}

describe('MQTT across a three-node cluster', () => {
  before(async () => {
    await startCluster();
    // Every broker linked with the two others.
    for (const id of IDS) {
      await until(`node ${id} linked with its peers`, async () => {
        const v = await routes(id);
        const peers = v.nodes.filter((n) => !n.local && n.connected).map((n) => n.node_id);
        return peers.length === 2 ? peers : undefined;
      }, 20_000);
    }
  });

  it('QoS 0, 1 and 2 published on node 1 reach subscribers on nodes 2 and 3 exactly once', async () => {
    const s2 = await mqttClient(2, { clientId: 'sub-2', protocolVersion: 5 });
    const s3 = await mqttClient(3, { clientId: 'sub-3', protocolVersion: 4 });
    await s2.c.subscribeAsync('plant/line1/temp', { qos: 2 });
    await s3.c.subscribeAsync('plant/line1/temp', { qos: 2 });
    await routeKnown(1, 2, 'plant/line1/temp');
    await routeKnown(1, 3, 'plant/line1/temp');
    const pub = await mqttClient(1, { clientId: 'pub-1', protocolVersion: 5 });
    for (const qos of [0, 1, 2] as const) await pub.c.publishAsync('plant/line1/temp', `t${qos}`, { qos, properties: { userProperties: { unit: 'C' } } });
    for (const s of [s2, s3]) await s.inbox.waitFor(3, 10_000);
    await sleep(500); // a duplicate would have arrived by now
    for (const [name, s] of [
      ['node 2', s2],
      ['node 3', s3],
    ] as const) {
      assert.deepEqual(
        s.inbox.messages.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
        [
          ['plant/line1/temp', 't0', 0],
          ['plant/line1/temp', 't1', 1],
          ['plant/line1/temp', 't2', 2],
        ],
        `${name}: each message once, at its QoS`,
      );
    }
    assert.deepEqual({ ...s2.inbox.messages[1]!.packet.properties?.userProperties }, { unit: 'C' }, 'MQTT 5 user properties travel');
    assert.ok((await metric(1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' })) >= 3);
    assert.ok((await metric(1, 'robust_mqtt_cluster_forwarded_total', { peer: '3' })) >= 3);
    await Promise.all([s2, s3, pub].map((x) => endClient(x.c)));
  });

  it('mosquitto_pub on node 1, mosquitto_sub on node 3 (QoS 2, wildcard)', { skip: HAVE_MOSQUITTO ? false : 'mosquitto clients not installed' }, async () => {
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(ports[3]!.mqtt), '-V', 'mqttv5', '-q', '2', '-i', 'mosq-sub-3', '-t', 'mosq/+/x', '-F', 'MSG|%t|%q|%p', '-C', '3', '-W', '20'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => sub.on('exit', (code) => res(code)));
    try {
      await routeKnown(1, 3, 'mosq/+/x');
      for (let i = 0; i < 3; i++) {
        const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(ports[1]!.mqtt), '-V', 'mqttv5', '-q', '2', '-t', `mosq/${i}/x`, '-m', `m${i}`], { timeoutMs: 10_000 });
        assert.equal(r.code, 0, r.stderr);
      }
      assert.equal(await exited, 0, `mosquitto_sub got 3 messages: ${out}`);
      assert.deepEqual(
        out.trim().split('\n').filter((l) => l.startsWith('MSG|')),
        ['MSG|mosq/0/x|2|m0', 'MSG|mosq/1/x|2|m1', 'MSG|mosq/2/x|2|m2'],
      );
    } finally {
      if (sub.exitCode === null) sub.kill('SIGKILL');
    }
  });

  it('a wildcard subscription on node 2 gets publishes made on nodes 1 and 3', async () => {
    const s = await mqttClient(2, { clientId: 'wild-2' });
    await s.c.subscribeAsync('fleet/+/gps/#', { qos: 1 });
    await routeKnown(1, 2, 'fleet/+/gps/#');
    await routeKnown(3, 2, 'fleet/+/gps/#');
    const p1 = await mqttClient(1, { clientId: 'wild-pub-1' });
    const p3 = await mqttClient(3, { clientId: 'wild-pub-3' });
    await p1.c.publishAsync('fleet/truck7/gps', 'a', { qos: 1 });
    await p3.c.publishAsync('fleet/truck9/gps/fix', 'b', { qos: 1 });
    await p1.c.publishAsync('fleet/truck7/speed', 'no', { qos: 1 });
    await s.inbox.waitFor(2, 10_000);
    await sleep(300);
    assert.deepEqual(s.inbox.messages.map((m) => [m.topic, m.payload.toString()]).sort(), [
      ['fleet/truck7/gps', 'a'],
      ['fleet/truck9/gps/fix', 'b'],
    ]);
    await Promise.all([s, p1, p3].map((x) => endClient(x.c)));
  });

  it('a shared subscription with members on nodes 2 and 3 receives each message once in total', async () => {
    const members = [await mqttClient(2, { clientId: 'worker-2' }), await mqttClient(3, { clientId: 'worker-3' })];
    for (const m of members) await m.c.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    await routeKnown(1, 2, '$share/workers/jobs/#');
    await routeKnown(1, 3, '$share/workers/jobs/#');
    const pub = await mqttClient(1, { clientId: 'job-pub' });
    const N = 40;
    for (let i = 0; i < N; i++) await pub.c.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
    await until('every job delivered', async () => (members.reduce((n, m) => n + m.inbox.messages.length, 0) >= N ? true : undefined), 15_000);
    await sleep(500);
    const got = members.flatMap((m) => m.inbox.messages.map((x) => Number(x.payload.toString())));
    assert.equal(got.length, N, 'no message twice');
    assert.deepEqual([...new Set(got)].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i), 'none lost');
    assert.ok(members.every((m) => m.inbox.messages.length > 0), `spread over both nodes: ${members.map((m) => m.inbox.messages.length).join(' / ')}`);
    await Promise.all([...members, pub].map((x) => endClient(x.c)));
  });

  it('unsubscribe stops forwarding; the route table shows in the admin API and robust-ctl', async () => {
    const s = await mqttClient(2, { clientId: 'unsub-2' });
    await s.c.subscribeAsync('alerts/#', { qos: 1 });
    await routeKnown(1, 2, 'alerts/#');

    const table = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ports[1]!.http}`, 'mqtt', 'routes']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NODE\s+LINK\s+FILTER\s+SUBSCRIPTIONS\n/);
    assert.match(table.stdout, /\n2\s+linked\s+alerts\/#\s+-\n/);
    const asJson = await run(BIN('robust-ctl'), ['--server', `127.0.0.1:${ports[2]!.http}`, '-o', 'json', 'mqtt', 'routes']);
    const view = JSON.parse(asJson.stdout) as MqttRoutesView;
    assert.deepEqual(view.nodes.find((n) => n.local)!.routes.find((r) => r.filter === 'alerts/#'), { filter: 'alerts/#', subscriptions: 1 });
    assert.ok((await metric(1, 'robust_mqtt_cluster_routes', { peer: '2' })) >= 1);

    const pub = await mqttClient(1, { clientId: 'alert-pub' });
    await pub.c.publishAsync('alerts/fire', 'one', { qos: 1 });
    await s.inbox.waitFor(1, 10_000);
    await s.c.unsubscribeAsync('alerts/#');
    await routeKnown(1, 2, 'alerts/#', false);
    const before = await metric(1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' });
    await pub.c.publishAsync('alerts/flood', 'two', { qos: 1 });
    await sleep(500);
    assert.equal(s.inbox.messages.length, 1, 'nothing after unsubscribe');
    assert.equal(await metric(1, 'robust_mqtt_cluster_forwarded_total', { peer: '2' }), before, 'and nothing was forwarded to node 2');
    await Promise.all([s, pub].map((x) => endClient(x.c)));
  });

  it('a will published on node 1 reaches a subscriber on node 2', async () => {
    const s = await mqttClient(2, { clientId: 'will-watch' });
    await s.c.subscribeAsync('status/+', { qos: 1 });
    await routeKnown(1, 2, 'status/+');
    const dying = await mqttClient(1, { clientId: 'device-9', will: { topic: 'status/device-9', payload: Buffer.from('offline'), qos: 1, retain: false } });
    (dying.c as unknown as { stream: { destroy(): void } }).stream.destroy();
    const [m] = await s.inbox.waitFor(1, 10_000);
    assert.deepEqual([m!.topic, m!.payload.toString()], ['status/device-9', 'offline']);
    await endClient(s.c);
  });

  it('after kill -9 of node 3, publishes on node 1 still reach node 2 and node 1 does not hang', async () => {
    const s2 = await mqttClient(2, { clientId: 'survivor-2' });
    const s3 = await mqttClient(3, { clientId: 'victim-3' });
    await s2.c.subscribeAsync('after/kill', { qos: 1 });
    await s3.c.subscribeAsync('after/kill', { qos: 1 });
    await routeKnown(1, 2, 'after/kill');
    await routeKnown(1, 3, 'after/kill');
    const pub = await mqttClient(1, { clientId: 'kill-pub' });
    await pub.c.publishAsync('after/kill', 'before', { qos: 1 });
    await s3.inbox.waitFor(1, 10_000);

    const victim = servers.get(3)!;
    process.kill(victim.pid, 'SIGKILL');
    assert.equal((await victim.waitExit()).signal, 'SIGKILL');
    servers.delete(3);

    // Right away (node 3 may still be "alive" in meta for a few seconds): every PUBACK comes promptly.
    const N = 20;
    for (let i = 0; i < N; i++) {
      const t0 = Date.now();
      await pub.c.publishAsync('after/kill', `m${i}`, { qos: 1 });
      assert.ok(Date.now() - t0 < 2_500, `PUBACK ${i} took ${Date.now() - t0} ms`);
    }
    await s2.inbox.waitFor(1 + N, 10_000);
    assert.deepEqual(
      s2.inbox.messages.map((m) => m.payload.toString()),
      ['before', ...Array.from({ length: N }, (_, i) => `m${i}`)],
    );
    // Node 3 drops out of node 1's table, and node 1 and 2 stay linked.
    await until('node 3 gone from node 1', async () => {
      const n3 = (await routes(1)).nodes.find((n) => n.node_id === 3);
      return n3 === undefined || (!n3.connected && n3.routes.length === 0) ? true : undefined;
    });
    const n2 = (await routes(1)).nodes.find((n) => n.node_id === 2);
    assert.equal(n2?.connected, true);
    await Promise.all([s2, pub].map((x) => endClient(x.c)));
    s3.c.end(true);
  });
});
