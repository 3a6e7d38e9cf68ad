/**
 * robust-ctl's RocketMQ commands, named after mqadmin's (`updateTopic`,
 * `topicRoute`, `consumerProgress`, `queryMsgByKey`, ...), over the admin
 * API's /api/v1/rocketmq routes.
 */
import type { AdminClient } from '../admin/client.js';
import { renderPairs, renderTable } from '../admin/render.js';
import type {
  RocketmqGroupSummaryView,
  RocketmqGroupView,
  RocketmqLookupView,
  RocketmqMessageView,
  RocketmqTopicRouteView,
  RocketmqTopicView,
  RocketmqUpdateTopicView,
} from '../admin/rocketmq-routes.js';
import { CtlUsageError } from './ctl-mqtt.js';

export const ROCKETMQ_USAGE = `  rocketmq topicList                 topics with their queues and message type
  rocketmq updateTopic <topic> [--queues N] [--type NORMAL|FIFO|DELAY|TRANSACTION|MIXED]
                                     create a topic, or add queues / change its message type
  rocketmq deleteTopic <topic>       delete a topic (of every protocol) and its messages
  rocketmq topicRoute <topic>        queues, their leaders and the endpoints clients are routed to
  rocketmq consumerProgress [<group>]
                                     consumer groups with lag; for one group, per queue the broker
                                     offset, consumer offset, lag and messages in flight
  rocketmq queryMsgByKey <topic> <key> [--max N] [--scan N]
                                     messages with this key among the newest --scan (10000) per queue
  rocketmq queryMsgById <topic> <message-id> [--scan N]
                                     one message by its id (scans from shortly before its send time)
`;

export interface RocketmqCtlOptions {
  queues?: string;
  type?: string;
  scan?: string;
  max?: string;
}

