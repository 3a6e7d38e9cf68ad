/**
 * The shipped deployment configs under config/ (no processes started): every
 * TOML file loads with the server's own loader (the code `robust-server start`
 * runs), the files of one deployment directory describe one cluster (same
 * cluster name, meta_addrs and journal quorums, distinct node ids, data
 * directories and ports), no two deployments share a port, admin ports stay in
 * the range .ci/run reserves, each replication mode has the quorums and flush
 * it is named for, and docs/deployment.md names every file.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { boundPorts, loadConfig, type Config } from '../../src/common/config/index.js';
import { REPO_ROOT } from '../support/server.js';

const CONFIG_DIR = join(REPO_ROOT, 'config');
/** .ci/run reserves these for the shipped configs' admin ports (they lie in Linux's ephemeral range). */
const ADMIN_RANGE = [58080, 58400] as const;

interface Loaded {
  /** Path relative to the repository root, e.g. "config/cluster/node1.toml". */
  file: string;
  config: Config;
}

function load(path: string): Loaded {
  // An empty environment: the files alone, no ROBUST_* override from the test runner.
  return { file: relative(REPO_ROOT, path), config: loadConfig(path, {}).config };
}

/** Top-level files are each a deployment of their own; every subdirectory is one deployment. */
function deployments(): Map<string, Loaded[]> {
  const out = new Map<string, Loaded[]>();
  for (const name of readdirSync(CONFIG_DIR).sort()) {
    const path = join(CONFIG_DIR, name);
    if (statSync(path).isDirectory()) {
      const files = readdirSync(path)
        .filter((f) => f.endsWith('.toml'))
        .sort()
        .map((f) => load(join(path, f)));
      if (files.length > 0) out.set(`config/${name}/`, files);
    } else if (name.endsWith('.toml')) {
      out.set(`config/${name}`, [load(path)]);
    }
  }
  return out;
}

const quorums = (c: Config) => ({ ensemble_size: c.journal.ensemble_size, write_quorum: c.journal.write_quorum, ack_quorum: c.journal.ack_quorum });
const hasRole = (l: Loaded, role: 'meta' | 'broker' | 'journal') => l.config.roles.includes(role);

