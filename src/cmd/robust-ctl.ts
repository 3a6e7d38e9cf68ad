import { parseArgs } from 'node:util';
import { AdminApiError, AdminClient, AdminUnreachableError } from '../admin/client.js';
import { renderPairs, renderTable } from '../admin/render.js';
import type { NodeInfo } from '../common/node-info.js';
import { VERSION } from '../common/package-info.js';
import type { ClusterStatusView } from '../meta/service.js';
import { CtlUsageError, MQTT_COMMANDS, MQTT_USAGE, type MqttCtlOptions } from './ctl-mqtt.js';
import { KAFKA_COMMANDS, KAFKA_USAGE } from './ctl-kafka.js';
import { JOURNAL_COMMANDS, JOURNAL_USAGE } from './ctl-journal.js';
import { ROCKETMQ_COMMANDS, ROCKETMQ_USAGE, type RocketmqCtlOptions } from './ctl-rocketmq.js';

const USAGE = `usage: robust-ctl [--server host:port] [--output table|json] <command>

commands:
  node info                          this node: id, roles, version, uptime, listeners, services
  config show                        this node's effective configuration (secrets redacted)
  cluster status                     meta leader, term, commit index, members and registered nodes
  cluster members                    the meta Raft members and their replication progress
  cluster add-member <id> <host:port>
                                     add a meta node (learner first, voter once caught up);
                                     start it with [meta] join = true
  cluster remove-member <id>         remove a meta node from the Raft group
  cluster transfer-leader [<id>]     hand meta leadership to a node (default: the most up to date)
  cluster rebalance [--dry-run]      even out shard leadership of journal-backed topics over the live brokers
  topic list                         all topics
  topic create <name> [--shards N] [--engine memory|file|journal|s3] [--config key=value,...]
  topic config <name> key=value...   set topic settings, e.g. flush=sync; key= (empty) removes one
  topic show <name>
  topic shards <name>                per shard: engine, start and end offset, bytes
  topic produce <name> <value>... [--shard N] [--key K] [--tag T]
                                     append records by hand (one per value)
  topic consume <name> [--shard N] [--from OFFSET] [--max N]
                                     read records by offset
  topic delete <name>
${MQTT_USAGE}${KAFKA_USAGE}${ROCKETMQ_USAGE}${JOURNAL_USAGE}
options:
  -s, --server      admin address of a node (default: $ROBUST_ADMIN or 127.0.0.1:58080)
  -o, --output      table (default) or json
  -h, --help        show this help
  -v, --version     print the version
`;

type Output = 'table' | 'json';

interface Context {
  client: AdminClient;
  output: Output;
  args: string[];
  options: { shards?: string; engine?: string; config?: string; shard?: string; key?: string; tag?: string; from?: string; max?: string; 'dry-run'?: boolean } & MqttCtlOptions & RocketmqCtlOptions;
}

interface Command {
  words: string[];
  /** Positional arguments after the words: [min, max]. */
  arity: [number, number];
  run(ctx: Context): Promise<string>;
}

interface TopicView {
  name: string;
  shards: number;
  engine: string;
  createdAtMs: number;
  retentionMs?: number;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

function positiveInt(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) usageError(`${what} must be a positive integer, got "${raw}"`);
  return n;
}

function parsePairs(pairs: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) usageError(`${what}: expected key=value, got "${p}"`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

function nonNegativeInt(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) usageError(`${what} must be an integer >= 0, got "${raw}"`);
  return n;
}

