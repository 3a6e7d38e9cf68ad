/**
 * Builds the MQTT server of a broker node and connects it to the meta service
 * (sessions, retained index, users, ACL rules) and the node's storage (the
 * broker's internal topics).
 */
import type { Registry } from 'prom-client';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { MqttCluster, type PeerDirectory } from '../broker/mqtt/cluster.js';
import { MqttMetrics } from '../broker/mqtt/metrics.js';
import { MqttServer, type MqttListenerSpec } from '../broker/mqtt/server.js';
import { mqttSettings } from '../broker/mqtt/settings.js';
import { DurableMqttStore, type MqttMetaPort } from '../broker/mqtt/durable-store.js';
import type { UserDirectory } from '../broker/mqtt/auth.js';
import type { StoredSession } from '../broker/mqtt/store.js';
import { tlsConfigured, type Config } from '../common/config/index.js';
import type { Logger } from '../common/logger.js';
import { VERSION } from '../common/package-info.js';
import type { MetaAgent } from '../meta/agent.js';
import type { MqttSession } from '../meta/state/records/mqtt-sessions.js';
import { ensureInternalShard } from './internal-shard.js';
import { proposeOrThrow as propose } from './meta-propose.js';
import type { StorageService } from './storage-service.js';

function storedSession(s: MqttSession): StoredSession {
  return {
    clientId: s.clientId,
    expiryIntervalSec: s.expiryIntervalSec,
    connected: s.connected,
    lastSeenMs: s.lastSeenMs,
    nodeId: s.nodeId,
    subscriptions: s.subscriptions.map((x) => ({
      filter: x.filter,
      qos: x.qos,
      noLocal: x.noLocal,
      retainAsPublished: x.retainAsPublished,
      retainHandling: x.retainHandling,
      ...(x.subscriptionId !== undefined ? { subscriptionId: x.subscriptionId } : {}),
    })),
  };
}

function metaPort(config: Config, agent: MetaAgent, storage: StorageService): MqttMetaPort {
  const view = agent.replica.view;
  let sessionsVersion = 0;
  agent.replica.subscribe(({ event }) => {
    if (event.type.startsWith('mqtt.session.') || event.type === 'state.restored') sessionsVersion++;
  });
  return {
    sessionsVersion: () => sessionsVersion,
    sessions: (): StoredSession[] => view.mqttSessions.list().map(storedSession),
    session: (clientId) => {
      const s = view.mqttSessions.get(clientId);
      return s ? storedSession(s) : undefined;
    },
    putSession: (s) => propose(agent, { kind: 'mqtt.session.put', ...s }),
    deleteSession: (clientId) => propose(agent, { kind: 'mqtt.session.delete', clientId }, ['not_found']),
    retainedIndex: () => view.mqttRetained.list().map((e) => ({ topic: e.topic, shard: e.shard, offset: e.offset })),
    setRetained: (topic, shard, offset) => propose(agent, { kind: 'mqtt.retained.set', topic, shard, offset, nowMs: Date.now() }),
    clearRetained: (topic) => propose(agent, { kind: 'mqtt.retained.clear', topic }, ['not_found']),
    nodeAlive: (nodeId) => view.nodes.get(nodeId)?.state === 'alive',
    ensureInternalShard: (topic) => ensureInternalShard(config, agent, storage, topic),
  };
}

function userDirectory(agent: MetaAgent): UserDirectory {
  const view = agent.replica.view;
  let version = 0;
  agent.replica.subscribe(({ event }) => {
    if (event.type.startsWith('user.') || event.type.startsWith('mqtt.acl.') || event.type === 'state.restored') version++;
  });
  return {
    getUser: (username) => {
      const u = view.users.get(username);
      return u ? { credential: u.passwordHash, superuser: u.superuser } : undefined;
    },
    aclRules: () =>
      view.mqttAcl.list().map((r) => ({
        permission: r.permission,
        action: r.action,
        topic: r.topic,
        ...(r.user !== undefined ? { user: r.user } : {}),
        ...(r.clientId !== undefined ? { clientId: r.clientId } : {}),
      })),
    version: () => version,
  };
}

/** The broker nodes as the meta replica knows them, and word of every change to them. */
function peerDirectory(agent: MetaAgent): PeerDirectory {
  const view = agent.replica.view;
  return {
    brokers: () => view.nodes.withRole('broker').map((n) => ({ id: n.id, grpcAddr: n.grpcAddr, alive: n.state === 'alive' })),
    onChange: (fn) =>
      agent.replica.subscribe(({ event }) => {
        if (event.type.startsWith('node.') || event.type === 'state.restored') fn();
      }),
  };
}

/**
 * The node's MQTT server; with `rpc` (the node's inner gRPC server) it joins the
 * cluster routing of the other brokers (broker/mqtt/cluster.ts).
 */
export function createMqttServer(config: Config, log: Logger, registry: Registry, agent: MetaAgent, storage: StorageService, rpc?: GrpcServer): MqttServer {
  const m = config.mqtt;
  const host = config.bind_host;
  const listeners: MqttListenerSpec[] = [];
  const tls = tlsConfigured(config);
  if (m.tcp_port !== 0) listeners.push({ kind: 'tcp', host, port: m.tcp_port });
  if (m.tls_port !== 0 && tls) listeners.push({ kind: 'tls', host, port: m.tls_port });
  if (m.ws_port !== 0) listeners.push({ kind: 'ws', host, port: m.ws_port });
  if (m.wss_port !== 0 && tls) listeners.push({ kind: 'wss', host, port: m.wss_port });
  const settings = mqttSettings(config);
  const server = new MqttServer({
    settings,
    // StorageService hands out its adapter once started; the store only asks for it in open().
    // On the journal every broker reaches every session log: messages for a down broker's sessions are queued in its log.
    store: new DurableMqttStore(metaPort(config, agent, storage), storage, config.node_id, log, { queueForUnreachable: config.storage.default_engine === 'journal' }),
    users: userDirectory(agent),
    log,
    metrics: new MqttMetrics(registry),
    listeners,
    ...(tls ? { tls: { cert: config.tls.cert as string, key: config.tls.key as string, ...(config.tls.ca !== undefined ? { ca: config.tls.ca } : {}), verifyClient: config.tls.verify_client } } : {}),
    wsPath: m.ws_path,
    version: VERSION,
  });
  if (rpc) {
    server.cluster = new MqttCluster({
      nodeId: config.node_id,
      clusterName: config.cluster_name,
      broker: server.broker,
      directory: peerDirectory(agent),
      server: rpc,
      log: log.child({ part: 'cluster' }),
      registry,
    });
  }
  return server;
}
