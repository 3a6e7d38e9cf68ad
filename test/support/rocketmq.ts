/**
 * What the RocketMQ e2e tests share: an admin API call, topic creation with a
 * message type, a silent logger for the clients, receiving a given message, and
 * the client's transaction resolutions (its proto enums are not exported by the package).
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { MessageView, SimpleConsumer, TransactionChecker } from 'rocketmq-client-nodejs';

export type Resolution = Awaited<ReturnType<TransactionChecker['check']>>;
/** apache.rocketmq.v2.TransactionResolution */
export const UNSPECIFIED = 0 as Resolution;
export const COMMIT = 1 as Resolution;
export const ROLLBACK = 2 as Resolution;

export const quietLogger = { info() {}, warn() {}, error() {}, debug() {}, close() {} };

/** One admin API call on a connection of its own (a kept-alive one would hold the test process open). */
export function admin(httpPort: number, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: httpPort, path, method, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export async function createTopic(httpPort: number, name: string, shards: number, config: Record<string, string> = {}): Promise<void> {
  const res = await admin(httpPort, 'POST', '/api/v1/topics', { name, shards, config });
  assert.equal(res.status, 201, res.text);
}

/** Receives until a message with this body arrives (acking every one), or the time is up. */
export async function receiveBody(c: SimpleConsumer, body: string, timeoutMs: number): Promise<MessageView | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const m of await c.receive(16, 10_000)) {
      await c.ack(m);
      if (m.body.toString() === body) return m;
    }
  }
  return undefined;
}
