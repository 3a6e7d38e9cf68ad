/**
 * robust-ctl's journal commands: `journal segments <topic>`, `journal
 * under-replicated`, `journal rereplication`, over the admin API's
 * /api/v1/journal routes.
 */
import type { ReplicaView, RereplicationView, SegmentView, TopicSegmentsView } from '../admin/journal-routes.js';
import { renderPairs, renderTable } from '../admin/render.js';
import type { UnderReplicatedSegment } from '../storage/journal/rereplicator.js';
import type { MqttCtlCommand } from './ctl-mqtt.js';

export const JOURNAL_USAGE = `  journal segments <topic>           per shard its journal segments: state, offsets, epoch, quorums,
                                     ensemble, each replica's end/lac, under-replication
  journal under-replicated           segments with a journal node meta holds dead (cluster-wide)
  journal rereplication              this node's re-replicator: on duty, copy in progress, waiting
`;

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** "101=42/41" (end/lac), "102=dead", "103=unreachable", "104=none" (no replica). */
function replicaCell(r: ReplicaView): string {
  if (r.state === 'dead' || r.state === 'unknown') return `${r.node}=${r.state === 'dead' ? 'dead' : 'unregistered'}`;
  if (!r.reachable) return `${r.node}=unreachable`;
  if (r.missing) return `${r.node}=none`;
  return `${r.node}=${r.end}/${r.lac}`;
}

function segmentRow(shard: string, s: SegmentView): Array<string | number | null> {
  return [
    shard,
    s.segment,
    s.state,
    s.start_offset,
    s.end_offset,
    s.last_entry,
    s.epoch,
    `${s.ensemble.length}/${s.write_quorum}/${s.ack_quorum}`,
    s.replicas.map(replicaCell).join(' '),
    s.under_replicated ? `yes: ${s.problems.join('; ')}` : 'no',
  ];
}

export const JOURNAL_COMMANDS: MqttCtlCommand[] = [
  {
    words: ['journal', 'segments'],
    arity: [1, 1],
    async run({ client, output, args }) {
      const v = await client.get<TopicSegmentsView>(`/api/v1/journal/segments?topic=${encodeURIComponent(args[0]!)}`);
      if (output === 'json') return json(v);
      const rows = v.shards.flatMap((sh) => sh.segments.map((s) => segmentRow(sh.shard, s)));
      const head = `topic ${v.topic} (engine ${v.engine}): ${rows.length} segment${rows.length === 1 ? '' : 's'}, ${v.under_replicated_segments} under-replicated\n`;
      if (rows.length === 0) return `${head}${v.engine === 'journal' ? '(no segment written yet)' : '(the topic is not stored on the journal engine)'}\n`;
      return head + '\n' + renderTable(['SHARD', 'SEGMENT', 'STATE', 'START', 'END', 'LAST_ENTRY', 'EPOCH', 'E/QW/QA', 'REPLICAS(END/LAC)', 'UNDER_REPLICATED'], rows);
    },
  },
  {
    words: ['journal', 'under-replicated'],
    arity: [0, 0],
    async run({ client, output }) {
      const v = await client.get<{ count: number; segments: UnderReplicatedSegment[] }>('/api/v1/journal/under-replicated');
      if (output === 'json') return json(v);
      if (v.count === 0) return 'no under-replicated journal segment\n';
      return renderTable(['SHARD', 'SEGMENT', 'STATE', 'ENSEMBLE', 'DEAD'], v.segments.map((s) => [s.shard, s.segment, s.state, s.ensemble.join(','), s.missing.join(',')]));
    },
  },
  {
    words: ['journal', 'rereplication'],
    arity: [0, 0],
    async run({ client, output }) {
      const v = await client.get<RereplicationView>('/api/v1/journal/rereplication');
      if (output === 'json') return json(v);
      const c = v.copying;
      return (
        renderPairs([
          ['node_id', v.node_id],
          ['on_duty', v.running ? v.active : 'no (not a broker)'],
          ['rate_bytes_per_sec', v.bytes_per_sec === 0 ? 'unlimited' : v.bytes_per_sec],
          ['copying', c ? `${c.shard} segment ${c.segment}: node ${c.source} -> ${c.to}, ${c.copied_entries}/${c.entries} entries, ${c.copied_bytes} bytes` : null],
          ['copied_bytes', v.copied_bytes],
          ['replaced_segments', v.replaced_segments],
          ['repaired_replicas', v.repaired_replicas],
          ['orphans_deleted', v.orphans_deleted],
          ['last_pass_ms', v.last_pass_ms],
        ]) + (v.waiting.length > 0 ? '\n' + renderTable(['SHARD', 'SEGMENT', 'DEAD', 'WAITING_FOR', 'DETAIL'], v.waiting.map((w) => [w.shard, w.segment, w.missing.join(','), w.reason, w.message])) : '')
      );
    },
  },
];
