import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it, after, before } from 'node:test';
import { pino } from 'pino';
import { HttpError, HttpServer } from '../../src/admin/http-server.js';
import { NodeMetrics } from '../../src/common/metrics.js';
import { freePort } from '../support/server.js';

describe('admin HttpServer', () => {
  const metrics = new NodeMetrics({ nodeId: 1, cluster: 'c', version: '0', roles: [] });
  const http = new HttpServer('admin', pino({ level: 'silent' }), metrics);
  let base: string;
  let port: number;

  before(async () => {
    http.route('GET', '/ok/:name', ({ params, query }) => ({ body: { hello: params['name'], q: query.get('q') } }));
    http.route('DELETE', '/ok/:name', () => ({ status: 204, body: '', contentType: 'text/plain' }));
    http.route('GET', '/gone', () => {
      throw new HttpError(404, 'topic_not_found', 'topic t does not exist');
    });
    http.route('GET', '/boom', () => {
      throw new Error('kaboom');
    });
    port = await http.listen('127.0.0.1', await freePort(), 'http_port');
    base = `http://127.0.0.1:${port}`;
  });
  after(() => http.stop());

  const getJson = async (path: string, init?: RequestInit) => {
    const res = await fetch(base + path, init);
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };

  it('routes with params and query', async () => {
    const r = await getJson('/ok/world?q=1');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { hello: 'world', q: '1' });
  });

  it('unknown path: 404 with a JSON error', async () => {
    const r = await getJson('/nowhere');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { error: { code: 'not_found', message: 'no such endpoint: /nowhere' } });
  });

  it('wrong method: 405 with Allow and a JSON error', async () => {
    const r = await getJson('/ok/x', { method: 'POST' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, DELETE');
    assert.equal((r.body['error'] as { code: string }).code, 'method_not_allowed');
  });

  it('a typed HttpError keeps its status and code', async () => {
    const r = await getJson('/gone');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { error: { code: 'topic_not_found', message: 'topic t does not exist' } });
  });

  it('an unexpected handler error is a 500 JSON error, and the server keeps serving', async () => {
    const r = await getJson('/boom');
    assert.equal(r.status, 500);
    assert.deepEqual(r.body, { error: { code: 'internal', message: 'kaboom' } });
    assert.equal((await getJson('/ok/again')).status, 200);
  });

  it('a malformed request line gets 400 and does not disturb the server', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('NONSENSE\x00\x01 / HTTP/9\r\n\r\n'));
      let data = '';
      sock.on('data', (d) => (data += d.toString()));
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request/);
    assert.equal((await getJson('/ok/still')).status, 200);
  });

  it('counts requests by route and status', async () => {
    const text = await metrics.registry.metrics();
    assert.match(text, /robust_admin_http_requests_total\{method="GET",route="\/ok\/:name",status="200"\} \d+/);
    assert.match(text, /robust_admin_http_requests_total\{method="GET",route="\/boom",status="500"\} 1/);
  });
});
