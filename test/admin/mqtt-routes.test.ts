import assert from 'node:assert/strict';
import { describe, it, after, before, beforeEach } from 'node:test';
import { pino } from 'pino';
import { HttpServer } from '../../src/admin/http-server.js';
import type { MetaResult } from '../../src/admin/meta-routes.js';
import {
  addMqttRoutes,
  type MqttAdmin,
  type MqttAclRuleInput,
  type MqttAclRuleView,
  type MqttClientView,
  type MqttPublishInput,
  type MqttRetainedDetail,
  type MqttRoutesView,
  type MqttSessionDetail,
  type MqttSessionView,
  type MqttSubscriptionView,
} from '../../src/admin/mqtt-routes.js';
import { RobustError } from '../../src/common/errors.js';
import { NodeMetrics } from '../../src/common/metrics.js';
import { freePort } from '../support/server.js';

function clientView(id: string): MqttClientView {
  return { client_id: id, username: null, transport: 'tcp', remote: '127.0.0.1:5000', protocol_level: 5, keep_alive: 60, connected_at_ms: 1000, inflight: 0, queued: 0, subscriptions: 1 };
}

/** An in-memory MqttAdmin that records what the routes asked of it. */
class FakeAdmin implements MqttAdmin {
  unavailable: string | undefined;
  connected = new Map<string, MqttClientView>();
  sessionMap = new Map<string, MqttSessionDetail>();
  retainedMap = new Map<string, Buffer>();
  published: MqttPublishInput[] = [];
  userMap = new Map<string, { password: string; superuser: boolean }>();
  rules: Array<MqttAclRuleView & { id: number }> = [];
  nextRuleId = 1;
  metaDown = false;
  kicked: string[] = [];

  brokerUnavailable() {
    return this.unavailable;
  }
  clients() {
    return [...this.connected.values()];
  }
  client(id: string) {
    return this.connected.get(id);
  }
  kickClient(id: string) {
    this.kicked.push(id);
    return this.connected.delete(id);
  }
  sessions(): MqttSessionView[] {
    return [...this.sessionMap.values()].map((s) => ({ ...s, subscriptions: s.subscriptions.length }));
  }
  session(id: string) {
    return this.sessionMap.get(id);
  }
  deleteSession(id: string) {
    this.connected.delete(id);
    return this.sessionMap.delete(id);
  }
  subscriptions(clientId?: string): MqttSubscriptionView[] {
    return [...this.sessionMap.values()].filter((s) => clientId === undefined || s.client_id === clientId).flatMap((s) => s.subscriptions.map((x) => ({ client_id: s.client_id, ...x })));
  }
  retained() {
    return [...this.retainedMap].map(([topic, p]) => ({ topic, qos: 1, payload_bytes: p.length, received_at_ms: 5, expires_at_ms: null }));
  }
  retainedMessage(topic: string): MqttRetainedDetail | undefined {
    const p = this.retainedMap.get(topic);
    if (!p) return undefined;
    return { topic, qos: 1, payload_bytes: p.length, received_at_ms: 5, expires_at_ms: null, payload: p.toString('utf8'), payload_base64: p.toString('base64'), publisher: 'c1', content_type: null };
  }
  async clearRetained(topic: string) {
    return this.retainedMap.delete(topic);
  }
  checkPublish(msg: MqttPublishInput) {
    return msg.topic === '' || msg.topic.includes('#') || msg.topic.includes('+') ? `invalid topic "${msg.topic}"` : undefined;
  }
  async publish(msg: MqttPublishInput) {
    this.published.push(msg);
    if (msg.retain) this.retainedMap.set(msg.topic, msg.payload);
    return { matched: 3 };
  }
  routes(): MqttRoutesView {
    return {
      node_id: 1,
      nodes: [
        { node_id: 1, local: true, connected: true, routes: [{ filter: 'a/#', subscriptions: 3 }] },
        { node_id: 2, local: false, connected: true, routes: [{ filter: '$share/g/b', subscriptions: null }] },
      ],
    };
  }
  async consistent() {
    if (this.metaDown) throw new RobustError('no meta leader', 'not_leader');
  }
  users() {
    return [...this.userMap].map(([username, u]) => ({ username, superuser: u.superuser }));
  }
  async createUser(username: string, password: string, superuser: boolean): Promise<MetaResult> {
    if (/\s/.test(username)) return { ok: false, code: 'invalid', message: 'username: without whitespace' };
    if (this.userMap.has(username)) return { ok: false, code: 'already_exists', message: `user '${username}' already exists` };
    this.userMap.set(username, { password, superuser });
    return { ok: true };
  }
  async deleteUser(username: string): Promise<MetaResult> {
    if (!this.userMap.delete(username)) return { ok: false, code: 'not_found', message: `user '${username}' does not exist` };
    return { ok: true };
  }
  aclRules(): MqttAclRuleView[] {
    return [{ source: 'config', permission: 'allow', action: 'all', topic: '$SYS/#', user: 'admin' }, ...this.rules];
  }
  aclDefault() {
    return 'allow' as const;
  }
  lastRule: MqttAclRuleInput | undefined;
  async addAclRule(rule: MqttAclRuleInput): Promise<MetaResult> {
    this.lastRule = rule;
    if ((rule.position ?? 0) > this.rules.length) return { ok: false, code: 'invalid', message: 'position beyond the end' };
    const { position, clientId, ...rest } = rule;
    const stored = { id: this.nextRuleId++, ...rest, ...(clientId !== undefined ? { clientId } : {}) };
    this.rules.splice(position ?? this.rules.length, 0, { source: 'meta', ...rest, id: stored.id, ...(clientId !== undefined ? { client_id: clientId } : {}) });
    return { ok: true, value: stored };
  }
  async removeAclRule(id: number): Promise<MetaResult> {
    const i = this.rules.findIndex((r) => r.id === id);
    if (i < 0) return { ok: false, code: 'not_found', message: `no MQTT ACL rule with id ${id}` };
    this.rules.splice(i, 1);
    return { ok: true };
  }
}

