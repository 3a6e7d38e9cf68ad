import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import type { NodeInfo } from '../../src/common/node-info.js';
import { RpcClientPool } from '../../src/rpc/client-pool.js';
import { grpcHealthStatus } from '../support/grpc-health.js';
import { BIN, REPO_ROOT, ServerProcess, freePort, removeDir, run, tempDir, writeTestConfig } from '../support/server.js';

async function grpcHealth(port: number): Promise<string> {
  const pool = new RpcClientPool();
  try {
    return await grpcHealthStatus(pool, `127.0.0.1:${port}`);
  } finally {
    pool.close();
  }
}

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function startNode(extra = '', roles?: string) {
  const cfg = await writeTestConfig(extra, roles);
  cleanup.push(() => removeDir(cfg.dir));
  const server = new ServerProcess(['start', cfg.file]);
  cleanup.push(() => server.kill());
  await server.waitReady(cfg.ports.http);
  return { ...cfg, server };
}

describe('robust-server lifecycle', () => {
  it('starts, logs one line per listener, turns ready, and exits 0 on SIGTERM', async () => {
    const { server, ports, dir } = await startNode();
    const listening = server.logLines().filter((l) => typeof l['listener'] === 'string');
    assert.deepEqual(
      listening.map((l) => [l['listener'], l['address']]),
      [
        ['grpc', `127.0.0.1:${ports.grpc}`],
        ['http', `127.0.0.1:${ports.http}`],
      ],
    );
    const info = (await (await fetch(`http://127.0.0.1:${ports.http}/api/v1/node`)).json()) as NodeInfo;
    assert.equal(info.node_id, 1);
    assert.deepEqual(info.roles, ['meta', 'broker', 'journal']);
    assert.equal(info.pid, server.pid);
    assert.equal(info.ready, true);
    assert.deepEqual(
      info.services.map((s) => s.name),
      ['common', 'meta', 'meta-client', 'journal', 'storage', 'broker'],
      'services start in the seed order: common, meta (then every node link to it: meta-client), journal, broker (its storage first)',
    );
    assert.ok(info.listeners.some((l) => l.name === 'grpc'));
    assert.equal(await grpcHealth(ports.grpc), 'SERVING', 'gRPC health turns SERVING once the node is ready');
    assert.ok(existsSync(join(dir, 'data', 'robust-server.pid')));
    assert.ok(existsSync(join(dir, 'data', 'meta')) && existsSync(join(dir, 'data', 'journal')), 'role services own their directories');

    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const { code } = await server.waitExit(10_000);
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 10_000);
    assert.ok(!existsSync(join(dir, 'data', 'robust-server.pid')), 'pid file removed on a clean stop');
    assert.match(server.stdout, /node 1 stopped/);
  });

  it('a meta+broker node runs only the services its roles name', async () => {
    const { server, ports } = await startNode('', '["meta", "broker"]');
    const info = (await (await fetch(`http://127.0.0.1:${ports.http}/api/v1/node`)).json()) as NodeInfo;
    assert.deepEqual(info.services.map((s) => s.name), ['common', 'meta', 'meta-client', 'storage', 'broker']);
    server.child.kill('SIGINT');
    assert.equal((await server.waitExit(10_000)).code, 0);
  });

  it('a second start on the same ports fails with "address in use" naming the port', async () => {
    const first = await startNode();
    // Same ports, different data dir, so the clash is the port and not the pid file.
    const text = readFileSync(first.file, 'utf8').replace(/data_dir = ".*"/, `data_dir = "${join(first.dir, 'data2')}"`);
    const second = join(first.dir, 'second.toml');
    writeFileSync(second, text);
    const res = await run(BIN('robust-server'), ['start', second], { env: { ROBUST_LOG_FORMAT: 'json' } });
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.ports.http} \\(http_port\\): address in use`));

    // The gRPC port clash is reported the same way when HTTP is free.
    writeFileSync(second, text.replace(/http_port = \d+/, `http_port = ${await freePort()}`));
    const res2 = await run(BIN('robust-server'), ['start', second], { env: { ROBUST_LOG_FORMAT: 'json' } });
    assert.equal(res2.code, 1, res2.stderr);
    assert.match(res2.stderr, new RegExp(`127\\.0\\.0\\.1:${first.ports.grpc} \\(grpc_port\\): address in use`));
    assert.ok(!existsSync(join(first.dir, 'data2', 'robust-server.pid')), 'a failed start leaves no pid file behind');

    first.server.child.kill('SIGTERM');
    assert.equal((await first.server.waitExit()).code, 0);
  });

  it('refuses a second node on the same data dir', async () => {
    const first = await startNode();
    const res = await run(BIN('robust-server'), ['start', first.file], { env: { ROBUST_GRPC_PORT: String(await freePort()), ROBUST_HTTP_PORT: String(await freePort()) } });
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`a node is already running with data_dir .* \\(pid ${first.server.pid}\\)`));
    first.server.child.kill('SIGTERM');
    assert.equal((await first.server.waitExit()).code, 0);
  });

  it('`robust-server stop <config>` stops the node that config started', async () => {
    const { server, file } = await startNode();
    const res = await run(BIN('robust-server'), ['stop', file]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`stopped node 1 \\(pid ${server.pid}\\)`));
    assert.equal((await server.waitExit(1_000)).code, 0);
    const again = await run(BIN('robust-server'), ['stop', file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no running node for data_dir/);
  });

  it('a second signal exits at once, while the first is still stopping gracefully', async () => {
    const { server, ports } = await startNode();
    // An inner gRPC call whose request never ends keeps the graceful stop waiting for it.
    const session = connect(`http://127.0.0.1:${ports.grpc}`);
    const stream = session.request({ ':method': 'POST', ':path': '/robust.node.v1.NodeService/GetNodeInfo', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    stream.on('error', () => {});
    session.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));

    server.child.kill('SIGINT');
    while (!server.stdout.includes('received SIGINT')) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.child.exitCode, null, 'graceful stop is still waiting on the open call');
    const t0 = Date.now();
    server.child.kill('SIGINT');
    const { code } = await server.waitExit(5_000);
    assert.equal(code, 1);
    assert.ok(Date.now() - t0 < 1_000, 'exited at once');
    assert.match(server.stdout, /received SIGINT again; exiting now/);
    session.destroy();
  });

  it('runs the default single node when no file is given', async () => {
    const cwd = tempDir('robust-default-');
    cleanup.push(() => removeDir(cwd));
    // Only the bind address is overridden: every port and path is the built-in default.
    const server = new ServerProcess(['start'], { cwd, env: { ROBUST_BIND_HOST: '127.0.0.1' } });
    cleanup.push(() => server.kill());
    await server.waitReady(58080);
    const info = (await (await fetch('http://127.0.0.1:58080/api/v1/node')).json()) as NodeInfo;
    assert.deepEqual(info.roles, ['meta', 'broker', 'journal']);
    assert.equal(info.grpc_port, 1228);
    assert.ok(existsSync(join(cwd, 'data', 'robust-server.pid')), 'data lives under ./data');
    server.child.kill('SIGTERM');
    assert.equal((await server.waitExit()).code, 0);
  });

  it('`npm start` (the README command) runs the default node, and SIGTERM to npm stops it', async () => {
    const data = tempDir('robust-npm-start-');
    cleanup.push(() => removeDir(data));
    const npm = spawn('npm', ['start'], { cwd: REPO_ROOT, env: { ...process.env, ROBUST_BIND_HOST: '127.0.0.1', ROBUST_DATA_DIR: data, ROBUST_LOG_FORMAT: 'json' }, stdio: 'ignore' });
    const npmExit = new Promise<number | null>((r) => npm.on('exit', (code) => r(code)));
    cleanup.push(() => void npm.kill('SIGKILL'));
    const deadline = Date.now() + 30_000;
    let info: NodeInfo | undefined;
    while (!info && Date.now() < deadline) {
      try {
        const res = await fetch('http://127.0.0.1:58080/api/v1/node');
        if (res.ok && ((await res.clone().json()) as NodeInfo).ready) info = (await res.json()) as NodeInfo;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(info, 'npm start brought a node up on the default admin port');
    const nodePid = info.pid;
    cleanup.push(() => {
      try {
        process.kill(nodePid, 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    });
    assert.deepEqual(info.roles, ['meta', 'broker', 'journal']);
    npm.kill('SIGTERM');
    await npmExit;
    // The node itself (not just npm) must be gone: its pid file is removed on a clean stop.
    const stopDeadline = Date.now() + 10_000;
    while (existsSync(join(data, 'robust-server.pid')) && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(join(data, 'robust-server.pid')), 'the node stopped cleanly');
    assert.throws(() => process.kill(nodePid, 0), 'the node process is gone');
  });

  it('exits 1 with a clear line when the data dir cannot be created', async () => {
    const cfg = await writeTestConfig();
    cleanup.push(() => removeDir(cfg.dir));
    const blocker = join(cfg.dir, 'file-not-dir');
    writeFileSync(blocker, '');
    const res = await run(BIN('robust-server'), ['start', cfg.file], { env: { ROBUST_DATA_DIR: join(blocker, 'data') } });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot use data_dir .*file-not-dir\/data/);
  });
});

describe('robust-server usage', () => {
  it('prints the version and help, and exits 2 on an unknown command', async () => {
    const v = await run(BIN('robust-server'), ['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^robust-server \d+\.\d+\.\d+/);
    const bad = await run(BIN('robust-server'), ['launch']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "launch"/);
    const bench = await run(BIN('robust-bench'), ['--help']);
    assert.equal(bench.code, 0);
    assert.match(bench.stdout, /usage: robust-bench/);
  });
});
