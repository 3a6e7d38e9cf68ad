/**
 * The brokers' internal topics (`__mqtt.*`, `__rmq.*`): one shard, kept
 * forever (retention must not cut a session message, a half message or a
 * timer before it is done with), created on first use with the node's default
 * engine and waited for until its shard is open on this node.
 */
import type { Config } from '../common/config/index.js';
import { RobustError } from '../common/errors.js';
import type { MetaAgent } from '../meta/agent.js';
import { shardId } from '../meta/state/records/shards.js';
import { proposeOrThrow } from './meta-propose.js';
import type { StorageService } from './storage-service.js';

const OPEN_WAIT_MS = 15_000;

/** Creates the internal topic if missing; resolves with its shard id once the shard is open here. */
export async function ensureInternalShard(config: Config, agent: MetaAgent, storage: StorageService, topic: string): Promise<string> {
  const router = storage.adapter;
  if (!agent.replica.view.topics.get(topic)) {
    const wanted = config.storage.default_engine;
    const engine = router.available(wanted) ? wanted : 'file';
    await proposeOrThrow(agent, { kind: 'topic.create', name: topic, shards: 1, engine, retentionMs: -1, nowMs: Date.now() }, ['already_exists']);
  }
  const shard = shardId(topic, 0);
  const deadline = Date.now() + OPEN_WAIT_MS;
  while (!router.hasShard(shard)) {
    if (Date.now() > deadline) throw new RobustError(`internal topic ${topic}: shard ${shard} did not open on this node within ${OPEN_WAIT_MS / 1000} s`, 'internal_shard_unavailable');
    await new Promise((r) => setTimeout(r, 10));
  }
  return shard;
}