describe('admin MQTT routes', () => {
  const metrics = new NodeMetrics({ nodeId: 1, cluster: 'c', version: '0', roles: [] });
  const http = new HttpServer('admin', pino({ level: 'silent' }), metrics);
  const admin = new FakeAdmin();
  let base: string;

  before(async () => {
    addMqttRoutes(http, admin);
    const port = await http.listen('127.0.0.1', await freePort(), 'http_port');
    base = `http://127.0.0.1:${port}`;
  });
  after(() => http.stop());
  // Every test starts from an empty fake (its state is all in instance fields).
  beforeEach(() => Object.assign(admin, new FakeAdmin()));

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('lists clients with limit and offset, shows one, 404 for an unknown one', async () => {
    for (const id of ['a', 'b', 'c']) admin.connected.set(id, clientView(id));
    const all = await call('GET', '/api/v1/mqtt/clients');
    assert.equal(all.status, 200);
    assert.equal(all.body['total'], 3);
    assert.deepEqual(all.body['clients'].map((c: MqttClientView) => c.client_id), ['a', 'b', 'c']);
    const paged = await call('GET', '/api/v1/mqtt/clients?limit=1&offset=1');
    assert.deepEqual(paged.body['clients'].map((c: MqttClientView) => c.client_id), ['b']);
    assert.equal(paged.body['total'], 3);
    const bad = await call('GET', '/api/v1/mqtt/clients?limit=0');
    assert.equal(bad.status, 400);
    assert.equal(bad.body['error'].code, 'invalid');

    const one = await call('GET', '/api/v1/mqtt/clients/b');
    assert.deepEqual(one.body, clientView('b'));
    const missing = await call('GET', '/api/v1/mqtt/clients/zz');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: { code: 'not_found', message: 'client "zz" is not connected to this node' } });
  });

  it('client ids with "/" and other characters arrive decoded', async () => {
    admin.connected.set('dev/1 x?', clientView('dev/1 x?'));
    const one = await call('GET', `/api/v1/mqtt/clients/${encodeURIComponent('dev/1 x?')}`);
    assert.equal(one.status, 200);
    assert.equal(one.body['client_id'], 'dev/1 x?');
  });

  it('kicks a client; 404 when it is not connected', async () => {
    admin.connected.set('a', clientView('a'));
    const r = await call('DELETE', '/api/v1/mqtt/clients/a');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { kicked: 'a' });
    assert.deepEqual(admin.kicked, ['a']);
    assert.equal((await call('DELETE', '/api/v1/mqtt/clients/a')).status, 404);
  });

  it('sessions: list, show with subscriptions, delete; subscriptions across sessions with a client filter', async () => {
    const sub = { filter: 'a/#', qos: 1, no_local: false, retain_as_published: false, retain_handling: 0, subscription_id: null };
    admin.sessionMap.set('s1', { client_id: 's1', persistent: true, expiry_interval_sec: 3600, connected: false, disconnected_at_ms: 10, expires_at_ms: 3_600_010, inflight: 0, queued: 2, subscriptions: [sub] });
    admin.sessionMap.set('s2', { client_id: 's2', persistent: false, expiry_interval_sec: 0, connected: true, disconnected_at_ms: null, expires_at_ms: null, inflight: 1, queued: 0, subscriptions: [{ ...sub, filter: 'b' }, { ...sub, filter: 'c', subscription_id: 7 }] });
    const list = await call('GET', '/api/v1/mqtt/sessions');
    assert.equal(list.body['total'], 2);
    assert.deepEqual(list.body['sessions'][0], { client_id: 's1', persistent: true, expiry_interval_sec: 3600, connected: false, disconnected_at_ms: 10, expires_at_ms: 3_600_010, inflight: 0, queued: 2, subscriptions: 1 });
    const show = await call('GET', '/api/v1/mqtt/sessions/s2');
    assert.equal(show.body['subscriptions'].length, 2);
    assert.equal(show.body['subscriptions'][1].subscription_id, 7);

    const subs = await call('GET', '/api/v1/mqtt/subscriptions');
    assert.deepEqual(subs.body['subscriptions'].map((s: MqttSubscriptionView) => `${s.client_id}:${s.filter}`), ['s1:a/#', 's2:b', 's2:c']);
    const filtered = await call('GET', '/api/v1/mqtt/subscriptions?client_id=s2');
    assert.equal(filtered.body['total'], 2);

    assert.deepEqual((await call('DELETE', '/api/v1/mqtt/sessions/s1')).body, { deleted: 's1' });
    assert.equal((await call('GET', '/api/v1/mqtt/sessions/s1')).status, 404);
    assert.equal((await call('DELETE', '/api/v1/mqtt/sessions/s1')).status, 404);
  });

  it('retained: list, show (topic with "/", payload as utf8 and base64), delete, 404s', async () => {
    admin.retainedMap.set('a/b/c', Buffer.from('héllo'));
    admin.retainedMap.set('x/', Buffer.from([0xff, 0x00]));
    const list = await call('GET', '/api/v1/mqtt/retained?limit=1');
    assert.equal(list.body['total'], 2);
    assert.deepEqual(list.body['retained'], [{ topic: 'a/b/c', qos: 1, payload_bytes: 6, received_at_ms: 5, expires_at_ms: null }]);

    // Levels as path segments, or the whole topic percent-encoded (which keeps a trailing '/').
    const show = await call('GET', '/api/v1/mqtt/retained/a/b/c');
    assert.equal(show.status, 200);
    assert.equal(show.body['payload'], 'héllo');
    assert.equal(show.body['payload_base64'], Buffer.from('héllo').toString('base64'));
    const trailing = await call('GET', `/api/v1/mqtt/retained/${encodeURIComponent('x/')}`);
    assert.equal(trailing.body['topic'], 'x/');
    assert.equal(trailing.body['payload_base64'], '/wA=');

    assert.equal((await call('GET', '/api/v1/mqtt/retained/a/b')).status, 404);
    assert.deepEqual((await call('DELETE', `/api/v1/mqtt/retained/${encodeURIComponent('a/b/c')}`)).body, { deleted: 'a/b/c' });
    const gone = await call('DELETE', '/api/v1/mqtt/retained/a/b/c');
    assert.equal(gone.status, 404);
    assert.equal(gone.body['error'].message, 'no retained message on topic "a/b/c"');
  });

  it('routes: the cluster route table per node; 503 without a running broker', async () => {
    const r = await call('GET', '/api/v1/mqtt/routes');
    assert.equal(r.status, 200);
    assert.equal(r.body['node_id'], 1);
    assert.deepEqual(
      r.body['nodes'].map((n: { node_id: number; routes: Array<{ filter: string }> }) => [n.node_id, n.routes.map((x) => x.filter)]),
      [
        [1, ['a/#']],
        [2, ['$share/g/b']],
      ],
    );
    admin.unavailable = 'no broker role';
    assert.equal((await call('GET', '/api/v1/mqtt/routes')).status, 503);
  });

  it('publish: utf8 or base64 payload, qos and retain; 400 for bad input', async () => {
    const r = await call('POST', '/api/v1/mqtt/publish', { topic: 't/1', payload: 'hi', qos: 1, retain: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { topic: 't/1', matched: 3 });
    assert.deepEqual(admin.published[0], { topic: 't/1', payload: Buffer.from('hi'), qos: 1, retain: true });
    await call('POST', '/api/v1/mqtt/publish', { topic: 't/2', payload_base64: 'AAEC' });
    assert.deepEqual(admin.published[1], { topic: 't/2', payload: Buffer.from([0, 1, 2]), qos: 0, retain: false });

    const cases: Array<[unknown, RegExp]> = [
      [{ topic: 'a/#', payload: 'x' }, /invalid topic "a\/#"/],
      [{ payload: 'x' }, /"topic" must be a string/],
      [{ topic: 't', payload: 'x', qos: 3 }, /"qos" must be 0, 1 or 2/],
      [{ topic: 't', payload: 'x', retain: 'yes' }, /"retain" must be true or false/],
      [{ topic: 't', payload: 'x', payload_base64: 'eA==' }, /not both/],
      [{ topic: 't', payload_base64: 'not base64!' }, /base64/],
      [{ topic: 't', payload: 5 }, /"payload" must be a string/],
    ];
    for (const [body, message] of cases) {
      const bad = await call('POST', '/api/v1/mqtt/publish', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
      assert.equal(bad.body['error'].code, 'invalid');
      assert.match(bad.body['error'].message, message);
    }
    const notJson = await fetch(`${base}/api/v1/mqtt/publish`, { method: 'POST', body: '{' });
    assert.equal(notJson.status, 400);
    assert.equal(admin.published.length, 2);
  });

  it('broker routes answer 503 when the node has no broker; users and ACL still work', async () => {
    admin.unavailable = 'node 2 has no broker role (roles: meta)';
    for (const [method, path] of [
      ['GET', '/api/v1/mqtt/clients'],
      ['GET', '/api/v1/mqtt/clients/a'],
      ['DELETE', '/api/v1/mqtt/clients/a'],
      ['GET', '/api/v1/mqtt/sessions'],
      ['GET', '/api/v1/mqtt/sessions/a'],
      ['DELETE', '/api/v1/mqtt/sessions/a'],
      ['GET', '/api/v1/mqtt/subscriptions'],
      ['GET', '/api/v1/mqtt/retained'],
      ['GET', '/api/v1/mqtt/retained/a/b'],
      ['DELETE', '/api/v1/mqtt/retained/a'],
      ['POST', '/api/v1/mqtt/publish'],
    ] as const) {
      const r = await call(method, path, method === 'POST' ? { topic: 't', payload: 'x' } : undefined);
      assert.equal(r.status, 503, `${method} ${path}`);
      assert.deepEqual(r.body, { error: { code: 'broker_unavailable', message: 'node 2 has no broker role (roles: meta)' } });
    }
    assert.equal((await call('GET', '/api/v1/users')).status, 200);
    assert.equal((await call('GET', '/api/v1/mqtt/acl')).status, 200);
  });

  it('users: create (never echoing a hash), list, duplicate 409, bad 400, delete, 404', async () => {
    const created = await call('POST', '/api/v1/users', { username: 'alice', password: 's3cret', superuser: true });
    assert.equal(created.status, 201);
    assert.deepEqual(created.body, { username: 'alice', superuser: true });
    assert.equal(admin.userMap.get('alice')?.password, 's3cret');
    await call('POST', '/api/v1/users', { username: 'bob', password: 'pw' });
    const list = await call('GET', '/api/v1/users');
    assert.deepEqual(list.body, { users: [{ username: 'alice', superuser: true }, { username: 'bob', superuser: false }] });
    assert.ok(!JSON.stringify(list.body).includes('s3cret'));

    const dup = await call('POST', '/api/v1/users', { username: 'bob', password: 'x' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body['error'].code, 'already_exists');
    assert.equal((await call('POST', '/api/v1/users', { username: 'carol' })).status, 400);
    assert.equal((await call('POST', '/api/v1/users', { username: 'carol', password: '' })).status, 400);
    assert.equal((await call('POST', '/api/v1/users', { username: 'c d', password: 'x' })).status, 400);
    assert.equal((await call('POST', '/api/v1/users', { username: 'carol', password: 'x', superuser: 1 })).status, 400);

    assert.deepEqual((await call('DELETE', '/api/v1/users/bob')).body, { deleted: 'bob' });
    const missing = await call('DELETE', '/api/v1/users/bob');
    assert.equal(missing.status, 404);
    assert.equal(missing.body['error'].code, 'not_found');
  });

  it('meta unavailable: users list answers 503 with the meta error code', async () => {
    admin.metaDown = true;
    const r = await call('GET', '/api/v1/users');
    assert.equal(r.status, 503);
    assert.deepEqual(r.body, { error: { code: 'not_leader', message: 'no meta leader' } });
  });

  it('ACL: config rules first without ids, add with position, delete by id, errors', async () => {
    const added = await call('POST', '/api/v1/mqtt/acl', { permission: 'deny', action: 'subscribe', topic: 'secret/#', user: 'bob' });
    assert.equal(added.status, 201);
    assert.deepEqual(added.body, { id: 1, source: 'meta', permission: 'deny', action: 'subscribe', topic: 'secret/#', user: 'bob' });
    const second = await call('POST', '/api/v1/mqtt/acl', { permission: 'allow', action: 'all', topic: 'x', client_id: 'c1', position: 0 });
    assert.equal(second.body['id'], 2);
    assert.equal(second.body['client_id'], 'c1');
    assert.deepEqual(admin.lastRule, { permission: 'allow', action: 'all', topic: 'x', clientId: 'c1', position: 0 });

    const list = await call('GET', '/api/v1/mqtt/acl');
    assert.equal(list.body['default'], 'allow');
    assert.deepEqual(
      list.body['rules'].map((r: MqttAclRuleView) => [r.id ?? null, r.source, r.topic]),
      [
        [null, 'config', '$SYS/#'],
        [2, 'meta', 'x'],
        [1, 'meta', 'secret/#'],
      ],
    );

    for (const body of [
      { permission: 'maybe', action: 'all', topic: 'x' },
      { permission: 'allow', action: 'read', topic: 'x' },
      { permission: 'allow', action: 'all' },
      { permission: 'allow', action: 'all', topic: 'x', position: -1 },
      { permission: 'allow', action: 'all', topic: 'x', position: 9 },
      { permission: 'allow', action: 'all', topic: 'x', user: '' },
    ]) {
      const bad = await call('POST', '/api/v1/mqtt/acl', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
    }

    assert.deepEqual((await call('DELETE', '/api/v1/mqtt/acl/1')).body, { deleted: 1 });
    const again = await call('DELETE', '/api/v1/mqtt/acl/1');
    assert.equal(again.status, 404);
    assert.equal(again.body['error'].message, 'no MQTT ACL rule with id 1');
    assert.equal((await call('DELETE', '/api/v1/mqtt/acl/abc')).status, 400);
    assert.equal((await call('DELETE', '/api/v1/mqtt/acl/0')).status, 400);
  });
});
