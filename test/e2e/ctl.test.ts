import assert from 'node:assert/strict';
import { describe, it, after, before } from 'node:test';
import type { ClusterView, NodeInfo } from '../../src/common/node-info.js';
import { BIN, ServerProcess, freePort, removeDir, run, writeTestConfig } from '../support/server.js';

describe('robust-ctl', () => {
  let server: ServerProcess;
  let admin: string;
  let dir: string;
  let grpc: number;

  before(async () => {
    const cfg = await writeTestConfig();
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

  it('cluster status lists this node and the configured meta nodes', async () => {
    const json = await ctl(['-s', admin, '-o', 'json', 'cluster', 'status']);
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout) as ClusterView;
    assert.equal(view.answered_by, 1);
    assert.deepEqual(
      view.nodes.map((n) => [n.node_id, n.state]),
      [[1, 'self']],
    );
    const table = await ctl(['-s', admin, 'cluster', 'status']);
    assert.match(table.stdout, /^NODE\s+GRPC_ADDRESS\s+STATE/m);
    assert.match(table.stdout, new RegExp(`^1\\s+127\\.0\\.0\\.1:${grpc}\\s+self\\s+meta,broker,journal`, 'm'));
  });

  it('unknown command: one clear line and exit 2', async () => {
    const res = await ctl(['-s', admin, 'node', 'frobnicate']);
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
