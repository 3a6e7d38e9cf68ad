import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, after } from 'node:test';
import { BIN, removeDir, run, tempDir } from '../support/server.js';

const dir = tempDir('robust-badcfg-');
after(() => removeDir(dir));

/** Start the real binary on a bad config: it must exit 2 with one stderr line naming file and key. */
async function expectConfigFailure(name: string, toml: string | undefined, key: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `${name}.toml`);
  if (toml !== undefined) writeFileSync(file, toml);
  const res = await run(BIN('robust-server'), ['start', file], { env: { ROBUST_LOG_FORMAT: 'json', ...env } });
  assert.equal(res.code, 2, `${name}: exit code (stderr: ${res.stderr})`);
  const lines = res.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${name}: one line on stderr, got:\n${res.stderr}`);
  assert.ok(lines[0]!.includes(env && Object.keys(env).length ? Object.keys(env)[0]! : file), `${name}: names the source: ${lines[0]}`);
  assert.ok(lines[0]!.includes(key), `${name}: names the key ${key}: ${lines[0]}`);
  assert.equal(res.stdout, '', `${name}: nothing started`);
}

describe('robust-server refuses bad configuration with exit code 2', () => {
  it('wrong type', () => expectConfigFailure('wrong-type', '[mqtt]\ntcp_port = "abc"\n', 'mqtt.tcp_port'));
  it('unknown key', () => expectConfigFailure('unknown-key', '[kafka]\nport = 9092\n', 'kafka.port'));
  it('bad role name', () => expectConfigFailure('bad-role', 'roles = ["meta", "borker"]\n', 'roles[1]'));
  it('port clash', () => expectConfigFailure('port-clash', 'grpc_port = 9092\n', 'kafka.tcp_port'));
  it('unreadable file', () => expectConfigFailure('does-not-exist', undefined, 'cannot read config file'));
  it('TOML syntax error', () => expectConfigFailure('syntax', 'node_id = \n', 'TOML syntax error'));
  it('bad environment override', () => expectConfigFailure('env', 'node_id = 1\n', 'http_port', { ROBUST_HTTP_PORT: 'eighty' }));
});
