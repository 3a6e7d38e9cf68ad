import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { ListenError } from '../../../src/common/errors.js';
import {
  ListenerConfigError,
  startListener,
  type ClientTransport,
  type ListenerOptions,
  type RunningListener,
  type TransportKind,
} from '../../../src/broker/network/listener.js';
import { WebSocketDuplex } from '../../../src/broker/network/ws-stream.js';
import { issueCert, makeCa, makeTestCerts, type TestCerts } from '../../support/certs.js';

const HOST = '127.0.0.1';
const KINDS: TransportKind[] = ['tcp', 'tls', 'ws', 'wss'];

let dir: string;
let certs: TestCerts;
let rogue: { cert: string; key: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'robust-net-test-'));
  certs = await makeTestCerts(dir);
  const rogueCa = await makeCa(dir, { name: 'rogue-ca', commonName: 'Rogue CA' });
  rogue = await issueCert(dir, rogueCa, { name: 'rogue-client', commonName: 'test-client', usage: 'client' });
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

/** onConnection that queues transports; next() waits for the following one. */
function acceptQueue(): { onConnection: (t: ClientTransport) => void; next: () => Promise<ClientTransport>; count: () => number } {
  const ready: ClientTransport[] = [];
  const waiting: Array<(t: ClientTransport) => void> = [];
  let count = 0;
  return {
    onConnection: (t) => {
      count++;
      const w = waiting.shift();
      if (w) w(t);
      else ready.push(t);
    },
    next: () => {
      const t = ready.shift();
      if (t) return Promise.resolve(t);
      return new Promise((resolve) => waiting.push(resolve));
    },
    count: () => count,
  };
}

function serverTls(verifyClient = false): ListenerOptions['tls'] {
  return { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, verifyClient };
}

async function listen(kind: TransportKind, extra: Partial<ListenerOptions> = {}): Promise<{ l: RunningListener; q: ReturnType<typeof acceptQueue>; errors: Error[] }> {
  const q = acceptQueue();
  const errors: Error[] = [];
  const l = await startListener({
    kind,
    host: HOST,
    port: 0,
    ...(kind === 'tls' || kind === 'wss' ? { tls: serverTls() } : {}),
    onConnection: q.onConnection,
    onError: (e) => errors.push(e),
    ...extra,
  });
  return { l, q, errors };
}

interface ClientOpts {
  path?: string;
  protocols?: string | string[];
  withCert?: boolean | { cert: string; key: string };
  tlsExtra?: ConnectionOptions;
}

/** One client connection of any kind, seen as a byte pipe. */
interface TestClient {
  localPort: number;
  protocol?: string;
  write(b: Buffer): void;
  /** Resolves with the first n bytes received (in total, since connect). */
  readBytes(n: number): Promise<Buffer>;
  end(): void;
  destroy(): void;
  /** Resolves when the connection is fully closed; for ws with the close code. */
  closed: Promise<number | undefined>;
  ws?: WebSocket;
  socket?: Socket;
  /** The TCP socket (under TLS / WebSocket for those kinds). */
  raw: Socket;
}

function byteCollector(): { add(b: Buffer): void; readBytes(n: number): Promise<Buffer> } {
  const chunks: Buffer[] = [];
  let total = 0;
  let waiter: { n: number; resolve: (b: Buffer) => void } | undefined;
  const check = (): void => {
    if (waiter && total >= waiter.n) {
      const all = Buffer.concat(chunks, total);
      const w = waiter;
      waiter = undefined;
      w.resolve(all.subarray(0, w.n));
    }
  };
  return {
    add(b) {
      chunks.push(b);
      total += b.length;
      check();
    },
    readBytes(n) {
      return new Promise((resolve) => {
        waiter = { n, resolve };
        check();
      });
    },
  };
}

function clientCertOpts(withCert: ClientOpts['withCert']): { cert?: Buffer; key?: Buffer } {
  if (!withCert) return {};
  const files = withCert === true ? { cert: certs.clientCert, key: certs.clientKey } : withCert;
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}

