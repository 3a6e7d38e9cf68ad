import { journalListeners, type Config } from '../common/config/index.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Service } from '../common/service.js';
import type { RpcClientPool } from '../rpc/client-pool.js';
import { MetaClient } from './client.js';
import { encodeCommand } from './state/commands.js';
import { createMetaStateMachine, type DefaultMetaStateMachine } from './state/default-records.js';

/**
 * Every node's link to the meta cluster, whatever its roles: keeps the local
 * metadata replica current, registers the node, and heartbeats the leader.
 */
export class MetaAgent implements Service {
  readonly name = 'meta-client';
  readonly replica: DefaultMetaStateMachine;
  readonly client: MetaClient;
  private timer: NodeJS.Timeout | undefined;
  private registered = false;
  private failingSince = 0;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    pool: RpcClientPool,
  ) {
    this.replica = createMetaStateMachine({ onError: (err, where) => log.error({ err: errorMessage(err), where }, 'metadata replica listener failed') });
    // Ourselves first when we are a meta node: the hop is local.
    const own = config.meta_addrs[String(config.node_id)];
    const addrs = [...new Set([...(own ? [own] : []), ...Object.values(config.meta_addrs)])];
    this.client = new MetaClient({ metaAddrs: addrs, pool, log, replica: this.replica, requestTimeoutMs: config.meta.propose_timeout_ms });
  }

  async start(): Promise<void> {
    await this.client.start();
    const c = this.config;
    const { result } = await this.client.propose(
      encodeCommand({
        kind: 'node.register',
        nodeId: c.node_id,
        roles: c.roles,
        grpcAddr: `${c.advertised_host}:${c.grpc_port}`,
        httpAddr: `${c.advertised_host}:${c.http_port}`,
        listeners: journalListeners(c),
        nowMs: Date.now(),
      }),
    );
    const r = result as { ok: boolean; message?: string };
    if (!r.ok) throw new Error(`could not register node ${c.node_id} with the meta service: ${r.message ?? 'refused'}`);
    this.registered = true;
    this.timer = setInterval(() => void this.beat(), c.meta.node_heartbeat_ms);
    this.log.info(`registered node ${c.node_id} with the meta service`);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.registered = false;
    this.client.stop();
  }

  isReady(): boolean {
    return this.registered;
  }

  /**
   * Node liveness changes (alive / suspect / dead) as the meta leader records
   * them, in commit order, on every node: how other modules learn that a node
   * died (to move its shards and sessions) or came back.
   */
  onNodeStateChange(listener: (change: { nodeId: number; state: string; previous: string; index: number }) => void): () => void {
    return this.replica.subscribe(({ index, event }) => {
      if (event.type === 'node.stateChanged') listener({ nodeId: event.node.id, state: event.node.state, previous: event.previous, index });
    });
  }

  private async beat(): Promise<void> {
    try {
      await this.client.heartbeat(this.config.node_id);
      if (this.failingSince) this.log.info('meta heartbeats are getting through again');
      this.failingSince = 0;
    } catch (err) {
      if (!this.failingSince) {
        this.failingSince = Date.now();
        this.log.warn({ err: errorMessage(err) }, `heartbeat to the meta service failed: ${errorMessage(err)}`);
      }
    }
  }
}
