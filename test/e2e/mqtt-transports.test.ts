/**
 * MQTT over every transport of a real robust-server: TCP, WebSocket (/mqtt), TLS and
 * secure WebSocket with certificates from makeTestCerts, client-certificate
 * authentication (`[tls] verify_client = true`), and delivery across transports.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { issueCert, makeCa, makeTestCerts, type TestCerts } from '../support/certs.js';
import { Inbox, connect, endClient, sleep } from '../support/mqtt.js';
import { ServerProcess, freePort, removeDir, tempDir, writeTestConfig } from '../support/server.js';

interface Node {
  cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  server: ServerProcess;
  tcp: number;
  ws: number;
  tls: number;
  wss: number;
}

const servers: ServerProcess[] = [];
const dirs: string[] = [];
const clients = new Set<MqttClient>();

after(async () => {
  for (const c of clients) c.end(true);
  for (const s of servers) await s.kill();
  for (const d of dirs) removeDir(d);
});
afterEach(() => {
  for (const c of clients) c.end(true);
  clients.clear();
});

/**
 * A node with all four MQTT listeners. The ports were free a moment ago; if one was taken
 * meanwhile (or two picks collide), it tries again with new ones.
 */
async function startTlsNode(certs: TestCerts, verifyClient: boolean): Promise<Node> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartTlsNode(certs, verifyClient);
    } catch (err) {
      if (attempt >= 3 || !/also used by|address (already )?in use|EADDRINUSE/i.test(String(err))) throw err;
    }
  }
}

async function tryStartTlsNode(certs: TestCerts, verifyClient: boolean): Promise<Node> {
  const tls = await freePort();
  const wss = await freePort();
  const cfg = await writeTestConfig(
    `[tls]
cert = "${certs.serverCert}"
key = "${certs.serverKey}"
ca = "${certs.caCert}"
verify_client = ${verifyClient}
`,
    undefined,
    { mqtt: `tls_port = ${tls}\nwss_port = ${wss}` },
  );
  dirs.push(cfg.dir);
  if (new Set([tls, wss, cfg.ports.mqtt, cfg.ports.mqttWs, cfg.ports.http, cfg.ports.grpc]).size !== 6) throw new Error('EADDRINUSE: two port picks collided');
  const server = new ServerProcess(['start', cfg.file]);
  servers.push(server);
  await server.waitReady(cfg.ports.http);
  return { cfg, server, tcp: cfg.ports.mqtt!, ws: cfg.ports.mqttWs!, tls, wss };
}

/** Connects and subscribes; the client is closed after the test. */
async function subscriber(url: string, filter: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; inbox: Inbox }> {
  let inbox!: Inbox;
  const client = await connect(0, { protocolVersion: 5, ...opts }, url, (c) => (inbox = new Inbox(c)));
  clients.add(client);
  const granted = await client.subscribeAsync(filter, { qos: 1 });
  assert.equal(granted[0]!.qos, 1);
  return { client, inbox };
}

async function client(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await connect(0, { protocolVersion: 5, ...opts }, url);
  clients.add(c);
  return c;
}

/** Tries to connect; resolves with how it ended: CONNACK ('connected'), or the error / close before one. */
function tryConnect(url: string, opts: IClientOptions = {}, timeoutMs = 5000): Promise<{ connected: boolean; reason: string }> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: timeoutMs, protocolVersion: 4, ...opts });
    let settled = false;
    const finish = (connected: boolean, reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c.end(true);
      resolve({ connected, reason });
    };
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs + 1000);
    c.on('connect', () => finish(true, 'connack'));
    c.on('error', (err) => finish(false, `error: ${err.message}`));
    c.on('close', () => finish(false, 'closed'));
  });
}

/** Not connected, and refused (an error or a closed connection) rather than left hanging. */
function assertRefused(r: { connected: boolean; reason: string }, what: string): void {
  assert.equal(r.connected, false, `${what}: connected`);
  assert.notEqual(r.reason, 'timeout', `${what}: neither refused nor accepted in time`);
}

