import type { IncomingMessage } from 'node:http';
import { RobustError } from '../common/errors.js';
import { HttpError, type HttpServer } from './http-server.js';

/** A state-machine outcome as the meta service reports it. */
export type MetaResult = { ok: true; value?: unknown } | { ok: false; code: string; message: string };

/** What the admin API needs from the metadata service; the node assembly provides it. */
export interface MetaAdmin {
  clusterStatus(): Promise<unknown>;
  /** Wait until reads reflect every write committed before this call. */
  consistent(): Promise<void>;
  listTopics(): unknown[];
  getTopic(name: string): unknown;
  /** Per shard of the topic: engine, start and end offset, bytes (as this node holds them); undefined if no such topic. */
  topicShards(name: string): Promise<unknown[] | undefined>;
  createTopic(spec: { name: string; shards: number; engine?: string; config?: Record<string, string> }): Promise<MetaResult>;
  updateTopicConfig(name: string, set: Record<string, string>, unset: string[]): Promise<MetaResult>;
  deleteTopic(name: string): Promise<MetaResult>;
  addMember(nodeId: number, address: string): Promise<unknown>;
  removeMember(nodeId: number): Promise<unknown>;
  transferLeader(target: number | undefined): Promise<unknown>;
}

const MAX_BODY = 1024 * 1024;

/** HTTP status for a failure code from the state machine or the meta service. */
const STATUS_BY_CODE: Record<string, number> = {
  invalid: 400,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  conf_change_pending: 409,
  invalid_conf_change: 409,
  not_leader: 503,
  meta_timeout: 503,
  meta_stopped: 503,
  proposal_dropped: 503,
  transfer_timeout: 504,
};

/** The HTTP error for a meta failure code (unknown codes are 500s). */
export function asHttpError(code: string, message: string): HttpError {
  return new HttpError(STATUS_BY_CODE[code] ?? 500, code, message);
}

/** Run a meta call, turning its typed failures into JSON errors with the right status. */
async function metaCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (err instanceof RobustError && err.code in STATUS_BY_CODE) throw asHttpError(err.code, err.message);
    throw err;
  }
}

function unwrap(result: MetaResult): unknown {
  if (!result.ok) throw asHttpError(result.code, result.message);
  return result.value;
}

export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body_too_large', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid_json', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function intField(body: Record<string, unknown>, key: string, opts: { required: boolean; min: number }): number | undefined {
  const v = body[key];
  if (v === undefined && !opts.required) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < opts.min) throw new HttpError(400, 'invalid', `"${key}" must be an integer >= ${opts.min}`);
  return v;
}

function stringField(body: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'invalid', `"${key}" must be a non-empty string`);
  return v;
}

function stringMap(body: Record<string, unknown>, key: string): Record<string, string> | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new HttpError(400, 'invalid', `"${key}" must be an object of string values`);
  }
  return v as Record<string, string>;
}

function nodeIdParam(raw: string | undefined): number {
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1) throw new HttpError(400, 'invalid', `node id must be a positive integer, got "${raw}"`);
  return id;
}

export function addMetaRoutes(http: HttpServer, meta: MetaAdmin): void {
  http.route('GET', '/api/v1/cluster', async () => ({ body: await metaCall(() => meta.clusterStatus()) }));

  http.route('POST', '/api/v1/cluster/members', async ({ req }) => {
    const body = await readJsonBody(req);
    const nodeId = intField(body, 'node_id', { required: true, min: 1 })!;
    const addr = stringField(body, 'addr', true)!;
    return { status: 200, body: await metaCall(() => meta.addMember(nodeId, addr)) };
  });

  http.route('DELETE', '/api/v1/cluster/members/:id', async ({ params }) => ({ body: await metaCall(() => meta.removeMember(nodeIdParam(params['id']))) }));

  http.route('POST', '/api/v1/cluster/transfer-leader', async ({ req }) => {
    const body = await readJsonBody(req);
    const target = intField(body, 'node_id', { required: false, min: 1 });
    return { body: await metaCall(() => meta.transferLeader(target)) };
  });

  // Reads are linearizable: a write acknowledged by any node is visible here.
  http.route('GET', '/api/v1/topics', async () => {
    await metaCall(() => meta.consistent());
    return { body: { topics: meta.listTopics() } };
  });

  http.route('POST', '/api/v1/topics', async ({ req }) => {
    const body = await readJsonBody(req);
    const name = stringField(body, 'name', true)!;
    const shards = intField(body, 'shards', { required: false, min: 1 }) ?? 1;
    const engine = stringField(body, 'engine', false);
    const config = stringMap(body, 'config');
    await metaCall(async () => unwrap(await meta.createTopic({ name, shards, ...(engine ? { engine } : {}), ...(config ? { config } : {}) })));
    return { status: 201, body: meta.getTopic(name) };
  });

  // Change topic settings (e.g. {"set": {"flush": "sync"}, "unset": ["retention"]}).
  http.route('PATCH', '/api/v1/topics/:name', async ({ req, params }) => {
    const body = await readJsonBody(req);
    const set = stringMap(body, 'set') ?? {};
    const unsetRaw = body['unset'] ?? [];
    if (!Array.isArray(unsetRaw) || unsetRaw.some((k) => typeof k !== 'string')) throw new HttpError(400, 'invalid', '"unset" must be an array of strings');
    const name = params['name'] ?? '';
    await metaCall(async () => unwrap(await meta.updateTopicConfig(name, set, unsetRaw as string[])));
    return { body: meta.getTopic(name) };
  });

  http.route('GET', '/api/v1/topics/:name', async ({ params }) => {
    await metaCall(() => meta.consistent());
    const topic = meta.getTopic(params['name'] ?? '');
    if (!topic) throw new HttpError(404, 'not_found', `topic "${params['name']}" does not exist`);
    return { body: topic };
  });

  http.route('GET', '/api/v1/topics/:name/shards', async ({ params }) => {
    await metaCall(() => meta.consistent());
    const shards = await meta.topicShards(params['name'] ?? '');
    if (!shards) throw new HttpError(404, 'not_found', `topic "${params['name']}" does not exist`);
    return { body: { topic: params['name'], shards } };
  });

  http.route('DELETE', '/api/v1/topics/:name', async ({ params }) => {
    const name = params['name'] ?? '';
    await metaCall(async () => unwrap(await meta.deleteTopic(name)));
    return { body: { deleted: name } };
  });
}