async function connectClient(kind: TransportKind, port: number, o: ClientOpts = {}): Promise<TestClient> {
  const collector = byteCollector();
  // The TCP socket under everything, so tests can see its local port or reset it.
  const raw = netConnect({ host: HOST, port });
  raw.on('error', () => {});
  const tlsOpts = (): ConnectionOptions => ({ socket: raw, host: HOST, ca: readFileSync(certs.caCert), ...clientCertOpts(o.withCert), ...o.tlsExtra });
  const rawConnected = once(raw, 'connect').catch(() => undefined);
  if (kind === 'tcp' || kind === 'tls') {
    const socket: Socket = kind === 'tcp' ? raw : tlsConnect(tlsOpts());
    socket.on('data', (b: Buffer) => collector.add(b));
    socket.on('error', () => {});
    const closed = new Promise<undefined>((resolve) => socket.once('close', () => resolve(undefined)));
    await new Promise<void>((resolve, reject) => {
      socket.once(kind === 'tcp' ? 'connect' : 'secureConnect', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before connect')));
    });
    return {
      localPort: raw.localPort!,
      write: (b) => socket.write(b),
      readBytes: collector.readBytes,
      end: () => socket.end(),
      destroy: () => socket.destroy(),
      closed,
      socket,
      raw,
    };
  }
  const scheme = kind === 'wss' ? 'wss' : 'ws';
  const wsOpts: ClientOptions = { createConnection: () => (kind === 'wss' ? tlsConnect(tlsOpts()) : raw) };
  const ws = new WebSocket(`${scheme}://${HOST}:${port}${o.path ?? '/mqtt'}`, o.protocols ?? 'mqtt', wsOpts);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, true);
    collector.add(data);
  });
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before open')));
  });
  await rawConnected;
  return {
    localPort: raw.localPort!,
    protocol: ws.protocol,
    write: (b) => ws.send(b, { binary: true }),
    readBytes: collector.readBytes,
    end: () => ws.close(1000),
    destroy: () => ws.terminate(),
    closed,
    ws,
    raw,
  };
}