describe('MQTT transports of robust-server', () => {
  let certDir: string;
  let certs: TestCerts;
  let node: Node;
  let ca: Buffer;

  before(async () => {
    certDir = tempDir('robust-certs-');
    dirs.push(certDir);
    certs = await makeTestCerts(certDir);
    ca = readFileSync(certs.caCert);
    node = await startTlsNode(certs, false);
  });

  it('binds one listener per transport, on 127.0.0.1', () => {
    const lines = node.server.logLines().filter((l) => l['service'] === 'mqtt' && typeof l['transport'] === 'string');
    assert.deepEqual(lines.map((l) => [l['transport'], l['host'], l['port']]).sort(), [
      ['tcp', '127.0.0.1', node.tcp],
      ['tls', '127.0.0.1', node.tls],
      ['ws', '127.0.0.1', node.ws],
      ['wss', '127.0.0.1', node.wss],
    ].sort());
  });

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5'} over WebSocket (ws://…/mqtt): publish and receive on the same transport`, async () => {
      const url = `ws://127.0.0.1:${node.ws}/mqtt`;
      const { inbox } = await subscriber(url, `ws/v${version}/#`, { protocolVersion: version });
      const pub = await client(url, { protocolVersion: version });
      for (const p of ['a', 'b', 'c']) await pub.publishAsync(`ws/v${version}/t`, `${p}-${version}`, { qos: 1 });
      assert.deepEqual(
        (await inbox.waitFor(3)).map((m) => m.payload.toString()),
        ['a', 'b', 'c'].map((p) => `${p}-${version}`),
      );
    });
  }

  it('MQTT over TLS (mqtts://) trusting the test CA; the same without the CA fails verification', async () => {
    const url = `mqtts://127.0.0.1:${node.tls}`;
    const { client: sub, inbox } = await subscriber(url, 'tls/#', { ca });
    const sock = (sub as unknown as { stream: import('node:tls').TLSSocket }).stream;
    assert.equal(sock.encrypted, true);
    assert.equal(sock.getPeerCertificate().subject.CN, 'localhost');
    const pub = await client(url, { ca });
    await pub.publishAsync('tls/t', 'over-tls', { qos: 1 });
    assert.equal((await inbox.waitFor(1))[0]!.payload.toString(), 'over-tls');

    const untrusted = await tryConnect(url, {});
    assertRefused(untrusted, 'server certificate not trusted');
    assert.match(untrusted.reason, /self[- ]signed|unable to verify|certificate/i);
    // Plain MQTT on the TLS port is not accepted either.
    const plain = await tryConnect(`mqtt://127.0.0.1:${node.tls}`, {}, 1500);
    assert.equal(plain.connected, false, 'plain MQTT on the TLS port');
  });

  it('MQTT over secure WebSocket (wss://…/mqtt) trusting the test CA', async () => {
    const url = `wss://127.0.0.1:${node.wss}/mqtt`;
    const { inbox } = await subscriber(url, 'wss/#', { ca });
    const pub = await client(url, { ca });
    await pub.publishAsync('wss/t', 'over-wss', { qos: 1 });
    assert.equal((await inbox.waitFor(1))[0]!.payload.toString(), 'over-wss');
    const untrusted = await tryConnect(url, {});
    assertRefused(untrusted, 'server certificate not trusted');
    assert.match(untrusted.reason, /self[- ]signed|unable to verify|certificate/i);
  });

  it('a WebSocket upgrade on another path is refused (HTTP 404); mqtt.js cannot connect there', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: node.ws,
        path: '/not-mqtt',
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': Buffer.alloc(16, 1).toString('base64'), 'Sec-WebSocket-Protocol': 'mqtt' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        resolve(101);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 404);
    for (const path of ['/not-mqtt', '/', '/mqtt/extra']) {
      assertRefused(await tryConnect(`ws://127.0.0.1:${node.ws}${path}`), `path ${path}`);
    }
    // The right path still works after the refusals.
    assert.equal((await tryConnect(`ws://127.0.0.1:${node.ws}/mqtt`)).connected, true);
  });

  it('cross-transport delivery: a TCP publish reaches WS, TLS and WSS subscribers; a WSS publish reaches TCP', async () => {
    const subs = {
      tcp: await subscriber(`mqtt://127.0.0.1:${node.tcp}`, 'x/#', { protocolVersion: 4 }),
      ws: await subscriber(`ws://127.0.0.1:${node.ws}/mqtt`, 'x/#'),
      tls: await subscriber(`mqtts://127.0.0.1:${node.tls}`, 'x/#', { ca, protocolVersion: 4 }),
      wss: await subscriber(`wss://127.0.0.1:${node.wss}/mqtt`, 'x/#', { ca }),
    };
    const overTcp = await client(`mqtt://127.0.0.1:${node.tcp}`);
    const big = Buffer.alloc(200_000, 7); // several TCP segments, several WebSocket reads
    await overTcp.publishAsync('x/from-tcp', 'hello-everyone', { qos: 1 });
    await overTcp.publishAsync('x/big', big, { qos: 1 });
    const overWss = await client(`wss://127.0.0.1:${node.wss}/mqtt`, { ca, protocolVersion: 4 });
    await overWss.publishAsync('x/from-wss', 'hello-from-wss', { qos: 1 });
    for (const [name, s] of Object.entries(subs)) {
      const got = await s.inbox.waitFor(3);
      assert.deepEqual(
        got.map((m) => m.topic),
        ['x/from-tcp', 'x/big', 'x/from-wss'],
        name,
      );
      assert.equal(got[0]!.payload.toString(), 'hello-everyone');
      assert.ok(got[1]!.payload.equals(big), `${name}: the 200 kB payload arrived intact`);
      assert.equal(got[2]!.payload.toString(), 'hello-from-wss');
    }
  });

  it('a retained message set over WSS is served to a later TLS subscriber; a persistent session moves from TCP to WS', async () => {
    const pub = await client(`wss://127.0.0.1:${node.wss}/mqtt`, { ca });
    await pub.publishAsync('r/state', 'retained-over-wss', { qos: 1, retain: true });
    const { inbox } = await subscriber(`mqtts://127.0.0.1:${node.tls}`, 'r/#', { ca });
    const [m] = await inbox.waitFor(1);
    assert.equal(m!.payload.toString(), 'retained-over-wss');
    assert.equal(m!.packet.retain, true);
    await pub.publishAsync('r/state', '', { qos: 1, retain: true });

    const sess: IClientOptions = { protocolVersion: 5, clean: false, clientId: 'roaming', properties: { sessionExpiryInterval: 600 } };
    const first = await subscriber(`mqtt://127.0.0.1:${node.tcp}`, 'roam/#', sess);
    await endClient(first.client);
    await pub.publishAsync('roam/1', 'queued-while-away', { qos: 1 });
    let inbox2!: Inbox;
    let present = false;
    const second = await connect(0, sess, `ws://127.0.0.1:${node.ws}/mqtt`, (c) => {
      inbox2 = new Inbox(c);
      c.once('connect', (ack) => (present = ack.sessionPresent));
    });
    clients.add(second);
    assert.equal(present, true);
    assert.equal((await inbox2.waitFor(1))[0]!.payload.toString(), 'queued-while-away');
  });

  it('mosquitto_sub over TLS (--cafile) receives what mqtt.js publishes over WebSocket', { skip: spawnSync('mosquitto_sub', ['--help'], { stdio: 'ignore' }).error ? 'mosquitto_sub is not installed' : false }, async () => {
    const child = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(node.tls), '--cafile', certs.caCert, '-t', 'mosq/tls', '-q', '1', '-C', '1', '-W', '10', '-V', 'mqttv311'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      const pub = await client(`ws://127.0.0.1:${node.ws}/mqtt`);
      // mosquitto_sub gives no sign of its SUBACK without -d; publish until it has one message.
      let code: number | null | undefined;
      void exited.then((c) => (code = c));
      for (let i = 0; i < 50 && code === undefined; i++) {
        await pub.publishAsync('mosq/tls', 'to-mosquitto', { qos: 1 });
        await sleep(100);
      }
      assert.equal(await exited, 0, err);
      assert.equal(out, 'to-mosquitto\n');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

describe('MQTT client-certificate authentication (verify_client = true)', () => {
  let certDir: string;
  let certs: TestCerts;
  let node: Node;
  let ca: Buffer;

  before(async () => {
    certDir = tempDir('robust-certs-');
    dirs.push(certDir);
    certs = await makeTestCerts(certDir);
    ca = readFileSync(certs.caCert);
    node = await startTlsNode(certs, true);
  });

  it('TLS: a client without a certificate is refused; with the CA-signed client certificate it connects and works', async () => {
    const url = `mqtts://127.0.0.1:${node.tls}`;
    assertRefused(await tryConnect(url, { ca }), 'no client certificate');

    const opts = { ca, cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
    const { inbox } = await subscriber(url, 'mtls/#', opts);
    const pub = await client(url, opts);
    await pub.publishAsync('mtls/t', 'mutual-tls', { qos: 1 });
    assert.equal((await inbox.waitFor(1))[0]!.payload.toString(), 'mutual-tls');
  });

  it('secure WebSocket: the same rules', async () => {
    const url = `wss://127.0.0.1:${node.wss}/mqtt`;
    assertRefused(await tryConnect(url, { ca }), 'no client certificate');
    const ok = await tryConnect(url, { ca, cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });
    assert.equal(ok.connected, true, ok.reason);
  });

  it('a client certificate from another CA is refused', async () => {
    const rogueCa = await makeCa(certDir, { name: 'rogue-ca', commonName: 'Rogue CA' });
    const rogue = await issueCert(certDir, rogueCa, { name: 'rogue-client', commonName: 'test-client', usage: 'client' });
    for (const url of [`mqtts://127.0.0.1:${node.tls}`, `wss://127.0.0.1:${node.wss}/mqtt`]) {
      assertRefused(await tryConnect(url, { ca, cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) }), `${url} with a foreign client certificate`);
    }
    // A second certificate from the right CA is fine.
    const other = await issueCert(certDir, { caCert: certs.caCert, caKey: certs.caKey }, { name: 'client2', commonName: 'alice', usage: 'client' });
    const ok = await tryConnect(`mqtts://127.0.0.1:${node.tls}`, { ca, cert: readFileSync(other.cert), key: readFileSync(other.key) });
    assert.equal(ok.connected, true, ok.reason);
  });

  it('mosquitto_pub over TLS: refused without --cert/--key, accepted with them', { skip: spawnSync('mosquitto_pub', ['--help'], { stdio: 'ignore' }).error ? 'mosquitto_pub is not installed' : false }, async () => {
    const { inbox } = await subscriber(`mqtts://127.0.0.1:${node.tls}`, 'mosq/mtls', { ca, cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });
    const run = (extra: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(node.tls), '--cafile', certs.caCert, '-t', 'mosq/mtls', '-q', '1', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.on('exit', (code) => {
          clearTimeout(t);
          resolve({ code, stderr });
        });
      });
    const refused = await run(['-m', 'no-cert']);
    assert.notEqual(refused.code, 0, 'refused without a client certificate');
    const accepted = await run(['--cert', certs.clientCert, '--key', certs.clientKey, '-m', 'with-cert']);
    assert.equal(accepted.code, 0, accepted.stderr);
    await inbox.waitFor(1);
    await sleep(200);
    assert.deepEqual(
      inbox.messages.map((m) => m.payload.toString()),
      ['with-cert'],
    );
  });
});
