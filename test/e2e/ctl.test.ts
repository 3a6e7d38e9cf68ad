import assert from 'node:assert/strict';
import { describe, it, after, before } from 'node:test';
import type { NodeInfo } from '../../src/common/node-info.js';
import type { ClusterStatusView } from '../../src/meta/service.js';
import { BIN, ServerProcess, freePort, removeDir, run, writeTestConfig } from '../support/server.js';

describe('robust-ctl', () => {
  let server: ServerProcess;
  let admin: string;
  let dir: string;
  let grpc: number;

  before(async () => {
    const cfg = await writeTestConfig('[auth]\njwt_secret = "do-not-show-me"\n\n[storage]\nflush_bytes = 4194304\n');
    dir = cfg.dir;
    grpc = cfg.ports.grpc;
    admin = `127.0.0.1:${cfg.ports.http}`;
    server = new ServerProcess(['start', cfg.file]);
    await server.waitReady(cfg.ports.http);
  });
  after(async () => {
    await server.kill();
    removeDir(dir);
  });

  const ctl = (args: string[], env: NodeJS.ProcessEnv = {}) => run(BIN('robust-ctl'), args, { env });

  it('node info as a table', async () => {
    const res = await ctl(['--server', admin, 'node', 'info']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^node_id\s+1$/m);
    assert.match(res.stdout, /^roles\s+meta,broker,journal$/m);
    assert.match(res.stdout, /^LISTENER\s+PROTOCOL\s+ADDRESS$/m);
    assert.match(res.stdout, new RegExp(`^grpc\\s+grpc\\s+127\\.0\\.0\\.1:${grpc}$`, 'm'));
    assert.match(res.stdout, /^broker\s+true$/m);
  });

  it('node info as JSON, with the server taken from ROBUST_ADMIN', async () => {
    const res = await ctl(['node', 'info', '--output', 'json'], { ROBUST_ADMIN: admin });
    assert.equal(res.code, 0, res.stderr);
    const info = JSON.parse(res.stdout) as NodeInfo;
    assert.equal(info.pid, server.pid);
    assert.equal(info.ready, true);
  });

  it('config show: the effective configuration, file values and defaults, with secrets redacted', async () => {
    const table = await ctl(['-s', admin, 'config', 'show']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^storage\.flush_bytes\s+4194304$/m, 'a value from the file');
    assert.match(table.stdout, /^storage\.flush_interval_ms\s+500$/m, 'a default');
    assert.match(table.stdout, /^auth\.jwt_secret\s+<redacted>$/m);
    assert.doesNotMatch(table.stdout, /do-not-show-me/);
    const json = await ctl(['-s', admin, '-o', 'json', 'config', 'show']);
    assert.equal(json.code, 0, json.stderr);
    const config = JSON.parse(json.stdout) as { node_id: number; storage: { flush_bytes: number }; auth: { jwt_secret?: string; allow_anonymous: boolean } };
    assert.equal(config.node_id, 1);
    assert.equal(config.storage.flush_bytes, 4194304);
    assert.equal(config.auth.jwt_secret, '<redacted>');
    assert.equal(config.auth.allow_anonymous, true);
    assert.doesNotMatch(json.stdout, /do-not-show-me/);
  });

  it('cluster status shows the meta leader, members and registered nodes', async () => {
    const json = await ctl(['-s', admin, '-o', 'json', 'cluster', 'status']);
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout) as ClusterStatusView;
    assert.equal(view.leader_id, 1);
    assert.ok(view.term >= 2);
    assert.ok(view.commit_index >= 2);
    assert.deepEqual(
      view.members.map((m) => [m.node_id, m.role, m.addr]),
      [[1, 'leader', `127.0.0.1:${grpc}`]],
    );
    assert.deepEqual(
      view.nodes.map((n) => [n.node_id, n.state, n.roles]),
      [[1, 'alive', ['meta', 'broker', 'journal']]],
    );
    const table = await ctl(['-s', admin, 'cluster', 'status']);
    assert.match(table.stdout, /^leader\s+1$/m);
    assert.match(table.stdout, new RegExp(`^1\\s+127\\.0\\.0\\.1:${grpc}\\s+leader\\s+\\d+$`, 'm'));
    assert.match(table.stdout, /^1\s+meta,broker,journal\s+alive\s+\d{4}-/m);
  });

  it('topic create, list, show and delete, with clear errors', async () => {
    const created = await ctl(['-s', admin, 'topic', 'create', 'orders', '--shards', '3', '--engine', 'memory']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'created topic orders (3 shards, engine memory)\n');
    const again = await ctl(['-s', admin, 'topic', 'create', 'orders']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists \(HTTP 409, already_exists\)/);
    const bad = await ctl(['-s', admin, 'topic', 'create', 'no spaces allowed']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /HTTP 400, invalid/);
    const badEngine = await ctl(['-s', admin, 'topic', 'create', 'x', '--engine', 'tape']);
    assert.match(badEngine.stderr, /engine must be one of memory, file, journal, s3/);

    const list = await ctl(['-s', admin, 'topic', 'list']);
    assert.match(list.stdout, /^orders\s+3\s+memory\s+\d{4}-/m);
    const show = JSON.parse((await ctl(['-s', admin, '-o', 'json', 'topic', 'show', 'orders'])).stdout) as { name: string; shards: number };
    assert.equal(show.shards, 3);
    const missing = await ctl(['-s', admin, 'topic', 'show', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /topic "nope" does not exist \(HTTP 404, not_found\)/);

    assert.equal((await ctl(['-s', admin, 'topic', 'delete', 'orders'])).code, 0);
    assert.equal((await ctl(['-s', admin, 'topic', 'delete', 'orders'])).code, 1);
    assert.doesNotMatch((await ctl(['-s', admin, 'topic', 'list'])).stdout, /orders/);
  });

  it('the admin API answers malformed requests with 400', async () => {
    const res = await fetch(`http://${admin}/api/v1/topics`, { method: 'POST', body: '{not json' });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: { code: 'invalid_json', message: 'request body is not valid JSON' } });
    const noName = await fetch(`http://${admin}/api/v1/topics`, { method: 'POST', body: '{"shards": 2}' });
    assert.equal(noName.status, 400);
    const badMember = await fetch(`http://${admin}/api/v1/cluster/members/abc`, { method: 'DELETE' });
    assert.equal(badMember.status, 400);
  });

  it('unknown command: one clear line and exit 2', async () => {
    const res = await ctl(['-s', admin, 'node', 'frobnicate']);
    const arity = await ctl(['-s', admin, 'topic', 'create']);
    assert.equal(arity.code, 2);
    assert.match(arity.stderr, /"topic create" takes 1 argument, got 0/);
    assert.equal(res.code, 2);
    assert.match(res.stderr.split('\n')[0]!, /^robust-ctl: unknown command "node frobnicate"$/);
    const badOutput = await ctl(['-s', admin, '-o', 'yaml', 'node', 'info']);
    assert.equal(badOutput.code, 2);
    assert.match(badOutput.stderr, /--output must be "table" or "json"/);
  });

  it('unreachable server: one clear line and exit 1', async () => {
    const port = await freePort();
    const res = await ctl(['-s', `127.0.0.1:${port}`, 'node', 'info']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr, `robust-ctl: cannot reach the admin API at http://127.0.0.1:${port}: connection refused\n`);
  });
});
