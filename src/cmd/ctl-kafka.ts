/**
 * robust-ctl's Kafka commands: `kafka groups list|describe|delete|reset-offsets`,
 * over the admin API's /api/v1/kafka/groups routes.
 */
import type { KafkaGroupSummaryView, KafkaGroupView } from '../admin/kafka-routes.js';
import { renderPairs, renderTable } from '../admin/render.js';
import { CtlUsageError, type MqttCtlCommand } from './ctl-mqtt.js';

export const KAFKA_USAGE = `  kafka groups list                  consumer groups: state, protocol, generation, members
  kafka groups describe <group>      members, and per partition the committed offset, end and lag
  kafka groups delete <group>        delete an empty group and its committed offsets
  kafka groups reset-offsets <group> --topic T --to earliest|latest|offset|timestamp [--value N] [--partitions 0,1]
                                     move an empty group's committed offsets
`;

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
const enc = encodeURIComponent;

export const KAFKA_COMMANDS: MqttCtlCommand[] = [
  {
    words: ['kafka', 'groups', 'list'],
    arity: [0, 0],
    async run({ client, output }) {
      const res = await client.get<{ groups: KafkaGroupSummaryView[] }>('/api/v1/kafka/groups');
      if (output === 'json') return json(res.groups);
      return renderTable(['GROUP', 'STATE', 'PROTOCOL', 'GENERATION', 'MEMBERS', 'COORDINATOR'], res.groups.map((g) => [g.group, g.state, g.protocol, g.generation, g.members, g.coordinator]));
    },
  },
  {
    words: ['kafka', 'groups', 'describe'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const g = await client.get<KafkaGroupView>(`/api/v1/kafka/groups/${enc(args[0]!)}`);
      if (output === 'json') return json(g);
      return (
        renderPairs([
          ['group', g.group],
          ['state', g.state],
          ['protocol', `${g.protocol_type}/${g.protocol}`],
          ['generation', g.generation],
          ['coordinator', g.coordinator],
          ['total_lag', g.total_lag],
        ]) +
        '\n' +
        renderTable(['MEMBER', 'INSTANCE', 'CLIENT_ID', 'HOST', 'LEADER'], g.members.map((m) => [m.member_id, m.group_instance_id, m.client_id, m.client_host, m.is_leader])) +
        '\n' +
        renderTable(['TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG'], g.offsets.map((o) => [o.topic, o.partition, o.committed_offset, o.end_offset, o.lag]))
      );
    },
  },
  {
    words: ['kafka', 'groups', 'delete'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const res = await client.delete<{ deleted: string }>(`/api/v1/kafka/groups/${enc(args[0]!)}`);
      return output === 'json' ? json(res) : `deleted group ${res.deleted}\n`;
    },
  },
  {
    words: ['kafka', 'groups', 'reset-offsets'],
    arity: [1, 1],
    async run({ client, output, args, options }) {
      const topic = options.topic;
      const to = options.to;
      if (!topic) throw new CtlUsageError('kafka groups reset-offsets needs --topic');
      if (to !== 'earliest' && to !== 'latest' && to !== 'offset' && to !== 'timestamp') throw new CtlUsageError('--to must be earliest, latest, offset or timestamp');
      const body: Record<string, unknown> = { topic, to };
      if (to === 'offset' || to === 'timestamp') {
        if (options.value === undefined || !/^\d+$/.test(options.value)) throw new CtlUsageError(`--to ${to} needs --value N (an integer >= 0)`);
        body['value'] = Number(options.value);
      }
      if (options.partitions !== undefined) {
        const parts = options.partitions.split(',').map((p) => p.trim());
        if (!parts.every((p) => /^\d+$/.test(p))) throw new CtlUsageError(`--partitions must be a comma-separated list of partition numbers, got "${options.partitions}"`);
        body['partitions'] = parts.map(Number);
      }
      const res = await client.post<{ group: string; topic: string; offsets: Array<{ partition: number; offset: number }> }>(`/api/v1/kafka/groups/${enc(args[0]!)}/reset-offsets`, body);
      if (output === 'json') return json(res);
      return renderTable(['TOPIC', 'PARTITION', 'NEW_OFFSET'], res.offsets.map((o) => [res.topic, o.partition, o.offset]));
    },
  },
];
