import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/common/config/index.js';
import { MetaAgent } from '../../src/meta/agent.js';
import { encodeCommand } from '../../src/meta/state/commands.js';
import { RpcClientPool } from '../../src/rpc/client-pool.js';

describe('MetaAgent node state events', () => {
  it('reports liveness transitions from the replica, in commit order, and stops when unsubscribed', () => {
    const { config } = loadConfig(undefined, {});
    const agent = new MetaAgent(config, pino({ level: 'silent' }), new RpcClientPool());
    const seen: Array<[number, string, string, number]> = [];
    const off = agent.onNodeStateChange((c) => seen.push([c.nodeId, c.previous, c.state, c.index]));
    // The replica is fed by the watch stream; here we feed it the same commands directly.
    const apply = (index: number, cmd: Parameters<typeof encodeCommand>[0]) => agent.replica.apply(index, encodeCommand(cmd));
    apply(1, { kind: 'node.register', nodeId: 7, roles: ['broker'], grpcAddr: '10.0.0.7:1228', nowMs: 1_000 });
    apply(2, { kind: 'config.set', key: 'unrelated', value: 'x' });
    apply(3, { kind: 'node.setState', nodeId: 7, state: 'suspect', nowMs: 4_000 });
    apply(4, { kind: 'node.setState', nodeId: 7, state: 'dead', nowMs: 11_000 });
    apply(5, { kind: 'node.setState', nodeId: 7, state: 'alive', nowMs: 12_000 });
    assert.deepEqual(seen, [
      [7, 'alive', 'suspect', 3],
      [7, 'suspect', 'dead', 4],
      [7, 'dead', 'alive', 5],
    ]);
    off();
    apply(6, { kind: 'node.setState', nodeId: 7, state: 'suspect', nowMs: 20_000 });
    assert.equal(seen.length, 3);
  });
});