/** Waits until the listener's open-connection count reaches n. */
async function waitConnections(l: RunningListener, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (l.connections() !== n) {
    if (Date.now() > deadline) assert.fail(`connections() stayed ${l.connections()}, expected ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function streamClosed(s: Duplex): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise((resolve) => s.once('close', () => resolve()));
}

// ---------------------------------------------------------------- every kind

for (const kind of KINDS) {
  test(`${kind}: echo both ways, remote address, client closes`, { timeout: 15_000 }, async () => {
    const { l, q } = await listen(kind);
    try {
      assert.equal(l.kind, kind);
      assert.equal(l.host, HOST);
      assert.ok(l.port > 0);
      const c = await connectClient(kind, l.port);
      const t = await q.next();
      assert.equal(t.kind, kind);
      assert.equal(t.remoteAddress, '127.0.0.1');
      assert.equal(t.remotePort, c.localPort);
      assert.equal(t.clientCert, undefined);
      if (kind === 'ws' || kind === 'wss') {
        assert.equal(c.protocol, 'mqtt');
        assert.equal(t.webSocketProtocol, 'mqtt');
        assert.ok(t.stream instanceof WebSocketDuplex);
      } else {
        assert.equal(t.webSocketProtocol, undefined);
      }
      t.stream.on('error', () => {});
      t.stream.pipe(t.stream); // echo

      // small messages, then a large one in pieces
      const small = Buffer.from([0x10, 0x00, 0xc0, 0x00]);
      c.write(small.subarray(0, 1));
      c.write(small.subarray(1));
      const big = randomBytes(4 * 1024 * 1024 + 7);
      for (let off = 0; off < big.length; off += 100_000) c.write(big.subarray(off, off + 100_000));
      const got = await c.readBytes(small.length + big.length);
      assert.deepEqual(got.subarray(0, small.length), small);
      assert.ok(got.subarray(small.length).equals(big), 'echoed bytes differ');
      assert.equal(l.connections(), 1);

      const serverEnded = once(t.stream, 'end');
      c.end();
      await serverEnded;
      await streamClosed(t.stream);
      await c.closed;
      await waitConnections(l, 0);
    } finally {
      await l.close();
    }
  });

  test(`${kind}: server destroys the stream -> client closed`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind);
    try {
      const c = await connectClient(kind, l.port);
      const t = await q.next();
      t.stream.write(Buffer.from('hi'));
      assert.deepEqual(await c.readBytes(2), Buffer.from('hi'));
      t.stream.destroy();
      await c.closed;
      await waitConnections(l, 0);
    } finally {
      await l.close();
    }
  });

  test(`${kind}: server ends the stream gracefully -> client closed after the data`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind);
    try {
      const c = await connectClient(kind, l.port);
      const t = await q.next();
      t.stream.on('error', () => {});
      t.stream.resume();
      if (c.socket) c.socket.on('end', () => c.socket!.end());
      t.stream.end(Buffer.from('bye'));
      assert.deepEqual(await c.readBytes(3), Buffer.from('bye'));
      const code = await c.closed;
      if (kind === 'ws' || kind === 'wss') assert.equal(code, 1000);
      await streamClosed(t.stream);
      await waitConnections(l, 0);
    } finally {
      await l.close();
    }
  });

  test(`${kind}: maxConnections enforced and counted`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind, { maxConnections: 2 });
    try {
      const a = await connectClient(kind, l.port);
      const b = await connectClient(kind, l.port);
      await q.next();
      await q.next();
      assert.equal(l.connections(), 2);
      // tcp: the kernel completes the handshake, then the server closes the socket at once;
      // tls/ws/wss: the client's handshake fails
      await connectClient(kind, l.port).then(
        (c) => c.closed,
        () => undefined,
      );
      assert.equal(l.rejected(), 1);
      assert.equal(l.connections(), 2);
      assert.equal(q.count(), 2);
      a.destroy();
      await waitConnections(l, 1);
      const c = await connectClient(kind, l.port);
      await q.next();
      assert.equal(l.rejected(), 1);
      b.destroy();
      c.destroy();
    } finally {
      await l.close();
    }
  });

  test(`${kind}: close() is idempotent, destroys open connections and stops accepting`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind);
    const c = await connectClient(kind, l.port);
    const t = await q.next();
    const p1 = l.close();
    const p2 = l.close();
    assert.equal(p1, p2);
    await p1;
    await l.close();
    await c.closed;
    await streamClosed(t.stream);
    assert.equal(l.connections(), 0);
    await assert.rejects(connectClient(kind, l.port), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
  });

  test(`${kind}: port in use -> ListenError naming host:port and kind`, async () => {
    const { l } = await listen('tcp');
    try {
      await assert.rejects(listen(kind, { port: l.port }), (err: Error) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.code, 'address_in_use');
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${l.port}`));
        assert.match(err.message, new RegExp(`mqtt ${kind}`));
        return true;
      });
    } finally {
      await l.close();
    }
  });

  test(`${kind}: a client resetting its connection does not crash the process`, { timeout: 10_000 }, async () => {
    const q = acceptQueue();
    // no onError on purpose
    const l = await startListener({ kind, host: HOST, port: 0, tls: serverTls(), onConnection: q.onConnection });
    try {
      const c = await connectClient(kind, l.port);
      const t = await q.next();
      t.stream.write(Buffer.alloc(1024));
      c.raw.resetAndDestroy();
      await streamClosed(t.stream);
      // writing to the dead stream must not crash either
      t.stream.write(Buffer.alloc(10), () => {});
      await waitConnections(l, 0);
    } finally {
      await l.close();
    }
  });
}

// ---------------------------------------------------------------- TLS specifics

