import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import { allConfigKeys, boundPorts, loadConfig } from '../../src/common/config/index.js';
import { ConfigError } from '../../src/common/errors.js';
import { REPO_ROOT, removeDir, tempDir } from '../support/server.js';

const dir = tempDir('robust-config-');
after(() => removeDir(dir));

let n = 0;
function file(text: string): string {
  const f = join(dir, `c${n++}.toml`);
  writeFileSync(f, text);
  return f;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('config defaults', () => {
  it('gives every documented default when no file and no env are given', () => {
    const { config, file: f } = loadConfig(undefined, {});
    assert.equal(f, undefined);
    assert.deepEqual(config.roles, ['meta', 'broker', 'journal']);
    assert.equal(config.node_id, 1);
    assert.equal(config.grpc_port, 1228);
    assert.equal(config.http_port, 58080);
    assert.equal(config.data_dir, './data');
    assert.deepEqual(config.meta_addrs, { '1': '127.0.0.1:1228' });
    assert.equal(config.storage.default_engine, 'file');
    assert.equal(config.storage.flush, 'async');
    assert.equal(config.storage.flush_interval_ms, 500);
    assert.equal(config.storage.flush_bytes, 8 * 1024 * 1024);
    assert.equal(config.mqtt.tcp_port, 1883);
    assert.equal(config.mqtt.ws_port, 8083);
    assert.equal(config.kafka.tcp_port, 9092);
    assert.equal(config.rocketmq.grpc_port, 8081);
    assert.equal(config.journal.tcp_port, 1778);
    assert.equal(config.log.level, 'info');
    assert.equal(config.prometheus.port, undefined);
  });

  it('keeps defaults for keys a file omits', () => {
    const { config } = loadConfig(file('http_port = 58081\n[mqtt]\ntcp_port = 1884\n'), {});
    assert.equal(config.http_port, 58081);
    assert.equal(config.mqtt.tcp_port, 1884);
    assert.equal(config.mqtt.ws_port, 8083, 'sibling key keeps its default');
    assert.equal(config.grpc_port, 1228);
    assert.equal(config.kafka.tcp_port, 9092);
  });
});

describe('environment overrides', () => {
  it('win over the file, for top-level and section keys of every type', () => {
    const f = file('http_port = 58081\nroles = ["meta", "broker", "journal"]\n[mqtt]\ntcp_port = 1884\n[log]\nlevel = "debug"\n[prometheus]\nenable = true\n');
    const { config } = loadConfig(f, {
      ROBUST_HTTP_PORT: '58082',
      ROBUST_MQTT_TCP_PORT: '1885',
      ROBUST_ROLES: 'meta,broker',
      ROBUST_LOG_LEVEL: 'warn',
      ROBUST_PROMETHEUS_ENABLE: 'false',
      ROBUST_META_ADDRS: '1=127.0.0.1:1228,2=127.0.0.1:1238',
    });
    assert.equal(config.http_port, 58082);
    assert.equal(config.mqtt.tcp_port, 1885);
    assert.deepEqual(config.roles, ['meta', 'broker']);
    assert.equal(config.log.level, 'warn');
    assert.equal(config.prometheus.enable, false);
    assert.deepEqual(config.meta_addrs, { '1': '127.0.0.1:1228', '2': '127.0.0.1:1238' });
  });

  it('accept TOML literals for arrays and tables', () => {
    const { config } = loadConfig(undefined, { ROBUST_ROLES: '["meta", "broker"]', ROBUST_META_ADDRS: '{ 1 = "10.0.0.1:1228" }' });
    assert.deepEqual(config.roles, ['meta', 'broker']);
    assert.deepEqual(config.meta_addrs, { '1': '10.0.0.1:1228' });
  });

  it('name the variable when its value is wrong', () => {
    const err = configError(() => loadConfig(undefined, { ROBUST_MQTT_TCP_PORT: 'abc' }));
    assert.equal(err.source, 'env ROBUST_MQTT_TCP_PORT');
    assert.equal(err.key, 'mqtt.tcp_port');
    assert.match(err.message, /expected a number, got "abc"/);
  });

  it('warn about ROBUST_* variables that are not keys', () => {
    const { warnings } = loadConfig(undefined, { ROBUST_MQTT_TCP_PROT: '1', ROBUST_ADMIN: '127.0.0.1:58080' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ROBUST_MQTT_TCP_PROT/);
  });
});

describe('bad configuration names the file and the key', () => {
  it('wrong type', () => {
    const f = file('[mqtt]\ntcp_port = "abc"\n');
    const err = configError(() => loadConfig(f, {}));
    assert.equal(err.source, f);
    assert.equal(err.key, 'mqtt.tcp_port');
    assert.match(err.message, new RegExp(`^${f}: mqtt.tcp_port: expected a number, got "abc"`));
  });

  it('out of range', () => {
    const err = configError(() => loadConfig(file('grpc_port = 70000\n'), {}));
    assert.equal(err.key, 'grpc_port');
    assert.match(err.detail, /<= 65535/);
    const neg = configError(() => loadConfig(file('[storage]\nflush_bytes = -1\n'), {}));
    assert.equal(neg.key, 'storage.flush_bytes');
    assert.match(neg.detail, />= 0/);
  });

  it('unknown key at the top level and inside a section', () => {
    assert.equal(configError(() => loadConfig(file('grpc_prot = 1\n'), {})).key, 'grpc_prot');
    const err = configError(() => loadConfig(file('[mqtt]\ntcp_prot = 1\n'), {}));
    assert.equal(err.key, 'mqtt.tcp_prot');
    assert.match(err.detail, /unknown key/);
    assert.equal(configError(() => loadConfig(file('[mqttt]\ntcp_port = 1\n'), {})).key, 'mqttt');
  });

  it('bad role name', () => {
    const err = configError(() => loadConfig(file('roles = ["meta", "brokr"]\n'), {}));
    assert.equal(err.key, 'roles[1]');
    assert.match(err.detail, /expected one of "meta", "broker", "journal", got "brokr"/);
  });

  it('duplicated or empty roles', () => {
    assert.match(configError(() => loadConfig(file('roles = ["meta", "meta"]\n'), {})).detail, /twice/);
    assert.match(configError(() => loadConfig(file('roles = []\n'), {})).detail, /at least one role/);
  });

  it('port clash between two listeners of this node', () => {
    const err = configError(() => loadConfig(file('http_port = 1883\n'), {}));
    assert.equal(err.key, 'mqtt.tcp_port');
    assert.match(err.detail, /port 1883 is also used by http_port/);
  });

  it('port clash only counts listeners the roles open', () => {
    // A meta-only node never opens the MQTT port, so sharing its number is fine.
    const { config } = loadConfig(file('roles = ["meta"]\nhttp_port = 1883\n'), {});
    assert.ok(!boundPorts(config).some((p) => p.key === 'mqtt.tcp_port'));
  });

  it('port clash caused by an env override names the variable', () => {
    const err = configError(() => loadConfig(undefined, { ROBUST_KAFKA_TCP_PORT: '58080' }));
    assert.equal(err.source, 'env ROBUST_KAFKA_TCP_PORT');
    assert.equal(err.key, 'kafka.tcp_port');
  });

  it('unreadable file', () => {
    const missing = join(dir, 'missing.toml');
    const err = configError(() => loadConfig(missing, {}));
    assert.equal(err.message, `${missing}: cannot read config file: no such file`);
    const folder = join(dir, 'folder.toml');
    mkdirSync(folder);
    assert.match(configError(() => loadConfig(folder, {})).message, /is a directory/);
  });

  it('TOML syntax error with line and column', () => {
    const f = file('node_id = 1\nroles = [meta]\n');
    const err = configError(() => loadConfig(f, {}));
    assert.match(err.message, new RegExp(`^${f}:2:\\d+: TOML syntax error`));
  });

  it('a meta node missing from meta_addrs', () => {
    const err = configError(() => loadConfig(file('node_id = 2\n'), {}));
    assert.equal(err.key, 'meta_addrs');
    assert.match(err.detail, /node 2 has the meta role/);
    // Without the meta role it need not be listed.
    loadConfig(file('node_id = 2\nroles = ["broker"]\n'), {});
  });

  it('journal quorums out of order', () => {
    const err = configError(() => loadConfig(file('[journal]\nensemble_size = 2\nwrite_quorum = 3\nack_quorum = 2\n'), {}));
    assert.equal(err.key, 'journal.write_quorum');
  });

  it('malformed meta address', () => {
    const err = configError(() => loadConfig(file('meta_addrs = { 1 = "localhost" }\n'), {}));
    assert.equal(err.key, 'meta_addrs.1');
  });
});

describe('shipped config files', () => {
  const configDir = join(REPO_ROOT, 'config');
  const tomlFiles = (sub: string) =>
    readdirSync(join(configDir, sub))
      .filter((f) => f.endsWith('.toml'))
      .map((f) => join(configDir, sub, f));

  it('the template documents every key and loads to exactly the defaults', () => {
    const template = join(configDir, 'server.toml.template');
    const text = readFileSync(template, 'utf8');
    const documented = new Set<string>();
    let section = '';
    for (const line of text.split('\n')) {
      const header = /^\[(\w+)\]/.exec(line);
      if (header) section = header[1]!;
      const key = /^#\s*(\w+)\s*=/.exec(line);
      if (key) documented.add(section ? `${section}.${key[1]}` : key[1]!);
    }
    const missing = allConfigKeys().filter((k) => !documented.has(k));
    assert.deepEqual(missing, [], `keys missing from server.toml.template: ${missing.join(', ')}`);
    assert.deepEqual(loadConfig(template, {}).config, loadConfig(undefined, {}).config);
  });

  it('every example loads, and the files of one deployment never share a port', () => {
    const standalone = [join(configDir, 'standalone.toml'), join(configDir, 'standalone-memory.toml')];
    for (const f of standalone) loadConfig(f, {});
    assert.deepEqual(loadConfig(join(configDir, 'standalone-memory.toml'), {}).config.roles, ['meta', 'broker']);
    assert.equal(loadConfig(join(configDir, 'standalone-memory.toml'), {}).config.storage.default_engine, 'memory');

    for (const sub of ['cluster', 'separated']) {
      const files = tomlFiles(sub);
      assert.ok(files.length >= 3, `${sub} has its example files`);
      const owner = new Map<number, string>();
      for (const f of files) {
        const { config } = loadConfig(f, {});
        for (const p of boundPorts(config)) {
          assert.ok(!owner.has(p.port), `${f} ${p.key}=${p.port} is also used by ${owner.get(p.port)}`);
          owner.set(p.port, `${f} ${p.key}`);
        }
      }
    }
  });

  it('cluster node N uses every default port plus 10 x N', () => {
    const defaults = loadConfig(undefined, {}).config;
    for (const nodeId of [1, 2, 3]) {
      const { config } = loadConfig(join(configDir, 'cluster', `node${nodeId}.toml`), {});
      assert.equal(config.node_id, nodeId);
      assert.deepEqual(config.roles, ['meta', 'broker', 'journal']);
      assert.equal(config.data_dir, `./data/node${nodeId}`);
      assert.equal(config.http_port, 58080 + 10 * nodeId);
      const ports = new Map(boundPorts(config).map((p) => [p.key, p.port]));
      for (const p of boundPorts(defaults)) assert.equal(ports.get(p.key), p.port + 10 * nodeId, `node${nodeId} ${p.key}`);
    }
  });
});