describe('shipped deployment configs', () => {
  const all = deployments();

  it('every TOML file under config/ (and the template) loads with the server config loader', () => {
    const files = [...all.values()].flat();
    assert.ok(files.length >= 19, `found ${files.length} config files`);
    for (const dir of ['cluster/', 'cluster-async/', 'cluster-sync/', 'separated/']) assert.ok(all.has(`config/${dir}`), `config/${dir} exists`);
    // As shipped the template is all comments: the built-in defaults.
    assert.deepEqual(loadConfig(join(CONFIG_DIR, 'server.toml.template'), {}).config, loadConfig(undefined, {}).config);
  });

  for (const [name, files] of deployments()) {
    if (files.length < 2) continue;
    it(`${name}: one cluster — same cluster_name, meta_addrs and quorums; distinct ids, data dirs and ports`, () => {
      const first = files[0]!.config;
      const ids = new Set<number>();
      const dataDirs = new Set<string>();
      const portOwner = new Map<number, string>();
      for (const { file, config } of files) {
        assert.equal(config.cluster_name, first.cluster_name, `${file} cluster_name`);
        assert.deepEqual(config.meta_addrs, first.meta_addrs, `${file} meta_addrs`);
        assert.deepEqual(quorums(config), quorums(first), `${file} [journal] quorums`);
        assert.ok(!ids.has(config.node_id), `${file}: node_id ${config.node_id} used twice`);
        ids.add(config.node_id);
        assert.ok(!dataDirs.has(config.data_dir), `${file}: data_dir ${config.data_dir} used twice`);
        dataDirs.add(config.data_dir);
        for (const p of boundPorts(config)) {
          assert.ok(!portOwner.has(p.port), `${file} ${p.key} = ${p.port} is also ${portOwner.get(p.port)}`);
          portOwner.set(p.port, `${file} ${p.key}`);
        }
      }

      // meta_addrs lists exactly the meta nodes, each at its own advertised gRPC address; an odd count for Raft.
      const metas = files.filter((l) => hasRole(l, 'meta'));
      assert.deepEqual(
        Object.keys(first.meta_addrs).map(Number).sort((a, b) => a - b),
        metas.map((l) => l.config.node_id).sort((a, b) => a - b),
        'meta_addrs names the meta nodes of this directory',
      );
      for (const { file, config } of metas) assert.equal(first.meta_addrs[String(config.node_id)], `${config.advertised_host}:${config.grpc_port}`, `${file} is reachable at its meta_addrs entry`);
      assert.equal(metas.length % 2, 1, 'an odd number of meta nodes');

      // Brokers storing on the journal agree on how, and there are enough journal nodes for the ensemble.
      const brokers = files.filter((l) => hasRole(l, 'broker'));
      assert.ok(brokers.length >= 1, 'at least one broker');
      const journals = files.filter((l) => hasRole(l, 'journal'));
      for (const { file, config } of brokers) {
        assert.equal(config.storage.default_engine, brokers[0]!.config.storage.default_engine, `${file} default_engine`);
        assert.equal(config.storage.flush, brokers[0]!.config.storage.flush, `${file} flush`);
        if (config.storage.default_engine === 'journal') assert.ok(journals.length >= config.journal.ensemble_size, `${file}: ensemble of ${config.journal.ensemble_size} needs as many journal nodes, have ${journals.length}`);
      }
    });
  }

  it('no two deployments share a port (only the single-node files, alternatives to each other, use the defaults), and admin ports are in the reserved range', () => {
    const owner = new Map<number, { deployment: string; what: string }>();
    for (const [name, files] of all) {
      for (const { file, config } of files) {
        assert.ok(config.http_port >= ADMIN_RANGE[0] && config.http_port <= ADMIN_RANGE[1], `${file} http_port ${config.http_port} outside ${ADMIN_RANGE.join('-')}`);
        for (const p of boundPorts(config)) {
          const prev = owner.get(p.port);
          const bothSingleFiles = prev !== undefined && !prev.deployment.endsWith('/') && !name.endsWith('/');
          assert.ok(prev === undefined || prev.deployment === name || bothSingleFiles, `${file} ${p.key} = ${p.port} is also ${prev?.what}`);
          if (!prev) owner.set(p.port, { deployment: name, what: `${file} ${p.key}` });
        }
      }
    }
  });

  it('each replication mode has the quorums and flush it is named for', () => {
    const expect = (dir: string, q: { e: number; w: number; a: number }, flush: 'sync' | 'async', engine = 'journal') => {
      for (const { file, config } of all.get(`config/${dir}/`)!) {
        assert.deepEqual(quorums(config), { ensemble_size: q.e, write_quorum: q.w, ack_quorum: q.a }, `${file} quorums`);
        if (hasRole({ file, config }, 'broker')) {
          assert.equal(config.storage.flush, flush, `${file} flush`);
          assert.equal(config.storage.default_engine, engine, `${file} default_engine`);
        }
      }
    };
    expect('cluster', { e: 3, w: 3, a: 2 }, 'async');
    expect('cluster-async', { e: 2, w: 2, a: 1 }, 'async');
    expect('cluster-sync', { e: 2, w: 2, a: 2 }, 'sync');
    expect('separated', { e: 3, w: 3, a: 2 }, 'async');
    for (const dir of ['cluster', 'cluster-async', 'cluster-sync']) {
      const files = all.get(`config/${dir}/`)!;
      assert.equal(files.length, 3, `${dir}: three nodes`);
      for (const l of files) assert.deepEqual(l.config.roles, ['meta', 'broker', 'journal'], `${l.file} runs every role`);
    }
    const roles = all.get('config/separated/')!.map((l) => [l.file.replace('config/separated/', ''), l.config.node_id, l.config.roles.join(',')]);
    assert.deepEqual(roles, [
      ['broker1.toml', 11, 'broker'],
      ['broker2.toml', 12, 'broker'],
      ['journal1.toml', 21, 'journal'],
      ['journal2.toml', 22, 'journal'],
      ['journal3.toml', 23, 'journal'],
      ['meta1.toml', 1, 'meta'],
      ['meta2.toml', 2, 'meta'],
      ['meta3.toml', 3, 'meta'],
    ]);
    const memory = all.get('config/standalone-memory.toml')![0]!.config;
    assert.deepEqual([memory.roles, memory.storage.default_engine], [['meta', 'broker'], 'memory']);
    const local = all.get('config/standalone.toml')![0]!.config;
    assert.deepEqual([local.roles, local.storage.default_engine], [['meta', 'broker', 'journal'], 'file']);
  });

  it('docs/deployment.md names every shipped config file and its start command', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'deployment.md'), 'utf8');
    for (const { file } of [...all.values()].flat()) {
      assert.ok(doc.includes(`bin/robust-server start ${file}`), `docs/deployment.md lacks "bin/robust-server start ${file}"`);
    }
    assert.match(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), /\(docs\/deployment\.md\)/, 'README links docs/deployment.md');
  });
});