export interface RocketmqCtlCommand {
  words: string[];
  arity: [number, number];
  run(ctx: { client: AdminClient; output: 'table' | 'json'; args: string[]; options: RocketmqCtlOptions }): Promise<string>;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
const enc = encodeURIComponent;
const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function positive(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new CtlUsageError(`${what} must be a positive integer, got "${raw}"`);
  return Number(raw);
}

function lookupQuery(options: RocketmqCtlOptions, withMax: boolean): string {
  const params = new URLSearchParams();
  const scan = positive(options.scan, '--scan');
  if (scan !== undefined) params.set('scan', String(scan));
  const max = withMax ? positive(options.max, '--max') : undefined;
  if (max !== undefined) params.set('max', String(max));
  return params.size > 0 ? `${params.toString()}` : '';
}

/** A body for a table cell: one line, cut short. */
function preview(m: RocketmqMessageView): string {
  if (m.body_encoding === 'base64') return `(${m.body_size} bytes, binary)`;
  const line = m.body.replace(/\s+/g, ' ');
  return line.length > 40 ? `${line.slice(0, 39)}…` : line;
}

function scanSummary(r: RocketmqLookupView): string {
  const elsewhere = r.queues_elsewhere.length > 0 ? `; queues ${r.queues_elsewhere.join(',')} are served by other brokers (ask their admin API)` : '';
  const partial = r.partial ? `; older messages were not scanned (raise --scan, now ${r.scan_per_queue} per queue)` : '';
  return `scanned ${r.scanned} message${r.scanned === 1 ? '' : 's'} on queue${r.queues_scanned.length === 1 ? '' : 's'} ${r.queues_scanned.join(',') || '-'}${elsewhere}${partial}\n`;
}

function messageDetail(m: RocketmqMessageView): string {
  return (
    renderPairs([
      ['topic', m.topic],
      ['queue', m.queue],
      ['offset', m.offset],
      ['message_id', m.message_id],
      ['type', m.type],
      ['tag', m.tag],
      ['keys', m.keys.join(',') || null],
      ['message_group', m.message_group],
      ['born', time(m.born_ms)],
      ['born_host', m.born_host],
      ['stored', time(m.store_ms)],
      ['deliver_at', time(m.deliver_at_ms)],
      ['body_size', m.body_size],
      ['body', m.body_encoding === 'base64' ? `base64:${m.body}` : m.body],
    ]) + (Object.keys(m.properties).length > 0 ? '\n' + renderTable(['PROPERTY', 'VALUE'], Object.entries(m.properties)) : '')
  );
}

export const ROCKETMQ_COMMANDS: RocketmqCtlCommand[] = [
  {
    words: ['rocketmq', 'topicList'],
    arity: [0, 0],
    async run({ client, output }) {
      const { topics } = await client.get<{ topics: RocketmqTopicView[] }>('/api/v1/rocketmq/topics');
      if (output === 'json') return json(topics);
      return renderTable(['TOPIC', 'QUEUES', 'MESSAGE_TYPE', 'ENGINE', 'CREATED_BY'], topics.map((t) => [t.topic, t.queues, t.message_type, t.engine, t.protocol]));
    },
  },
  {
    words: ['rocketmq', 'updateTopic'],
    arity: [1, 1],
    async run({ client, output, args, options }) {
      const body: Record<string, unknown> = {};
      const queues = positive(options.queues, '--queues');
      if (queues !== undefined) body['queues'] = queues;
      if (options.type !== undefined) body['message_type'] = options.type;
      const res = await client.put<RocketmqUpdateTopicView>(`/api/v1/rocketmq/topics/${enc(args[0]!)}`, body);
      if (output === 'json') return json(res);
      const t = res.topic;
      const now = `${t.queues} queue${t.queues === 1 ? '' : 's'}, message type ${t.message_type}`;
      if (res.created) return `created topic ${t.topic} (${now})\n`;
      return res.changes.length > 0 ? `updated topic ${t.topic}: ${res.changes.join(', ')} (${now})\n` : `topic ${t.topic} unchanged (${now})\n`;
    },
  },
  {
    words: ['rocketmq', 'deleteTopic'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ deleted: string }>(`/api/v1/rocketmq/topics/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `deleted topic ${res.deleted}\n`;
    },
  },
  {
    words: ['rocketmq', 'topicRoute'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const r = await client.get<RocketmqTopicRouteView>(`/api/v1/rocketmq/topics/${enc(args[0]!)}/route`);
      if (output === 'json') return json(r);
      return (
        renderPairs([
          ['topic', r.topic],
          ['message_type', r.message_type],
          ['accept_message_types', r.accept_message_types.join(',')],
        ]) +
        '\n' +
        renderTable(['QUEUE', 'LEADER', 'REPLICAS', 'ENDPOINT'], r.queues.map((q) => [q.queue, q.leader, q.replicas.join(',') || null, q.endpoint])) +
        '\n' +
        renderTable(['BROKER', 'NODE', 'ENDPOINT', 'QUEUES'], r.brokers.map((b) => [b.broker, b.node_id, b.endpoint, b.queues.join(',')]))
      );
    },
  },
  {
    words: ['rocketmq', 'consumerProgress'],
    arity: [0, 1],
    async run({ client, output, args }) {
      if (args[0] === undefined) {
        const { groups } = await client.get<{ groups: RocketmqGroupSummaryView[] }>('/api/v1/rocketmq/groups');
        if (output === 'json') return json(groups);
        return renderTable(['GROUP', 'CLIENTS', 'TOPICS', 'LAG', 'INFLIGHT'], groups.map((g) => [g.group, g.clients, g.topics.join(','), g.total_lag, g.inflight]));
      }
      const g = await client.get<RocketmqGroupView>(`/api/v1/rocketmq/groups/${enc(args[0])}`);
      if (output === 'json') return json(g);
      return (
        renderPairs([
          ['group', g.group],
          ['total_lag', g.total_lag],
          ['inflight', g.inflight],
        ]) +
        '\n' +
        renderTable(
          ['TOPIC', 'QUEUE', 'BROKER_OFFSET', 'CONSUMER_OFFSET', 'LAG', 'INFLIGHT', 'LAST_COMMIT'],
          g.queues.map((q) => [q.topic, q.queue, q.broker_offset, q.consumer_offset, q.lag, q.inflight, time(q.last_commit_ms)]),
        ) +
        (g.clients.length > 0 ? '\n' + renderTable(['CLIENT', 'TYPE', 'TOPICS', 'LAST_SEEN'], g.clients.map((c) => [c.client_id, c.type, c.topics.join(','), time(c.last_seen_ms)])) : '')
      );
    },
  },
  {
    words: ['rocketmq', 'queryMsgByKey'],
    arity: [2, 2],
    async run({ client, output, args, options }) {
      const q = lookupQuery(options, true);
      const r = await client.get<RocketmqLookupView>(`/api/v1/rocketmq/topics/${enc(args[0]!)}/messages?key=${enc(args[1]!)}${q ? `&${q}` : ''}`);
      if (output === 'json') return json(r);
      const table = renderTable(['QUEUE', 'OFFSET', 'MESSAGE_ID', 'TAG', 'KEYS', 'STORED', 'BODY'], r.messages.map((m) => [m.queue, m.offset, m.message_id, m.tag, m.keys.join(','), time(m.store_ms), preview(m)]));
      return (r.messages.length > 0 ? table : `no message with key "${args[1]}"\n`) + scanSummary(r);
    },
  },
  {
    words: ['rocketmq', 'queryMsgById'],
    arity: [2, 2],
    async run({ client, output, args, options }) {
      const q = lookupQuery(options, false);
      const r = await client.get<RocketmqLookupView>(`/api/v1/rocketmq/topics/${enc(args[0]!)}/messages/${enc(args[1]!)}${q ? `?${q}` : ''}`);
      if (output === 'json') return json(r.messages[0]);
      return messageDetail(r.messages[0]!);
    },
  },
];
