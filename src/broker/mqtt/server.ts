/**
 * The MQTT server of a broker node: the broker state plus its listeners (TCP,
 * TLS, WebSocket, secure WebSocket per `[mqtt]`), each connection handed to an
 * MqttConnection.
 */
import type { Logger } from '../../common/logger.js';
import type { ListenerInfo } from '../../common/node-info.js';
import { startListener, type RunningListener, type TransportKind } from '../network/listener.js';
import { MqttAuth, type UserDirectory } from './auth.js';
import { MqttBroker } from './broker.js';
import { MqttConnection } from './connection.js';
import { MqttMetrics } from './metrics.js';
import type { MqttSettings } from './settings.js';
import type { MqttStore } from './store.js';
import type { MqttCluster } from './cluster.js';

export interface MqttListenerSpec {
  kind: TransportKind;
  host: string;
  port: number;
}

export interface MqttServerOptions {
  settings: MqttSettings;
  store: MqttStore;
  users: UserDirectory;
  log: Logger;
  metrics: MqttMetrics;
  listeners: MqttListenerSpec[];
  tls?: { cert: string; key: string; ca?: string; verifyClient: boolean };
  wsPath: string;
  version: string;
}

export class MqttServer {
  readonly broker: MqttBroker;
  readonly auth: MqttAuth;
  /** Routing to and from the other brokers of the cluster (set by the node before start). */
  cluster: MqttCluster | undefined;
  private running: RunningListener[] = [];

  constructor(private readonly opts: MqttServerOptions) {
    this.auth = new MqttAuth(opts.settings, opts.users, opts.log);
    this.broker = new MqttBroker(opts.settings, opts.store, opts.metrics, opts.log);
    this.broker.versionText = opts.version;
  }

  async start(): Promise<void> {
    await this.broker.start();
    // Linked once the sessions (and so the routes) are loaded, before clients connect.
    this.cluster?.start();
    try {
      for (const spec of this.opts.listeners) {
        const secure = spec.kind === 'tls' || spec.kind === 'wss';
        if (secure && !this.opts.tls) continue;
        const l = await startListener({
          kind: spec.kind,
          host: spec.host,
          port: spec.port,
          ...(secure && this.opts.tls ? { tls: this.opts.tls } : {}),
          wsPath: this.opts.wsPath,
          maxConnections: this.opts.settings.maxConnections,
          onConnection: (t) => {
            if (this.broker.isStopped) {
              t.stream.destroy();
              return;
            }
            new MqttConnection(this.broker, this.auth, t);
          },
          onError: (err) => this.opts.log.debug({ err: String(err) }, 'mqtt: listener socket error'),
        });
        this.running.push(l);
        this.opts.log.info({ transport: spec.kind, host: l.host, port: l.port }, `mqtt: listening on ${spec.kind}://${l.host}:${l.port}`);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = [];
    // Peers drop this node's routes first, so nothing more is forwarded here.
    this.cluster?.stop();
    // Stop accepting first, then tell every client the server is going away.
    await this.broker.stop();
    await Promise.all(running.map((l) => l.close()));
  }

  listeners(): ListenerInfo[] {
    return this.running.map((l) => ({ name: `mqtt-${l.kind}`, protocol: l.kind === 'tcp' || l.kind === 'tls' ? `mqtt+${l.kind}` : l.kind, address: `${l.host}:${l.port}` }));
  }
}
