import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { KafkaMetrics } from '../../../src/broker/kafka/metrics.js';
import type { KafkaBroker, KafkaMetaPort, OffsetToCommit } from '../../../src/broker/kafka/ports.js';
import { KafkaServer } from '../../../src/broker/kafka/server.js';
import { MemoryEngine } from '../../../src/storage/memory/engine.js';

/** Committed offsets per group, as meta keeps them; this node coordinates every group. */
function fakeMeta(offsets: Map<string, Array<OffsetToCommit & { commitTimeMs: number }>>): KafkaMetaPort {
  const me: KafkaBroker = { nodeId: 1, host: '127.0.0.1', port: 9092, rack: null };
  const unused = async (): Promise<void> => {
    throw new Error('not used here');
  };
  return {
    nodeId: 1,
    clusterId: 'test',
    brokers: () => [me],
    coordinatorFor: () => me,
    topic: () => undefined,
    topicNames: () => [],
    createTopic: unused,
    deleteTopic: unused,
    addPartitions: unused,
    alterTopicConfig: unused,
    waitForLeaders: async () => undefined,
    committed: () => undefined,
    committedAll: (g) => offsets.get(g) ?? [],
    commitOffsets: unused,
    offsetGroups: () => [...offsets.keys()],
    deleteGroupOffsets: async (g) => {
      offsets.delete(g);
    },
    scramKeys: () => undefined,
    verifyPassword: async () => false,
  };
}

function server(meta: KafkaMetaPort, extra: { maxConnections?: number; offsetsRetentionMs?: number } = {}): KafkaServer {
  return new KafkaServer({
    listeners: [{ name: 'PLAINTEXT', kind: 'tcp', host: '127.0.0.1', port: 0, requireSasl: false }],
    meta,
    storage: () => new MemoryEngine({ maxBytesPerShard: 1 << 20, retentionMs: -1, retentionBytes: -1 }),
    settings: { autoCreateTopics: false, numPartitions: 1, messageMaxBytes: 1 << 20 },
    maxRequestBytes: 1 << 20,
    ...(extra.maxConnections !== undefined ? { maxConnections: extra.maxConnections } : {}),
    group: { minSessionTimeoutMs: 10, maxSessionTimeoutMs: 100_000, initialRebalanceDelayMs: 0, offsetsRetentionMs: extra.offsetsRetentionMs ?? 7 * 24 * 3600 * 1000 },
    metrics: new KafkaMetrics(),
    log: pino({ level: 'silent' }),
  });
}

describe('Kafka server limits', () => {
  it('closes connections beyond max_connections at once; the others keep working', async () => {
    const s = server(fakeMeta(new Map()), { maxConnections: 2 });
    await s.start();
    const port = s.port()!;
    const open = () =>
      new Promise<{ closed: Promise<void> }>((resolve) => {
        const sock = connect(port, '127.0.0.1', () => resolve({ closed: new Promise<void>((r) => sock.on('close', () => r())) }));
        sock.on('error', () => undefined);
        opened.push(sock);
      });
    const opened: import('node:net').Socket[] = [];
    await open();
    await open();
    const third = await open();
    await third.closed;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.connectionCount(), 2);
    for (const c of opened) c.destroy();
    await s.stop();
  });
});

describe('committed offset retention (offsets.retention)', () => {
  it('drops the offsets of a member-less group whose newest commit is older than the retention, and only those', async () => {
    const day = 24 * 3600 * 1000;
    const now = 100 * day;
    const offsets = new Map<string, Array<OffsetToCommit & { commitTimeMs: number }>>([
      ['stale', [{ topic: 't', partition: 0, offset: 5, metadata: null, commitTimeMs: now - 8 * day }]],
      ['one-fresh-partition', [
        { topic: 't', partition: 0, offset: 5, metadata: null, commitTimeMs: now - 9 * day },
        { topic: 't', partition: 1, offset: 5, metadata: null, commitTimeMs: now - 1 * day },
      ]],
      ['fresh', [{ topic: 't', partition: 0, offset: 1, metadata: null, commitTimeMs: now - day }]],
    ]);
    const srv = server(fakeMeta(offsets), { offsetsRetentionMs: 7 * day });
    assert.deepEqual(await srv.expireOffsets(now), ['stale']);
    assert.deepEqual([...offsets.keys()].sort(), ['fresh', 'one-fresh-partition']);
    // A group with a live member keeps its offsets however old they are.
    offsets.set('busy', [{ topic: 't', partition: 0, offset: 1, metadata: null, commitTimeMs: 0 }]);
    const joined = srv.groups.joinGroup({ groupId: 'busy', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], clientId: 'c', clientHost: 'h', requireKnownMemberId: false });
    await joined;
    assert.deepEqual(await srv.expireOffsets(now), []);
    assert.ok(offsets.has('busy'));
    srv.groups.close();
  });
});
