/**
 * The MQTT operator surface end to end: a real robust-server, real mqtt.js
 * clients, and robust-ctl driving /api/v1/mqtt and /api/v1/users.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IDisconnectPacket } from 'mqtt';
import type { MqttAclRuleView, MqttClientView, MqttRetainedDetail, MqttSessionDetail, MqttSessionView, MqttSubscriptionView, MqttUserView } from '../../src/admin/mqtt-routes.js';
import { Inbox, connect, connectWithInbox, endClient, sleep } from '../support/mqtt.js';
import { BIN, ServerProcess, removeDir, run, writeTestConfig } from '../support/server.js';

describe('robust-ctl mqtt and user commands against a running broker', () => {
  let server: ServerProcess;
  let dir: string;
  let admin: string;
  let port: number;

  before(async () => {
    const cfg = await writeTestConfig('', '["meta", "broker"]', { mqtt: '' });
    dir = cfg.dir;
    admin = `127.0.0.1:${cfg.ports.http}`;
    port = cfg.ports.mqtt!;
    server = new ServerProcess(['start', cfg.file], { env: { ROBUST_STORAGE_DEFAULT_ENGINE: 'memory' } });
    await server.waitReady(cfg.ports.http);
  });
  after(async () => {
    await server.kill();
    removeDir(dir);
  });

  const ctl = async (...args: string[]) => {
    const res = await run(BIN('robust-ctl'), ['--server', admin, ...args]);
    return res;
  };
  /** Runs a command that must succeed; returns its stdout. */
  const ok = async (...args: string[]) => {
    const res = await ctl(...args);
    assert.equal(res.code, 0, `robust-ctl ${args.join(' ')}: ${res.stderr}`);
    return res.stdout;
  };
  const okJson = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok('-o', 'json', ...args)) as T;

  it('users: create, connect with the password, refuse a wrong one, list without hashes, delete', async () => {
    assert.equal(await ok('user', 'create', 'alice', '--password', 'wonderland'), 'created user alice\n');
    assert.equal(await ok('user', 'create', 'root', '--password', 'toor', '--superuser'), 'created user root (superuser)\n');
    const dup = await ctl('user', 'create', 'alice', '--password', 'x');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists \(HTTP 409, already_exists\)/);
    const noPassword = await ctl('user', 'create', 'bob');
    assert.equal(noPassword.code, 2);
    assert.match(noPassword.stderr, /needs --password/);

    const users = await okJson<MqttUserView[]>('user', 'list');
    assert.deepEqual(users, [
      { username: 'alice', superuser: false },
      { username: 'root', superuser: true },
    ]);
    assert.match(await ok('user', 'list'), /^USERNAME\s+SUPERUSER\nalice\s+false\nroot\s+true\n$/);

    const c = await connect(port, { protocolVersion: 5, clientId: 'alice-1', username: 'alice', password: 'wonderland' });
    await endClient(c);
    // CONNACK 0x86 Bad User Name or Password (MQTT 5) / return code 4 (MQTT 3.1.1).
    await assert.rejects(connect(port, { protocolVersion: 5, clientId: 'alice-2', username: 'alice', password: 'wrong' }), (err: { code?: number }) => err.code === 0x86);
    await assert.rejects(connect(port, { protocolVersion: 4, clientId: 'alice-3', username: 'alice', password: 'wrong' }), (err: { code?: number }) => err.code === 4);
    await assert.rejects(connect(port, { protocolVersion: 5, clientId: 'nobody-1', username: 'nobody', password: 'x' }), (err: { code?: number }) => err.code === 0x86);

    assert.equal(await ok('user', 'delete', 'root'), 'deleted user root\n');
    const gone = await ctl('user', 'delete', 'root');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /HTTP 404, not_found/);
  });

  it('clients: list, show, kick (MQTT 5 gets DISCONNECT 0x98); 404 for an unknown client', async () => {
    const v5 = await connect(port, { protocolVersion: 5, clientId: 'dev/5', username: 'alice', password: 'wonderland', keepalive: 30 });
    const v3 = await connect(port, { protocolVersion: 4, clientId: 'dev-3' });
    await new Promise<void>((res, rej) => v5.subscribe('a/#', { qos: 1 }, (err) => (err ? rej(err) : res())));
    try {
      const clients = await okJson<MqttClientView[]>('mqtt', 'clients');
      assert.deepEqual(
        clients.map((c) => [c.client_id, c.protocol_level, c.username, c.transport]),
        [
          ['dev-3', 4, null, 'tcp'],
          ['dev/5', 5, 'alice', 'tcp'],
        ],
      );
      const limited = await okJson<MqttClientView[]>('mqtt', 'clients', '--limit', '1', '--offset', '1');
      assert.deepEqual(
        limited.map((c) => c.client_id),
        ['dev/5'],
      );
      const table = await ok('mqtt', 'clients');
      assert.match(table, /^CLIENT_ID\s+USERNAME\s+TRANSPORT\s+REMOTE/);
      assert.match(table, /^dev\/5\s+alice\s+tcp\s+127\.0\.0\.1:\d+\s+5\s+30\s+\d{4}-/m);

      const one = await okJson<MqttClientView>('mqtt', 'client', 'show', 'dev/5');
      assert.equal(one.subscriptions, 1);
      assert.equal(one.keep_alive, 30);
      assert.match(await ok('mqtt', 'client', 'show', 'dev/5'), /^keep_alive\s+30$/m);

      const disconnected = new Promise<IDisconnectPacket>((res) => v5.once('disconnect', res));
      assert.equal(await ok('mqtt', 'client', 'kick', 'dev/5'), 'disconnected client dev/5\n');
      assert.equal((await disconnected).reasonCode, 0x98);
      const closed = new Promise<void>((res) => v3.once('close', () => res()));
      await ok('mqtt', 'client', 'kick', 'dev-3');
      await closed;

      const missing = await ctl('mqtt', 'client', 'show', 'dev/5');
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /client "dev\/5" is not connected to this node \(HTTP 404, not_found\)/);
      assert.equal((await ctl('mqtt', 'client', 'kick', 'nobody')).code, 1);
      assert.deepEqual(await okJson<MqttClientView[]>('mqtt', 'clients'), []);
    } finally {
      v5.end(true);
      v3.end(true);
    }
  });

  it('publish through robust-ctl reaches a subscriber; a bad topic is a clear 400', async () => {
    const { client, inbox } = await connectWithInbox(port, { protocolVersion: 5, clientId: 'listener' });
    try {
      await client.subscribeAsync('news/+', { qos: 1 });
      assert.equal(await ok('mqtt', 'publish', 'news/today', 'hello from ctl', '--qos', '1'), 'published to news/today: 1 matching subscriber\n');
      const [m] = await inbox.waitFor(1);
      assert.equal(m!.topic, 'news/today');
      assert.equal(m!.payload.toString(), 'hello from ctl');
      assert.equal(m!.packet.qos, 1);
      const res = await okJson<{ matched: number }>('mqtt', 'publish', 'nobody/listens', 'x');
      assert.equal(res.matched, 0);

      const bad = await ctl('mqtt', 'publish', 'news/#', 'x');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /invalid topic "news\/#": .*\(HTTP 400, invalid\)/);
      const sys = await ctl('mqtt', 'publish', '$SYS/x', 'x');
      assert.match(sys.stderr, /\$SYS topics are reserved/);
      assert.equal((await ctl('mqtt', 'publish', 't', 'x', '--qos', '3')).code, 2);
    } finally {
      await endClient(client);
    }
  });

  it('retained: publish retained, list, show, delete; a new subscriber then gets nothing', async () => {
    await ok('mqtt', 'publish', 'status/room/1', 'on', '--retain', '--qos', '1');
    await ok('mqtt', 'publish', 'status/room/2', 'off', '--retain');
    const list = await okJson<Array<{ topic: string; payload_bytes: number }>>('mqtt', 'retained');
    assert.deepEqual(
      list.map((m) => [m.topic, m.payload_bytes]),
      [
        ['status/room/1', 2],
        ['status/room/2', 3],
      ],
    );
    assert.match(await ok('mqtt', 'retained', 'list'), /^TOPIC\s+QOS\s+BYTES\s+RECEIVED\s+EXPIRES\nstatus\/room\/1\s+1\s+2\s+\d{4}-/);
    const shown = await okJson<MqttRetainedDetail>('mqtt', 'retained', 'show', 'status/room/1');
    assert.equal(shown.payload, 'on');
    assert.equal(shown.payload_base64, Buffer.from('on').toString('base64'));
    assert.equal(shown.qos, 1);
    assert.match(await ok('mqtt', 'retained', 'show', 'status/room/2'), /^payload\s+off$/m);

    // A retained message published by a client shows up too.
    const pub = await connect(port, { protocolVersion: 4, clientId: 'retainer' });
    await pub.publishAsync('status/room/3', 'dim', { qos: 1, retain: true });
    await endClient(pub);
    assert.equal((await okJson<MqttRetainedDetail>('mqtt', 'retained', 'show', 'status/room/3')).payload, 'dim');

    assert.equal(await ok('mqtt', 'retained', 'delete', 'status/room/1'), 'cleared the retained message of status/room/1\n');
    const again = await ctl('mqtt', 'retained', 'delete', 'status/room/1');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no retained message on topic "status\/room\/1" \(HTTP 404, not_found\)/);
    assert.equal((await ctl('mqtt', 'retained', 'show', 'status/room/1')).code, 1);

    const { client, inbox } = await connectWithInbox(port, { protocolVersion: 5, clientId: 'late' });
    try {
      await client.subscribeAsync('status/#', { qos: 1 });
      await inbox.waitFor(2);
      await sleep(200);
      assert.deepEqual(inbox.messages.map((m) => m.topic).sort(), ['status/room/2', 'status/room/3']);
    } finally {
      await endClient(client);
    }
    await ok('mqtt', 'retained', 'delete', 'status/room/2');
    await ok('mqtt', 'retained', 'delete', 'status/room/3');

    // Any topic name works on the command line: spaces, '%', '?', non-ASCII, empty levels, a trailing '/'.
    const odd = '/odd topic/100%?/ü/';
    await ok('mqtt', 'publish', odd, 'strange', '--retain');
    assert.equal((await okJson<MqttRetainedDetail>('mqtt', 'retained', 'show', odd)).payload, 'strange');
    await ok('mqtt', 'retained', 'delete', odd);
    assert.deepEqual(await okJson<unknown[]>('mqtt', 'retained'), []);
  });

  it('sessions: a persistent session is listed, shown with its subscriptions, and deleted', async () => {
    const opts = { protocolVersion: 5 as const, clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 3600 } };
    const c = await connect(port, opts);
    await c.subscribeAsync('jobs/#', { qos: 1 });
    await c.subscribeAsync('alerts', { qos: 2, nl: true, rap: true, rh: 2, properties: { subscriptionIdentifier: 7 } });
    await endClient(c);
    await ok('mqtt', 'publish', 'jobs/1', 'queued while away', '--qos', '1');

    const sessions = await okJson<MqttSessionView[]>('mqtt', 'sessions');
    const keeper = sessions.find((s) => s.client_id === 'keeper');
    assert.ok(keeper, JSON.stringify(sessions));
    assert.equal(keeper.persistent, true);
    assert.equal(keeper.connected, false);
    assert.equal(keeper.expiry_interval_sec, 3600);
    assert.equal(keeper.subscriptions, 2);
    assert.equal(keeper.queued, 1);
    assert.ok(keeper.disconnected_at_ms !== null && keeper.disconnected_at_ms > 0);

    const detail = await okJson<MqttSessionDetail>('mqtt', 'session', 'show', 'keeper');
    assert.ok(detail.expires_at_ms !== null && detail.expires_at_ms > Date.now());
    assert.deepEqual(
      detail.subscriptions.sort((a, b) => a.filter.localeCompare(b.filter)),
      [
        { filter: 'alerts', qos: 2, no_local: true, retain_as_published: true, retain_handling: 2, subscription_id: 7 },
        { filter: 'jobs/#', qos: 1, no_local: false, retain_as_published: false, retain_handling: 0, subscription_id: null },
      ],
    );
    assert.match(await ok('mqtt', 'session', 'show', 'keeper'), /^FILTER\s+QOS\s+NO_LOCAL.*\nalerts\s+2\s+true\s+true\s+2\s+7$/m);

    const subs = await okJson<MqttSubscriptionView[]>('mqtt', 'subscriptions', '--client', 'keeper');
    assert.deepEqual(
      subs.map((s) => `${s.client_id} ${s.filter}`),
      ['keeper alerts', 'keeper jobs/#'],
    );
    assert.match(await ok('mqtt', 'subscriptions'), /^keeper\s+jobs\/#\s+1\s+false\s+false\s+0\s+-$/m);

    assert.equal(await ok('mqtt', 'session', 'delete', 'keeper'), 'deleted the session of keeper\n');
    assert.equal((await ctl('mqtt', 'session', 'show', 'keeper')).code, 1);
    assert.deepEqual(await okJson<MqttSubscriptionView[]>('mqtt', 'subscriptions', '--client', 'keeper'), []);

    // The client comes back to no session and no queued message.
    let present: boolean | undefined;
    let inbox!: Inbox;
    const client = await connect(port, opts, undefined, (c) => {
      inbox = new Inbox(c);
      c.once('connect', (connack) => (present = connack.sessionPresent));
    });
    try {
      assert.equal(present, false);
      await sleep(300);
      assert.equal(inbox.messages.length, 0);
    } finally {
      await endClient(client);
    }
  });

  it('deleting the session of a connected client disconnects it', async () => {
    const c = await connect(port, { protocolVersion: 5, clientId: 'live-session', clean: false, properties: { sessionExpiryInterval: 60 } });
    const disconnected = new Promise<IDisconnectPacket>((res) => c.once('disconnect', res));
    try {
      await ok('mqtt', 'session', 'delete', 'live-session');
      assert.equal((await disconnected).reasonCode, 0x98);
      assert.equal((await ctl('mqtt', 'session', 'show', 'live-session')).code, 1);
    } finally {
      c.end(true);
    }
  });

  it('ACL: a deny rule refuses a subscribe (SUBACK 0x87), deleting it allows it again', async () => {
    const before = await okJson<{ default: string; rules: MqttAclRuleView[] }>('mqtt', 'acl', 'list');
    assert.equal(before.default, 'allow');
    const added = await okJson<MqttAclRuleView>('mqtt', 'acl', 'add', '--permission', 'deny', '--action', 'subscribe', '--topic', 'secret/#', '--user', 'alice');
    assert.equal(added.source, 'meta');
    assert.equal(added.user, 'alice');
    const id = added.id!;
    assert.ok(id >= 1);
    const table = await ok('mqtt', 'acl', 'list');
    assert.match(table, new RegExp(`^${id}\\s+meta\\s+deny\\s+subscribe\\s+secret/#\\s+alice\\s+-$`, 'm'));
    assert.match(table, /^default \(no rule matches\): allow$/m);
    const bad = await ctl('mqtt', 'acl', 'add', '--permission', 'deny', '--action', 'read', '--topic', 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /"action" must be one of publish, subscribe, all \(HTTP 400, invalid\)/);
    assert.equal((await ctl('mqtt', 'acl', 'add', '--permission', 'deny', '--action', 'all')).code, 2);

    /** The SUBACK reason code alice gets for secret/plans (mqtt.js turns codes >= 0x80 into an error carrying the SUBACK). */
    const grant = async (): Promise<number> => {
      const c = await connect(port, { protocolVersion: 5, clientId: 'acl-probe', username: 'alice', password: 'wonderland' });
      try {
        return await c.subscribeAsync('secret/plans', { qos: 1 }).then(
          (granted) => granted[0]!.qos,
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0] ?? -1,
        );
      } finally {
        await endClient(c);
      }
    };
    // The rule reaches the broker through the meta replica; allow it a moment.
    let refused = -1;
    for (let i = 0; i < 20 && refused !== 0x87; i++) {
      refused = await grant();
      if (refused !== 0x87) await sleep(100);
    }
    assert.equal(refused, 0x87);
    // Another user is not affected.
    const other = await connect(port, { protocolVersion: 5, clientId: 'acl-other' });
    try {
      const granted = await other.subscribeAsync('secret/plans', { qos: 1 });
      assert.equal(granted[0]?.qos, 1);
    } finally {
      await endClient(other);
    }

    assert.equal(await ok('mqtt', 'acl', 'delete', String(id)), `deleted ACL rule ${id}\n`);
    const missing = await ctl('mqtt', 'acl', 'delete', String(id));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HTTP 404, not_found/);
    let allowed = -1;
    for (let i = 0; i < 20 && allowed !== 1; i++) {
      allowed = await grant();
      if (allowed !== 1) await sleep(100);
    }
    assert.equal(allowed, 1);
    assert.deepEqual((await okJson<{ rules: MqttAclRuleView[] }>('mqtt', 'acl', 'list')).rules, before.rules);
  });
});

