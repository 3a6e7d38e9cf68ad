/**
 * robust-ctl's MQTT and user commands: `mqtt clients|client|sessions|session|
 * subscriptions|retained|publish|acl ...` and `user list|create|delete`, over
 * the admin API's /api/v1/mqtt and /api/v1/users routes.
 */
import type { AdminClient } from '../admin/client.js';
import type { MqttAclRuleView, MqttClientView, MqttRetainedDetail, MqttRetainedView, MqttRoutesView, MqttSessionDetail, MqttSessionView, MqttSubscriptionView, MqttUserView } from '../admin/mqtt-routes.js';
import { renderPairs, renderTable } from '../admin/render.js';

export const MQTT_USAGE = `  mqtt clients [--limit N] [--offset N]
                                     clients connected to this node
  mqtt client show <client-id>       one client: transport, address, keep alive, in flight, queued
  mqtt client kick <client-id>       disconnect a client (MQTT 5 clients get DISCONNECT 0x98)
  mqtt sessions [--limit N] [--offset N]
                                     sessions on this node (connected or waiting for their client)
  mqtt session show <client-id>      one session with its subscriptions
  mqtt session delete <client-id>    end a session (its client, if connected, is disconnected)
  mqtt subscriptions [--client <client-id>]
                                     every subscription of every session
  mqtt retained [list] [--limit N] [--offset N]
                                     retained messages
  mqtt retained show <topic>         one retained message with its payload
  mqtt retained delete <topic>       clear a retained message
  mqtt publish <topic> <message> [--qos 0|1|2] [--retain]
                                     publish a message as the broker
  mqtt routes                        the cluster route table: topic filters subscribed on each broker node
  mqtt acl list                      ACL rules in evaluation order (config rules first) and the default
  mqtt acl add --permission allow|deny --action publish|subscribe|all --topic <filter>
               [--user U] [--client-id C] [--position N]
                                     add a rule (position among the run-time rules; default: last)
  mqtt acl delete <id>               remove a run-time rule
  user list                          users (MQTT and other protocols)
  user create <name> --password P [--superuser]
                                     add a user (--password - reads the password from stdin)
  user delete <name>
`;

/** A bad argument: robust-ctl prints the message and the usage, exit code 2. */
export class CtlUsageError extends Error {}

export interface MqttCtlOptions {
  limit?: string;
  offset?: string;
  client?: string;
  qos?: string;
  retain?: boolean;
  permission?: string;
  action?: string;
  topic?: string;
  user?: string;
  'client-id'?: string;
  position?: string;
  password?: string;
  superuser?: boolean;
  /** kafka groups reset-offsets */
  to?: string;
  value?: string;
  partitions?: string;
}

export interface MqttCtlContext {
  client: AdminClient;
  output: 'table' | 'json';
  args: string[];
  options: MqttCtlOptions;
}