/** `section.key` rows of a configuration object; arrays and tables below a key are shown as JSON. */
function flattenConfig(config: Record<string, unknown>, prefix = ''): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(config)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && prefix === '') rows.push(...flattenConfig(v as Record<string, unknown>, `${key}.`));
    else rows.push([key, typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  return rows;
}

function membersTable(view: ClusterStatusView): string {
  return renderTable(
    ['NODE', 'ADDRESS', 'ROLE', 'MATCH_INDEX'],
    view.members.map((m) => [m.node_id, m.addr, m.role, m.match_index]),
  );
}

const COMMANDS: Command[] = [
  {
    words: ['node', 'info'],
    arity: [0, 0],
    async run({ client, output }) {
      const info = await client.get<NodeInfo>('/api/v1/node');
      if (output === 'json') return json(info);
      return (
        renderPairs([
          ['node_id', info.node_id],
          ['cluster', info.cluster_name],
          ['roles', info.roles.join(',')],
          ['version', info.version],
          ['uptime_s', info.uptime_seconds],
          ['ready', info.ready],
          ['pid', info.pid],
        ]) +
        '\n' +
        renderTable(['LISTENER', 'PROTOCOL', 'ADDRESS'], info.listeners.map((l) => [l.name, l.protocol, l.address])) +
        '\n' +
        renderTable(['SERVICE', 'READY'], info.services.map((s) => [s.name, s.ready]))
      );
    },
  },
  {
    words: ['config', 'show'],
    arity: [0, 0],
    async run({ client, output }) {
      const config = await client.get<Record<string, unknown>>('/api/v1/config');
      if (output === 'json') return json(config);
      return renderTable(['KEY', 'VALUE'], flattenConfig(config));
    },
  },
  {
    words: ['cluster', 'status'],
    arity: [0, 0],
    async run({ client, output }) {
      const view = await client.get<ClusterStatusView & { under_replicated_segments?: number }>('/api/v1/cluster');
      if (output === 'json') return json(view);
      return (
        renderPairs([
          ['cluster', view.cluster_name],
          ['leader', view.leader_id || 'none (election in progress)'],
          ['term', view.term],
          ['commit_index', view.commit_index],
          ['answered_by', view.answered_by],
          ['under_replicated_segments', view.under_replicated_segments],
        ]) +
        '\n' +
        membersTable(view) +
        '\n' +
        renderTable(['NODE', 'ROLES', 'STATE', 'LAST_HEARTBEAT'], view.nodes.map((n) => [n.node_id, n.roles.join(','), n.state, n.last_heartbeat_ms ? new Date(n.last_heartbeat_ms).toISOString() : null]))
      );
    },
  },
  {
    words: ['cluster', 'members'],
    arity: [0, 0],
    async run({ client, output }) {
      const view = await client.get<ClusterStatusView>('/api/v1/cluster');
      return output === 'json' ? json(view.members) : membersTable(view);
    },
  },
  {
    words: ['cluster', 'add-member'],
    arity: [2, 2],
    async run({ client, output, args }) {
      const res = await client.post<{ node_id: number; role: string; note?: string }>('/api/v1/cluster/members', { node_id: positiveInt(args[0], 'node id'), addr: args[1] });
      return output === 'json' ? json(res) : `node ${res.node_id} is now a ${res.role}${res.note ? `: ${res.note}` : ''}\n`;
    },
  },
  {
    words: ['cluster', 'remove-member'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<unknown>(`/api/v1/cluster/members/${positiveInt(args[0], 'node id')}`);
      return output === 'json' ? json(res) : `removed node ${args[0]} from the meta group\n`;
    },
  },
  {
    words: ['cluster', 'transfer-leader'],
    arity: [0, 1],
    async run({ client, output, args }) {
      const body = args[0] === undefined ? {} : { node_id: positiveInt(args[0], 'node id') };
      const res = await client.post<{ leader_id: number }>('/api/v1/cluster/transfer-leader', body);
      return output === 'json' ? json(res) : `meta leader is now node ${res.leader_id}\n`;
    },
  },
  {
    words: ['cluster', 'rebalance'],
    arity: [0, 0],
    async run({ client, output, options }) {
      const dry = options['dry-run'] === true;
      const res = await client.post<{ moves: Array<{ topic: string; shard: number; from: number; to: number; ok: boolean; error?: string }>; leaders: Record<string, number> }>(`/api/v1/cluster/rebalance${dry ? '?dry_run=true' : ''}`, {});
      if (output === 'json') return json(res);
      const head = res.moves.length === 0 ? 'leadership is already even; nothing to move\n' : renderTable(['TOPIC', 'SHARD', 'FROM', 'TO', dry ? 'PLANNED' : 'MOVED'], res.moves.map((m) => [m.topic, m.shard, m.from, m.to, m.ok ? 'yes' : `no: ${m.error ?? ''}`]));
      const leaders = Object.entries(res.leaders).map(([id, n]) => `node ${id}: ${n}`).join(', ');
      return `${head}shards led${dry ? ' after the moves' : ''}: ${leaders}\n`;
    },
  },
  {
    words: ['topic', 'list'],
    arity: [0, 0],
    async run({ client, output }) {
      const { topics } = await client.get<{ topics: TopicView[] }>('/api/v1/topics');
      if (output === 'json') return json(topics);
      return renderTable(['TOPIC', 'SHARDS', 'ENGINE', 'CREATED'], topics.map((t) => [t.name, t.shards, t.engine, new Date(t.createdAtMs).toISOString()]));
    },
  },
  {
    words: ['topic', 'create'],
    arity: [1, 1],
    async run({ client, output, args, options }) {
      const body: Record<string, unknown> = { name: args[0] };
      if (options.shards !== undefined) body['shards'] = positiveInt(options.shards, '--shards');
      if (options.engine !== undefined) body['engine'] = options.engine;
      if (options.config !== undefined) body['config'] = parsePairs(options.config.split(','), '--config');
      const topic = await client.post<TopicView>('/api/v1/topics', body);
      return output === 'json' ? json(topic) : `created topic ${topic.name} (${topic.shards} shard${topic.shards === 1 ? '' : 's'}, engine ${topic.engine})\n`;
    },
  },
  {
    words: ['topic', 'config'],
    arity: [2, 1000],
    async run({ client, output, args }) {
      const [topic, ...changes] = args;
      const pairs = parsePairs(changes, 'topic config');
      const unset = Object.keys(pairs).filter((k) => pairs[k] === '');
      const set = Object.fromEntries(Object.entries(pairs).filter(([, v]) => v !== ''));
      const res = await client.patch<{ name: string; config: Record<string, string> }>(`/api/v1/topics/${encodeURIComponent(topic!)}`, { set, unset });
      return output === 'json' ? json(res) : `topic ${res.name} config: ${JSON.stringify(res.config)}\n`;
    },
  },
  {
    words: ['topic', 'show'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const topic = await client.get<TopicView & Record<string, unknown>>(`/api/v1/topics/${encodeURIComponent(args[0]!)}`);
      if (output === 'json') return json(topic);
      return renderPairs(Object.entries(topic).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : (v as string | number)]));
    },
  },
  {
    words: ['topic', 'shards'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.get<{ topic: string; shards: Array<{ shard: string; engine: string; startOffset?: string; endOffset?: string; bytes?: number; local?: false }> }>(`/api/v1/topics/${encodeURIComponent(args[0]!)}/shards`);
      if (output === 'json') return json(res);
      return renderTable(['SHARD', 'ENGINE', 'START_OFFSET', 'END_OFFSET', 'BYTES'], res.shards.map((s) => (s.local === false ? [s.shard, s.engine, 'not on this node', null, null] : [s.shard, s.engine, s.startOffset, s.endOffset, s.bytes])));
    },
  },
  {
    words: ['topic', 'produce'],
    arity: [2, 10_000],
    async run({ client, output, args, options }) {
      const [topic, ...values] = args;
      const shard = options.shard === undefined ? 0 : nonNegativeInt(options.shard, '--shard');
      const records = values.map((value) => ({ value, ...(options.key !== undefined ? { key: options.key } : {}), ...(options.tag !== undefined ? { tag: options.tag } : {}) }));
      const res = await client.post<{ base_offset: string; count: number }>(`/api/v1/topics/${encodeURIComponent(topic!)}/shards/${shard}/records`, { records });
      return output === 'json' ? json(res) : `appended ${res.count} record${res.count === 1 ? '' : 's'} to ${topic}-${shard} at offset ${res.base_offset}\n`;
    },
  },
  {
    words: ['topic', 'consume'],
    arity: [1, 1],
    async run({ client, output, args, options }) {
      const shard = options.shard === undefined ? 0 : nonNegativeInt(options.shard, '--shard');
      const from = options.from === undefined ? 0 : nonNegativeInt(options.from, '--from');
      const max = options.max === undefined ? 100 : positiveInt(options.max, '--max');
      const res = await client.get<{ records: Array<{ offset: string; timestamp: number; key: string | null; value: string | null; tag?: string }> }>(
        `/api/v1/topics/${encodeURIComponent(args[0]!)}/shards/${shard}/records?from=${from}&max=${max}`,
      );
      if (output === 'json') return json(res.records);
      return renderTable(['OFFSET', 'TIMESTAMP', 'KEY', 'TAG', 'VALUE'], res.records.map((r) => [r.offset, new Date(r.timestamp).toISOString(), r.key, r.tag, r.value]));
    },
  },
  {
    words: ['topic', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<unknown>(`/api/v1/topics/${encodeURIComponent(args[0]!)}`);
      return output === 'json' ? json(res) : `deleted topic ${args[0]}\n`;
    },
  },
  ...MQTT_COMMANDS,
  ...KAFKA_COMMANDS,
  ...ROCKETMQ_COMMANDS,
  ...JOURNAL_COMMANDS,
];

