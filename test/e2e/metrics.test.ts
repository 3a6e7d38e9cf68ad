import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it, after, before } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ServerProcess, freePort, removeDir, writeTestConfig } from '../support/server.js';

/** prom-client's default Node.js gauges whose names promtool's linter dislikes; not ours to rename. */
const LIBRARY_LINT_EXCEPTIONS = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']);

function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version']).status === 0;
}

/** `promtool check metrics`: exit 1 is a parse error, exit 3 lint findings only. */
function promtoolCheck(text: string): { status: number | null; findings: string[] } {
  const res = spawnSync('promtool', ['check', 'metrics'], { input: text });
  const findings = `${res.stdout}${res.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { status: res.status, findings };
}

describe('Prometheus metrics', () => {
  let server: ServerProcess;
  let http: number;
  let promPort: number;
  let dir: string;

  before(async () => {
    promPort = await freePort();
    const cfg = await writeTestConfig(`\n[prometheus]\nport = ${promPort}\n`);
    dir = cfg.dir;
    http = cfg.ports.http;
    server = new ServerProcess(['start', cfg.file]);
    await server.waitReady(http);
  });
  after(async () => {
    await server.kill();
    removeDir(dir);
  });

  async function scrape(port: number): Promise<{ text: string; contentType: string | null }> {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    return { text: await res.text(), contentType: res.headers.get('content-type') };
  }

  it('serves the Prometheus text format on the admin port, with process and node metrics', async () => {
    await fetch(`http://127.0.0.1:${http}/no/such/endpoint`);
    const { text, contentType } = await scrape(http);
    assert.match(contentType ?? '', /^text\/plain; version=0\.0\.4/);
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    for (const name of ['robust_storage_append_bytes_total', 'robust_storage_append_seconds', 'robust_storage_fsync_seconds', 'robust_storage_recovery_seconds', 'robust_meta_term', 'robust_meta_commit_index', 'robust_meta_applied_index', 'robust_meta_is_leader', 'robust_meta_log_entries', 'robust_meta_leader_changes_total', 'robust_meta_proposal_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'robust_node_info', 'robust_node_uptime_seconds', 'robust_service_ready', 'robust_admin_http_requests_total']) {
      assert.ok(families.has(name), `metric ${name} present`);
    }
    const info = families.get('robust_node_info')!;
    assert.equal(info.type, 'GAUGE');
    assert.deepEqual(info.metrics[0]!.labels, { node_id: '1', cluster: 'robustmq', version: info.metrics[0]!.labels!['version'], roles: 'meta,broker,journal' });
    const ready = families.get('robust_service_ready')!;
    assert.deepEqual(
      ready.metrics.map((m) => [m.labels!['service'], m.value]),
      [
        ['common', '1'],
        ['meta', '1'],
        ['meta-client', '1'],
        ['journal', '1'],
        ['storage', '1'],
        ['broker', '1'],
      ],
    );
    const notFound = families.get('robust_admin_http_requests_total')!.metrics.find((m) => m.labels!['status'] === '404');
    assert.ok(notFound && Number(notFound.value) >= 1, 'the 404 above was counted');
  });

  it('serves the same metrics on [prometheus] port', async () => {
    const { text } = await scrape(promPort);
    const names = parsePrometheusTextFormat(text).map((f) => f.name);
    assert.ok(names.includes('robust_node_info'));
    assert.ok(names.includes('process_cpu_user_seconds_total'));
    const other = await fetch(`http://127.0.0.1:${promPort}/api/v1/node`);
    assert.equal(other.status, 404, 'the metrics port serves metrics only');
  });

  it('passes promtool check metrics (required in CI)', { skip: !promtoolAvailable() && !process.env['CI'] ? 'promtool not installed (CI installs it)' : false }, async () => {
    assert.ok(promtoolAvailable(), 'promtool must be installed in CI (Debian package prometheus)');
    const { text } = await scrape(http);
    const { status, findings } = promtoolCheck(text);
    assert.ok(status === 0 || status === 3, `promtool could not parse the metrics (exit ${status}): ${findings.join('; ')}`);
    const ours = findings.filter((f) => !LIBRARY_LINT_EXCEPTIONS.has(f.split(' ')[0]!));
    assert.deepEqual(ours, [], 'no lint findings on our own metrics');
  });
});