export interface MqttCtlCommand {
  words: string[];
  arity: [number, number];
  run(ctx: MqttCtlContext): Promise<string>;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
const enc = encodeURIComponent;
const time = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

function intOption(raw: string | undefined, what: string, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min) throw new CtlUsageError(`${what} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

function paging(options: MqttCtlOptions): string {
  const q = new URLSearchParams();
  const limit = intOption(options.limit, '--limit', 1);
  const offset = intOption(options.offset, '--offset', 0);
  if (limit !== undefined) q.set('limit', String(limit));
  if (offset !== undefined) q.set('offset', String(offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The first line of stdin. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
}

function aclRuleText(r: MqttAclRuleView): string {
  return `${r.permission} ${r.action} ${r.topic}${r.user !== undefined ? ` user=${r.user}` : ''}${r.client_id !== undefined ? ` client-id=${r.client_id}` : ''}`;
}

async function listRetained({ client, output, options }: MqttCtlContext): Promise<string> {
  const res = await client.get<{ total: number; retained: MqttRetainedView[] }>(`/api/v1/mqtt/retained${paging(options)}`);
  if (output === 'json') return json(res.retained);
  return renderTable(['TOPIC', 'QOS', 'BYTES', 'RECEIVED', 'EXPIRES'], res.retained.map((m) => [m.topic, m.qos, m.payload_bytes, time(m.received_at_ms), time(m.expires_at_ms)]));
}

export const MQTT_COMMANDS: MqttCtlCommand[] = [
  {
    words: ['mqtt', 'clients'],
    arity: [0, 0],
    async run({ client, output, options }) {
      const res = await client.get<{ total: number; clients: MqttClientView[] }>(`/api/v1/mqtt/clients${paging(options)}`);
      if (output === 'json') return json(res.clients);
      return renderTable(
        ['CLIENT_ID', 'USERNAME', 'TRANSPORT', 'REMOTE', 'PROTOCOL', 'KEEP_ALIVE', 'CONNECTED_AT', 'INFLIGHT', 'QUEUED', 'SUBSCRIPTIONS'],
        res.clients.map((c) => [c.client_id, c.username, c.transport, c.remote, c.protocol_level, c.keep_alive, time(c.connected_at_ms), c.inflight, c.queued, c.subscriptions]),
      );
    },
  },
  {
    words: ['mqtt', 'client', 'show'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const c = await client.get<MqttClientView>(`/api/v1/mqtt/clients/${enc(args[0]!)}`);
      if (output === 'json') return json(c);
      return renderPairs([
        ['client_id', c.client_id],
        ['username', c.username],
        ['transport', c.transport],
        ['remote', c.remote],
        ['protocol_level', c.protocol_level],
        ['keep_alive', c.keep_alive],
        ['connected_at', time(c.connected_at_ms)],
        ['inflight', c.inflight],
        ['queued', c.queued],
        ['subscriptions', c.subscriptions],
      ]);
    },
  },
  {
    words: ['mqtt', 'client', 'kick'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ kicked: string }>(`/api/v1/mqtt/clients/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `disconnected client ${res.kicked}\n`;
    },
  },
  {
    words: ['mqtt', 'sessions'],
    arity: [0, 0],
    async run({ client, output, options }) {
      const res = await client.get<{ total: number; sessions: MqttSessionView[] }>(`/api/v1/mqtt/sessions${paging(options)}`);
      if (output === 'json') return json(res.sessions);
      return renderTable(
        ['CLIENT_ID', 'PERSISTENT', 'EXPIRY_S', 'CONNECTED', 'DISCONNECTED_AT', 'INFLIGHT', 'QUEUED', 'SUBSCRIPTIONS'],
        res.sessions.map((s) => [s.client_id, s.persistent, s.expiry_interval_sec, s.connected, time(s.disconnected_at_ms), s.inflight, s.queued, s.subscriptions]),
      );
    },
  },
  {
    words: ['mqtt', 'session', 'show'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const s = await client.get<MqttSessionDetail>(`/api/v1/mqtt/sessions/${enc(args[0]!)}`);
      if (output === 'json') return json(s);
      return (
        renderPairs([
          ['client_id', s.client_id],
          ['persistent', s.persistent],
          ['expiry_interval_s', s.expiry_interval_sec],
          ['connected', s.connected],
          ['disconnected_at', time(s.disconnected_at_ms)],
          ['expires_at', time(s.expires_at_ms)],
          ['inflight', s.inflight],
          ['queued', s.queued],
        ]) +
        '\n' +
        renderTable(
          ['FILTER', 'QOS', 'NO_LOCAL', 'RETAIN_AS_PUBLISHED', 'RETAIN_HANDLING', 'SUBSCRIPTION_ID'],
          s.subscriptions.map((x) => [x.filter, x.qos, x.no_local, x.retain_as_published, x.retain_handling, x.subscription_id]),
        )
      );
    },
  },
  {
    words: ['mqtt', 'session', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ deleted: string }>(`/api/v1/mqtt/sessions/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `deleted the session of ${res.deleted}\n`;
    },
  },
  {
    words: ['mqtt', 'subscriptions'],
    arity: [0, 0],
    async run({ client, output, options }) {
      const q = options.client !== undefined ? `?client_id=${enc(options.client)}` : '';
      const res = await client.get<{ total: number; subscriptions: MqttSubscriptionView[] }>(`/api/v1/mqtt/subscriptions${q}`);
      if (output === 'json') return json(res.subscriptions);
      return renderTable(
        ['CLIENT_ID', 'FILTER', 'QOS', 'NO_LOCAL', 'RETAIN_AS_PUBLISHED', 'RETAIN_HANDLING', 'SUBSCRIPTION_ID'],
        res.subscriptions.map((x) => [x.client_id, x.filter, x.qos, x.no_local, x.retain_as_published, x.retain_handling, x.subscription_id]),
      );
    },
  },
  { words: ['mqtt', 'retained', 'list'], arity: [0, 0], run: listRetained },
  {
    words: ['mqtt', 'retained', 'show'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const m = await client.get<MqttRetainedDetail>(`/api/v1/mqtt/retained/${enc(args[0]!)}`);
      if (output === 'json') return json(m);
      return renderPairs([
        ['topic', m.topic],
        ['qos', m.qos],
        ['bytes', m.payload_bytes],
        ['received_at', time(m.received_at_ms)],
        ['expires_at', time(m.expires_at_ms)],
        ['publisher', m.publisher === '' ? '(broker)' : m.publisher],
        ['content_type', m.content_type],
        ['payload', m.payload],
        ['payload_base64', m.payload_base64],
      ]);
    },
  },
  {
    words: ['mqtt', 'retained', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ deleted: string }>(`/api/v1/mqtt/retained/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `cleared the retained message of ${res.deleted}\n`;
    },
  },
  // After its sub-commands: the first command whose words match is taken.
  { words: ['mqtt', 'retained'], arity: [0, 0], run: listRetained },
  {
    words: ['mqtt', 'publish'],
    arity: [2, 2],
    async run({ client, output, args, options }) {
      const qos = intOption(options.qos, '--qos', 0) ?? 0;
      if (qos > 2) throw new CtlUsageError(`--qos must be 0, 1 or 2, got "${options.qos}"`);
      const res = await client.post<{ topic: string; matched: number }>('/api/v1/mqtt/publish', { topic: args[0], payload: args[1], qos, retain: options.retain ?? false });
      return output === 'json' ? json(res) : `published to ${res.topic}${options.retain ? ' (retained)' : ''}: ${res.matched} matching subscriber${res.matched === 1 ? '' : 's'}\n`;
    },
  },
  {
    words: ['mqtt', 'routes'],
    arity: [0, 0],
    async run({ client, output }) {
      const res = await client.get<MqttRoutesView>('/api/v1/mqtt/routes');
      if (output === 'json') return json(res);
      const rows: Array<Array<string | number | null>> = [];
      for (const n of res.nodes) {
        const node = n.local ? `${n.node_id} (this node)` : String(n.node_id);
        const link = n.local ? '-' : n.connected ? 'linked' : 'down';
        if (n.routes.length === 0) rows.push([node, link, null, null]);
        for (const r of n.routes) rows.push([node, link, r.filter, r.subscriptions]);
      }
      return renderTable(['NODE', 'LINK', 'FILTER', 'SUBSCRIPTIONS'], rows);
    },
  },
  {
    words: ['mqtt', 'acl', 'list'],
    arity: [0, 0],
    async run({ client, output }) {
      const res = await client.get<{ default: string; rules: MqttAclRuleView[] }>('/api/v1/mqtt/acl');
      if (output === 'json') return json(res);
      return (
        renderTable(
          ['ID', 'SOURCE', 'PERMISSION', 'ACTION', 'TOPIC', 'USER', 'CLIENT_ID'],
          res.rules.map((r) => [r.id, r.source, r.permission, r.action, r.topic, r.user, r.client_id]),
        ) + `default (no rule matches): ${res.default}\n`
      );
    },
  },
  {
    words: ['mqtt', 'acl', 'add'],
    arity: [0, 0],
    async run({ client, output, options }) {
      for (const k of ['permission', 'action', 'topic'] as const) if (options[k] === undefined) throw new CtlUsageError(`mqtt acl add needs --${k}`);
      const position = intOption(options.position, '--position', 0);
      const body = {
        permission: options.permission,
        action: options.action,
        topic: options.topic,
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options['client-id'] !== undefined ? { client_id: options['client-id'] } : {}),
        ...(position !== undefined ? { position } : {}),
      };
      const rule = await client.post<MqttAclRuleView>('/api/v1/mqtt/acl', body);
      return output === 'json' ? json(rule) : `added ACL rule ${rule.id}: ${aclRuleText(rule)}\n`;
    },
  },
  {
    words: ['mqtt', 'acl', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const id = intOption(args[0], 'rule id', 1)!;
      const res = await client.delete<{ deleted: number }>(`/api/v1/mqtt/acl/${id}`);
      return output === 'json' ? json(res) : `deleted ACL rule ${res.deleted}\n`;
    },
  },
  {
    words: ['user', 'list'],
    arity: [0, 0],
    async run({ client, output }) {
      const { users } = await client.get<{ users: MqttUserView[] }>('/api/v1/users');
      if (output === 'json') return json(users);
      return renderTable(['USERNAME', 'SUPERUSER'], users.map((u) => [u.username, u.superuser]));
    },
  },
  {
    words: ['user', 'create'],
    arity: [1, 1],
    async run({ client, output, args, options }) {
      if (options.password === undefined) throw new CtlUsageError('user create needs --password P (or --password - to read it from stdin)');
      const password = options.password === '-' ? await readStdin() : options.password;
      if (password === '') throw new CtlUsageError('the password is empty');
      const user = await client.post<MqttUserView>('/api/v1/users', { username: args[0], password, superuser: options.superuser ?? false });
      return output === 'json' ? json(user) : `created user ${user.username}${user.superuser ? ' (superuser)' : ''}\n`;
    },
  },
  {
    words: ['user', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ deleted: string }>(`/api/v1/users/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `deleted user ${res.deleted}\n`;
    },
  },
];