for (const kind of ['tls', 'wss'] as const) {
  test(`${kind}: verifyClient refuses a client without a certificate`, { timeout: 10_000 }, async () => {
    const { l, q, errors } = await listen(kind, { tls: serverTls(true) });
    try {
      const outcome = await connectClient(kind, l.port).then(
        async (c) => {
          // TLS 1.3: the client may finish its side before the server's verdict arrives
          await c.closed;
          return 'closed';
        },
        () => 'refused',
      );
      assert.ok(outcome === 'refused' || outcome === 'closed');
      await waitConnections(l, 0);
      assert.equal(q.count(), 0);
      assert.ok(errors.length >= 1, 'the handshake failure is reported to onError');
    } finally {
      await l.close();
    }
  });

  test(`${kind}: verifyClient refuses a certificate from another CA`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind, { tls: serverTls(true) });
    try {
      await connectClient(kind, l.port, { withCert: rogue }).then(
        (c) => c.closed,
        () => undefined,
      );
      await waitConnections(l, 0);
      assert.equal(q.count(), 0);
    } finally {
      await l.close();
    }
  });

  test(`${kind}: verifyClient accepts a CA-signed client certificate and exposes its subject`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind, { tls: serverTls(true) });
    try {
      const c = await connectClient(kind, l.port, { withCert: true });
      const t = await q.next();
      assert.equal(t.clientCert?.commonName, 'test-client');
      assert.equal(t.clientCert?.subject.CN, 'test-client');
      t.stream.pipe(t.stream);
      c.write(Buffer.from('ping'));
      assert.deepEqual(await c.readBytes(4), Buffer.from('ping'));
      c.destroy();
    } finally {
      await l.close();
    }
  });

  test(`${kind}: missing certificate file -> ListenerConfigError naming file and kind`, async () => {
    const missing = join(dir, 'no-such-server.crt');
    await assert.rejects(listen(kind, { tls: { cert: missing, key: certs.serverKey } }), (err: Error) => {
      assert.ok(err instanceof ListenerConfigError, String(err));
      assert.equal(err.kind, kind);
      assert.equal(err.field, 'tls.cert');
      assert.equal(err.file, missing);
      assert.ok(err.message.includes(missing));
      assert.ok(err.message.includes(kind));
      return true;
    });
    const missingKey = join(dir, 'no-such.key');
    await assert.rejects(listen(kind, { tls: { cert: certs.serverCert, key: missingKey } }), (err: Error) => {
      assert.ok(err instanceof ListenerConfigError);
      assert.equal(err.field, 'tls.key');
      assert.equal(err.file, missingKey);
      return true;
    });
  });

  test(`${kind}: no tls option, or verifyClient without ca -> ListenerConfigError`, async () => {
    await assert.rejects(
      startListener({ kind, host: HOST, port: 0, onConnection: () => {} }),
      (err: Error) => err instanceof ListenerConfigError && err.kind === kind && err.field === 'tls',
    );
    await assert.rejects(
      startListener({ kind, host: HOST, port: 0, tls: { cert: certs.serverCert, key: certs.serverKey, verifyClient: true }, onConnection: () => {} }),
      (err: Error) => err instanceof ListenerConfigError && err.field === 'tls.ca',
    );
  });
}

test('tls: the server name and chain verify against the CA, and TLS below 1.2 is refused', { timeout: 10_000 }, async () => {
  const { l, q } = await listen('tls');
  try {
    const c = await connectClient('tls', l.port, { tlsExtra: { servername: 'localhost' } });
    const sock = c.socket as TLSSocket;
    assert.equal(sock.authorized, true);
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(sock.getProtocol() ?? ''));
    await q.next();
    c.destroy();
    await assert.rejects(connectClient('tls', l.port, { tlsExtra: { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } }));
  } finally {
    await l.close();
  }
});

// ---------------------------------------------------------------- WebSocket specifics

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: HOST, port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

for (const kind of ['ws', 'wss'] as const) {
  test(`${kind}: wrong path -> HTTP 404 before the upgrade`, { timeout: 10_000 }, async () => {
    const { l, q } = await listen(kind);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${kind}://${HOST}:${l.port}/other`, 'mqtt', kind === 'wss' ? { ca: readFileSync(certs.caCert) } : {});
        ws.on('unexpected-response', (_req, res: IncomingMessage) => {
          resolve(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
        ws.on('open', () => reject(new Error('opened on the wrong path')));
        ws.on('error', () => {});
      });
      assert.equal(status, 404);
      assert.equal(q.count(), 0);
    } finally {
      await l.close();
    }
  });
}

test('ws: plain HTTP requests: 404 elsewhere, 426 on the endpoint path', async () => {
  const { l } = await listen('ws');
  try {
    assert.equal(await httpStatus(l.port, '/'), 404);
    assert.equal(await httpStatus(l.port, '/mqtt'), 426);
  } finally {
    await l.close();
  }
});

test('ws: custom path, query string ignored', { timeout: 10_000 }, async () => {
  const { l, q } = await listen('ws', { wsPath: '/ws/mqtt' });
  try {
    const c = await connectClient('ws', l.port, { path: '/ws/mqtt?client=1' });
    await q.next();
    c.destroy();
    await assert.rejects(connectClient('ws', l.port, { path: '/mqtt' }));
  } finally {
    await l.close();
  }
});

