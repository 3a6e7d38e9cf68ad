/**
 * In-process MQTT broker for tests: the real MqttServer and listeners on
 * 127.0.0.1 (free ports), with either the MemoryMqttStore or the DurableMqttStore
 * over a MemoryEngine and an in-memory stand-in for the meta service (so a
 * "restart" can be simulated by starting a second server on the same state).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import { MqttMetrics } from '../../src/broker/mqtt/metrics.js';
import { MqttServer, type MqttListenerSpec } from '../../src/broker/mqtt/server.js';
import { defaultMqttSettings, type MqttAclRuleConfig, type MqttSettings } from '../../src/broker/mqtt/settings.js';
import { MemoryMqttStore, type MqttStore, type StoredSession } from '../../src/broker/mqtt/store.js';
import { DurableMqttStore, type MqttMetaPort } from '../../src/broker/mqtt/durable-store.js';
import type { MqttUser, UserDirectory } from '../../src/broker/mqtt/auth.js';
import { MemoryEngine } from '../../src/storage/memory/index.js';
import type { StorageAdapter } from '../../src/storage/types.js';

export class FakeMeta implements MqttMetaPort {
  readonly sessionMap = new Map<string, StoredSession>();
  readonly retained = new Map<string, { topic: string; shard: string; offset: number }>();
  constructor(readonly engine: MemoryEngine = new MemoryEngine({ maxBytesPerShard: 64 * 1024 * 1024, retentionMs: -1, retentionBytes: -1 })) {}
  sessions(): StoredSession[] {
    return [...this.sessionMap.values()].map((s) => structuredClone(s));
  }
  async putSession(s: StoredSession): Promise<void> {
    this.sessionMap.set(s.clientId, structuredClone(s));
  }
  async deleteSession(clientId: string): Promise<void> {
    this.sessionMap.delete(clientId);
  }
  retainedIndex() {
    return [...this.retained.values()];
  }
  async setRetained(topic: string, shard: string, offset: number): Promise<void> {
    this.retained.set(topic, { topic, shard, offset });
  }
  async clearRetained(topic: string): Promise<void> {
    this.retained.delete(topic);
  }
  async ensureInternalShard(topic: string): Promise<string> {
    const shard = `${topic}-0`;
    await this.engine.createShard({ shard, topic, engine: 'memory', retentionMs: -1, retentionBytes: -1 });
    return shard;
  }
}

export class FakeUsers implements UserDirectory {
  readonly users = new Map<string, MqttUser>();
  rules: MqttAclRuleConfig[] = [];
  private v = 0;
  getUser(username: string): MqttUser | undefined {
    return this.users.get(username);
  }
  aclRules(): readonly MqttAclRuleConfig[] {
    return this.rules;
  }
  version(): number {
    return this.v;
  }
  changed(): void {
    this.v++;
  }
}

export interface TestBroker {
  server: MqttServer;
  port: number;
  wsPort: number;
  metrics: MqttMetrics;
  stop(): Promise<void>;
}

export const silentLog = pino({ level: process.env['TEST_LOG'] ?? 'silent' });

export async function startBroker(
  opts: { settings?: Partial<MqttSettings>; meta?: FakeMeta; store?: MqttStore; users?: FakeUsers; listeners?: MqttListenerSpec[]; tls?: { cert: string; key: string; ca?: string; verifyClient: boolean } } = {},
): Promise<TestBroker> {
  const metrics = new MqttMetrics();
  const store = opts.store ?? (opts.meta ? new DurableMqttStore(opts.meta, { adapter: opts.meta.engine as unknown as StorageAdapter }, 1, silentLog) : new MemoryMqttStore());
  const server = new MqttServer({
    settings: defaultMqttSettings(opts.settings),
    store,
    users: opts.users ?? new FakeUsers(),
    log: silentLog,
    metrics,
    listeners: opts.listeners ?? [
      { kind: 'tcp', host: '127.0.0.1', port: 0 },
      { kind: 'ws', host: '127.0.0.1', port: 0 },
    ],
    ...(opts.tls ? { tls: opts.tls } : {}),
    wsPath: '/mqtt',
    version: 'test',
  });
  await server.start();
  const addr = (kind: string) => Number(server.listeners().find((l) => l.name === `mqtt-${kind}`)?.address.split(':').pop() ?? 0);
  return { server, port: addr('tcp'), wsPort: addr('ws'), metrics, stop: () => server.stop() };
}

/** Connects mqtt.js and waits for CONNACK (rejects on a refusal or error). */
export function connect(port: number, opts: IClientOptions = {}, url = `mqtt://127.0.0.1:${port}`, onClient?: (c: MqttClient) => void): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
    onClient?.(c);
    const fail = (err: Error) => {
      c.end(true);
      reject(err);
    };
    c.once('connect', () => {
      c.off('error', fail);
      resolve(c);
    });
    c.once('error', fail);
  });
}

/** Connects with an Inbox attached before CONNACK, so messages sent right after it (a resumed session's queue) are caught. */
export async function connectWithInbox(port: number, opts: IClientOptions = {}, url?: string): Promise<{ client: MqttClient; inbox: Inbox }> {
  let inbox!: Inbox;
  const client = await connect(port, opts, url, (c) => (inbox = new Inbox(c)));
  return { client, inbox };
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqtt.IPublishPacket;
}

/** Collects messages of a client; `next(n)` waits for n more. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, packet });
      this.waiters = this.waiters.filter((w) => {
        if (this.messages.length >= w.n) {
          w.resolve();
          return false;
        }
        return true;
      });
    });
  }
  /** Waits until at least `n` messages arrived in total. */
  async waitFor(n: number, timeoutMs = 5000): Promise<Received[]> {
    if (this.messages.length < n) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${n} messages, got ${this.messages.length}: ${this.messages.map((m) => m.topic).join(', ')}`)), timeoutMs);
        this.waiters.push({
          n,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
      });
    }
    return this.messages;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function endClient(c: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => c.end(force, {}, () => resolve()));
}