describe('robust-ctl mqtt on a node without the broker role', () => {
  let server: ServerProcess;
  let dir: string;
  let admin: string;

  before(async () => {
    const cfg = await writeTestConfig('', '["meta"]');
    dir = cfg.dir;
    admin = `127.0.0.1:${cfg.ports.http}`;
    server = new ServerProcess(['start', cfg.file]);
    await server.waitReady(cfg.ports.http);
  });
  after(async () => {
    await server.kill();
    removeDir(dir);
  });

  it('broker commands fail with 503 broker_unavailable; users and ACL rules still work', async () => {
    for (const args of [['mqtt', 'clients'], ['mqtt', 'sessions'], ['mqtt', 'retained'], ['mqtt', 'publish', 't', 'x']]) {
      const res = await run(BIN('robust-ctl'), ['--server', admin, ...args]);
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, /node 1 has no broker role \(roles: meta\) \(HTTP 503, broker_unavailable\)/);
    }
    const created = await run(BIN('robust-ctl'), ['--server', admin, 'user', 'create', 'ops', '--password', 'pw']);
    assert.equal(created.code, 0, created.stderr);
    const users = await run(BIN('robust-ctl'), ['--server', admin, '-o', 'json', 'user', 'list']);
    assert.deepEqual(JSON.parse(users.stdout), [{ username: 'ops', superuser: false }]);
    const acl = await run(BIN('robust-ctl'), ['--server', admin, '-o', 'json', 'mqtt', 'acl', 'add', '--permission', 'allow', '--action', 'all', '--topic', 'ops/#', '--user', 'ops']);
    assert.equal(acl.code, 0, acl.stderr);
    assert.equal((JSON.parse(acl.stdout) as MqttAclRuleView).topic, 'ops/#');
  });
});