test('ws: subprotocol negotiation', { timeout: 10_000 }, async () => {
  const { l, q } = await listen('ws');
  try {
    const cases: Array<[string | string[], string]> = [
      ['mqtt', 'mqtt'],
      ['mqttv3.1', 'mqttv3.1'],
      [['mqttv3.1', 'mqtt'], 'mqtt'],
      [['foo', 'mqtt'], 'mqtt'],
      [[], ''],
    ];
    for (const [offered, expected] of cases) {
      const c = await connectClient('ws', l.port, { protocols: offered });
      const t = await q.next();
      assert.equal(c.protocol, expected, `offered ${JSON.stringify(offered)}`);
      assert.equal(t.webSocketProtocol, expected);
      c.destroy();
      await streamClosed(t.stream);
    }
  } finally {
    await l.close();
  }
});

test('ws: a text frame closes the connection with 1003', { timeout: 10_000 }, async () => {
  const { l, q } = await listen('ws');
  try {
    const c = await connectClient('ws', l.port);
    const t = await q.next();
    t.stream.on('error', () => {});
    t.stream.resume();
    c.ws!.send('not binary');
    assert.equal(await c.closed, 1003);
    await streamClosed(t.stream);
  } finally {
    await l.close();
  }
});

test('ws: a frame over maxFrameBytes closes the connection with 1009 and reports the error', { timeout: 10_000 }, async () => {
  const { l, q, errors } = await listen('ws', { maxFrameBytes: 1024 });
  try {
    const c = await connectClient('ws', l.port);
    const t = await q.next();
    t.stream.resume();
    c.write(Buffer.alloc(1024)); // at the limit: fine
    c.write(Buffer.alloc(1025));
    assert.equal(await c.closed, 1009);
    await streamClosed(t.stream);
    assert.ok(errors.some((e) => /max|payload|length/i.test(e.message)), errors.map((e) => e.message).join('; '));
  } finally {
    await l.close();
  }
});

test('ws: backpressure both ways', { timeout: 20_000 }, async () => {
  const { l, q } = await listen('ws');
  try {
    const c = await connectClient('ws', l.port);
    const t = await q.next();

    // server -> client while the client does not read: write() must start returning false
    c.ws!.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    while (t.stream.write(chunk)) {
      written += chunk.length;
      assert.ok(written < 256 * 1024 * 1024, 'write() never signalled backpressure');
    }
    written += chunk.length;
    const drained = once(t.stream, 'drain');
    c.ws!.resume();
    await drained;
    await c.readBytes(written);

    // client -> server while the server does not read: the server stops reading its socket
    t.stream.pause();
    const total = 32 * 1024 * 1024;
    const piece = randomBytes(256 * 1024);
    for (let off = 0; off < total; off += piece.length) c.write(piece);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(t.stream.readableLength < total, `server buffered everything (${t.stream.readableLength} bytes)`);
    assert.ok(c.ws!.bufferedAmount > 0, 'client had nothing left to send: server did not push back');
    let received = 0;
    t.stream.on('data', (b: Buffer) => {
      received += b.length;
    });
    t.stream.resume();
    while (received < total) await new Promise((r) => setTimeout(r, 20));
    assert.equal(received, total);
    c.destroy();
  } finally {
    await l.close();
  }
});

test('listener options are validated', async () => {
  const base = { host: HOST, onConnection: () => {} };
  await assert.rejects(startListener({ ...base, kind: 'udp' as TransportKind, port: 0 }), ListenerConfigError);
  await assert.rejects(startListener({ ...base, kind: 'tcp', port: 70000 }), ListenerConfigError);
  await assert.rejects(startListener({ ...base, kind: 'tcp', port: 0, maxConnections: -1 }), ListenerConfigError);
  await assert.rejects(startListener({ ...base, kind: 'ws', port: 0, wsPath: 'mqtt' }), ListenerConfigError);
  await assert.rejects(startListener({ ...base, kind: 'ws', port: 0, maxFrameBytes: 0 }), ListenerConfigError);
});

test('an onConnection that throws destroys that connection and reports the error', { timeout: 10_000 }, async () => {
  const errors: Error[] = [];
  const l = await startListener({
    kind: 'tcp',
    host: HOST,
    port: 0,
    onConnection: () => {
      throw new Error('boom');
    },
    onError: (e) => errors.push(e),
  });
  try {
    const c = await connectClient('tcp', l.port);
    await c.closed;
    assert.deepEqual(
      errors.map((e) => e.message),
      ['boom'],
    );
  } finally {
    await l.close();
  }
});