function usageError(message: string): never {
  process.stderr.write(`robust-ctl: ${message}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        server: { type: 'string', short: 's' },
        output: { type: 'string', short: 'o', default: 'table' },
        shards: { type: 'string' },
        engine: { type: 'string' },
        shard: { type: 'string' },
        config: { type: 'string' },
        key: { type: 'string' },
        tag: { type: 'string' },
        from: { type: 'string' },
        max: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        client: { type: 'string' },
        qos: { type: 'string' },
        retain: { type: 'boolean' },
        permission: { type: 'string' },
        action: { type: 'string' },
        topic: { type: 'string' },
        user: { type: 'string' },
        'client-id': { type: 'string' },
        position: { type: 'string' },
        password: { type: 'string' },
        superuser: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        to: { type: 'string' },
        value: { type: 'string' },
        partitions: { type: 'string' },
        queues: { type: 'string' },
        type: { type: 'string' },
        scan: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`robust-ctl ${VERSION}\n`);
    return;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length === 0) usageError('no command given');
  const output = values.output;
  if (output !== 'table' && output !== 'json') usageError(`--output must be "table" or "json", got "${output}"`);
  const command = COMMANDS.find((c) => c.words.every((w, i) => w === positionals[i]));
  if (!command) usageError(`unknown command "${positionals.join(' ')}"`);
  const args = positionals.slice(command.words.length);
  const [min, max] = command.arity;
  if (args.length < min || args.length > max) usageError(`"${command.words.join(' ')}" takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${args.length}`);

  const client = new AdminClient(values.server ?? process.env['ROBUST_ADMIN'] ?? '127.0.0.1:58080', 60_000);
  try {
    process.stdout.write(await command.run({ client, output, args, options: values }));
  } catch (err) {
    if (err instanceof CtlUsageError) usageError(err.message);
    if (err instanceof AdminUnreachableError || err instanceof AdminApiError) {
      process.stderr.write(`robust-ctl: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

void main();
