/**
 * The MQTT operator surface of the admin API: connected clients, sessions,
 * subscriptions, retained messages and publishing by hand (this node's broker),
 * plus users and MQTT ACL rules (cluster-wide, in the meta service).
 *
 *   GET    /api/v1/mqtt/clients[?limit=&offset=]    GET|DELETE /api/v1/mqtt/clients/{clientId}
 *   GET    /api/v1/mqtt/sessions[?limit=&offset=]   GET|DELETE /api/v1/mqtt/sessions/{clientId}
 *   GET    /api/v1/mqtt/subscriptions[?client_id=]
 *   GET    /api/v1/mqtt/retained[?limit=&offset=]   GET|DELETE /api/v1/mqtt/retained/{topic...}
 *   POST   /api/v1/mqtt/publish
 *   GET    /api/v1/mqtt/routes                       (the cluster route table: filters per broker node)
 *   GET|POST /api/v1/users                           DELETE /api/v1/users/{username}
 *   GET|POST /api/v1/mqtt/acl                        DELETE /api/v1/mqtt/acl/{id}
 *
 * The broker routes answer 503 on a node without the broker role (or while its
 * broker is not running); users and ACL rules work on any node.
 */
import { RobustError } from '../common/errors.js';
import { HttpError, type HttpHandler, type HttpServer } from './http-server.js';
import { readJsonBody, type MetaResult } from './meta-routes.js';

export interface MqttClientView {
  client_id: string;
  username: string | null;
  transport: string;
  remote: string;
  protocol_level: number;
  keep_alive: number;
  connected_at_ms: number;
  inflight: number;
  queued: number;
  subscriptions: number;
}

export interface MqttSubscriptionView {
  client_id: string;
  filter: string;
  qos: number;
  no_local: boolean;
  retain_as_published: boolean;
  retain_handling: number;
  subscription_id: number | null;
}

export interface MqttSessionView {
  client_id: string;
  persistent: boolean;
  expiry_interval_sec: number;
  connected: boolean;
  /** null while connected. */
  disconnected_at_ms: number | null;
  inflight: number;
  queued: number;
  subscriptions: number;
}

export interface MqttSessionDetail extends Omit<MqttSessionView, 'subscriptions'> {
  /** When a disconnected session ends (null: connected, or never expires). */
  expires_at_ms: number | null;
  subscriptions: Array<Omit<MqttSubscriptionView, 'client_id'>>;
}

export interface MqttRetainedView {
  topic: string;
  qos: number;
  payload_bytes: number;
  received_at_ms: number;
  expires_at_ms: number | null;
}

export interface MqttRetainedDetail extends MqttRetainedView {
  /** The payload as UTF-8 (lossy when it is not text); payload_base64 is exact. */
  payload: string;
  payload_base64: string;
  publisher: string;
  content_type: string | null;
}

export interface MqttPublishInput {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
}

/** One broker node's routes as this node knows them: its own sessions' filters, or what a peer announced. */
export interface MqttRouteNodeView {
  node_id: number;
  /** This node (the one asked). */
  local: boolean;
  /** For a peer: whether its cluster link is open (always true for this node). */
  connected: boolean;
  /** Sorted by filter; `subscriptions` (sessions holding the filter) is known only for this node. */
  routes: Array<{ filter: string; subscriptions: number | null }>;
}

export interface MqttRoutesView {
  node_id: number;
  nodes: MqttRouteNodeView[];
}

export interface MqttUserView {
  username: string;
  superuser: boolean;
}

export interface MqttAclRuleView {
  /** Absent for rules from the config file (they cannot be deleted through the API). */
  id?: number;
  source: 'config' | 'meta';
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  user?: string;
  client_id?: string;
}

export interface MqttAclRuleInput {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  user?: string;
  clientId?: string;
  /** 0-based position among the rules kept in meta (config rules always come first); default: last. */
  position?: number;
}

/** What the MQTT admin routes need; the node assembly implements it from its MqttServer and meta link. */
export interface MqttAdmin {
  /** Why the broker routes cannot answer on this node (no broker role, broker not running), or undefined when they can. */
  brokerUnavailable(): string | undefined;
  clients(): MqttClientView[];
  client(clientId: string): MqttClientView | undefined;
  /** Disconnects the client (MQTT 5: DISCONNECT 0x98). False if it is not connected here. */
  kickClient(clientId: string): boolean;
  sessions(): MqttSessionView[];
  session(clientId: string): MqttSessionDetail | undefined;
  /** Ends the session (kicking its client if connected). False if there is no such session. */
  deleteSession(clientId: string): boolean;
  subscriptions(clientId?: string): MqttSubscriptionView[];
  retained(): MqttRetainedView[];
  retainedMessage(topic: string): MqttRetainedDetail | undefined;
  /** Clears a retained message. False if the topic holds none. */
  clearRetained(topic: string): Promise<boolean>;
  /** Why this message cannot be published (bad topic, QoS over the maximum, ...), or undefined. */
  checkPublish(msg: MqttPublishInput): string | undefined;
  /** Routes a message as if a client had published it; resolves once durable effects are stored. */
  publish(msg: MqttPublishInput): Promise<{ matched: number }>;
  /** The cluster route table: this node's routes and those its peers announced. */
  routes(): MqttRoutesView;

  /** Wait until reads reflect every write committed before this call. */
  consistent(): Promise<void>;
  users(): MqttUserView[];
  createUser(username: string, password: string, superuser: boolean): Promise<MetaResult>;
  deleteUser(username: string): Promise<MetaResult>;
  /** Config rules first, then the ones kept in meta, in evaluation order. */
  aclRules(): MqttAclRuleView[];
  aclDefault(): 'allow' | 'deny';
  addAclRule(rule: MqttAclRuleInput): Promise<MetaResult>;
  removeAclRule(id: number): Promise<MetaResult>;
}

const STATUS_BY_CODE: Record<string, number> = {
  invalid: 400,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  not_leader: 503,
  meta_timeout: 503,
  meta_stopped: 503,
  proposal_dropped: 503,
};

/** Meta failures (no leader, timeout, ...) as JSON errors with the right status. */
function metaError(err: unknown): unknown {
  if (err instanceof RobustError && !(err instanceof HttpError) && err.code in STATUS_BY_CODE) return new HttpError(STATUS_BY_CODE[err.code]!, err.code, err.message);
  return err;
}

/** A meta write: its failure result becomes an HttpError; its value is returned. */
async function metaCall(fn: () => Promise<MetaResult>): Promise<unknown> {
  const result = await fn().catch((err: unknown) => {
    throw metaError(err);
  });
  if (!result.ok) throw new HttpError(STATUS_BY_CODE[result.code] ?? 500, result.code, result.message);
  return result.value;
}

/** A linearizable read point. */
async function metaRead(admin: MqttAdmin): Promise<void> {
  await admin.consistent().catch((err: unknown) => {
    throw metaError(err);
  });
}

function page<T>(items: T[], query: URLSearchParams, defaultLimit: number): { total: number; items: T[] } {
  const limit = intQuery(query, 'limit', 1, defaultLimit);
  const offset = intQuery(query, 'offset', 0, 0);
  return { total: items.length, items: items.slice(offset, offset + limit) };
}

function intQuery(query: URLSearchParams, key: string, min: number, dflt: number): number {
  const raw = query.get(key);
  if (raw === null || raw === '') return dflt;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new HttpError(400, 'invalid', `"${key}" must be an integer >= ${min}, got "${raw}"`);
  return Number(raw);
}

function str(body: Record<string, unknown>, key: string, required: true): string;
function str(body: Record<string, unknown>, key: string, required: false): string | undefined;
function str(body: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'invalid', `"${key}" must be a non-empty string`);
  return v;
}

function oneOf<T extends string>(body: Record<string, unknown>, key: string, allowed: readonly T[]): T {
  const v = body[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new HttpError(400, 'invalid', `"${key}" must be one of ${allowed.join(', ')}`);
  return v as T;
}

function bool(body: Record<string, unknown>, key: string): boolean {
  const v = body[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new HttpError(400, 'invalid', `"${key}" must be true or false`);
  return v;
}

function parsePublish(body: Record<string, unknown>): MqttPublishInput {
  const topic = body['topic'];
  if (typeof topic !== 'string') throw new HttpError(400, 'invalid', '"topic" must be a string');
  const text = body['payload'];
  const b64 = body['payload_base64'];
  if (text !== undefined && b64 !== undefined) throw new HttpError(400, 'invalid', 'give "payload" (UTF-8) or "payload_base64", not both');
  let payload: Buffer;
  if (b64 !== undefined) {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new HttpError(400, 'invalid', '"payload_base64" must be a base64 string');
    payload = Buffer.from(b64, 'base64');
  } else if (text === undefined) {
    payload = Buffer.alloc(0);
  } else {
    if (typeof text !== 'string') throw new HttpError(400, 'invalid', '"payload" must be a string');
    payload = Buffer.from(text, 'utf8');
  }
  const qos = body['qos'] ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new HttpError(400, 'invalid', '"qos" must be 0, 1 or 2');
  return { topic, payload, qos, retain: bool(body, 'retain') };
}

function notFound(what: string): HttpError {
  return new HttpError(404, 'not_found', what);
}

export function addMqttRoutes(http: HttpServer, admin: MqttAdmin): void {
  /** A broker route: 503 unless this node's broker is running. */
  const broker = (path: string, method: 'GET' | 'POST' | 'DELETE', handler: HttpHandler) =>
    http.route(method, path, (ctx) => {
      const why = admin.brokerUnavailable();
      if (why !== undefined) throw new HttpError(503, 'broker_unavailable', why);
      return handler(ctx);
    });
  const base = '/api/v1/mqtt';

  // ---------------------------------------------------------------- clients
  broker(`${base}/clients`, 'GET', ({ query }) => {
    const { total, items } = page(admin.clients(), query, 1000);
    return { body: { total, clients: items } };
  });

  broker(`${base}/clients/:clientId`, 'GET', ({ params }) => {
    const id = params['clientId'] ?? '';
    const c = admin.client(id);
    if (!c) throw notFound(`client "${id}" is not connected to this node`);
    return { body: c };
  });

  broker(`${base}/clients/:clientId`, 'DELETE', ({ params }) => {
    const id = params['clientId'] ?? '';
    if (!admin.kickClient(id)) throw notFound(`client "${id}" is not connected to this node`);
    return { body: { kicked: id } };
  });

  // ---------------------------------------------------------------- sessions
  broker(`${base}/sessions`, 'GET', ({ query }) => {
    const { total, items } = page(admin.sessions(), query, 1000);
    return { body: { total, sessions: items } };
  });

  broker(`${base}/sessions/:clientId`, 'GET', ({ params }) => {
    const id = params['clientId'] ?? '';
    const s = admin.session(id);
    if (!s) throw notFound(`no session for client "${id}" on this node`);
    return { body: s };
  });

  broker(`${base}/sessions/:clientId`, 'DELETE', ({ params }) => {
    const id = params['clientId'] ?? '';
    if (!admin.deleteSession(id)) throw notFound(`no session for client "${id}" on this node`);
    return { body: { deleted: id } };
  });

  broker(`${base}/subscriptions`, 'GET', ({ query }) => {
    const clientId = query.get('client_id') ?? undefined;
    const { total, items } = page(admin.subscriptions(clientId), query, 10_000);
    return { body: { total, subscriptions: items } };
  });

  // ---------------------------------------------------------------- retained
  broker(`${base}/retained`, 'GET', ({ query }) => {
    const { total, items } = page(admin.retained(), query, 1000);
    return { body: { total, retained: items } };
  });

  // The topic may contain '/': it is the rest of the path (each level, or the whole topic, percent-encoded).
  broker(`${base}/retained/*`, 'GET', ({ params }) => {
    const topic = params['*'] ?? '';
    const m = admin.retainedMessage(topic);
    if (!m) throw notFound(`no retained message on topic "${topic}"`);
    return { body: m };
  });

  broker(`${base}/retained/*`, 'DELETE', async ({ params }) => {
    const topic = params['*'] ?? '';
    if (!(await admin.clearRetained(topic))) throw notFound(`no retained message on topic "${topic}"`);
    return { body: { deleted: topic } };
  });

  // ---------------------------------------------------------------- publish
  broker(`${base}/publish`, 'POST', async ({ req }) => {
    const msg = parsePublish(await readJsonBody(req));
    const bad = admin.checkPublish(msg);
    if (bad !== undefined) throw new HttpError(400, 'invalid', bad);
    const { matched } = await admin.publish(msg);
    return { body: { topic: msg.topic, matched } };
  });

  // ---------------------------------------------------------------- cluster routes
  broker(`${base}/routes`, 'GET', () => ({ body: admin.routes() }));

  // ---------------------------------------------------------------- users (meta; any node)
  http.route('GET', '/api/v1/users', async () => {
    await metaRead(admin);
    return { body: { users: admin.users() } };
  });

  http.route('POST', '/api/v1/users', async ({ req }) => {
    const body = await readJsonBody(req);
    const username = str(body, 'username', true);
    const password = str(body, 'password', true);
    const superuser = bool(body, 'superuser');
    await metaCall(() => admin.createUser(username, password, superuser));
    return { status: 201, body: { username, superuser } };
  });

  http.route('DELETE', '/api/v1/users/:username', async ({ params }) => {
    const username = params['username'] ?? '';
    await metaCall(() => admin.deleteUser(username));
    return { body: { deleted: username } };
  });

  // ---------------------------------------------------------------- ACL (meta; any node)
  http.route('GET', `${base}/acl`, async () => {
    await metaRead(admin);
    return { body: { default: admin.aclDefault(), rules: admin.aclRules() } };
  });

  http.route('POST', `${base}/acl`, async ({ req }) => {
    const body = await readJsonBody(req);
    const rule: MqttAclRuleInput = {
      permission: oneOf(body, 'permission', ['allow', 'deny'] as const),
      action: oneOf(body, 'action', ['publish', 'subscribe', 'all'] as const),
      topic: str(body, 'topic', true),
    };
    const user = str(body, 'user', false);
    const clientId = str(body, 'client_id', false);
    if (user !== undefined) rule.user = user;
    if (clientId !== undefined) rule.clientId = clientId;
    const position = body['position'];
    if (position !== undefined) {
      if (typeof position !== 'number' || !Number.isInteger(position) || position < 0) throw new HttpError(400, 'invalid', '"position" must be an integer >= 0');
      rule.position = position;
    }
    const stored = (await metaCall(() => admin.addAclRule(rule))) as { id: number; permission: string; action: string; topic: string; user?: string; clientId?: string };
    return {
      status: 201,
      body: {
        id: stored.id,
        source: 'meta',
        permission: stored.permission,
        action: stored.action,
        topic: stored.topic,
        ...(stored.user !== undefined ? { user: stored.user } : {}),
        ...(stored.clientId !== undefined ? { client_id: stored.clientId } : {}),
      },
    };
  });

  http.route('DELETE', `${base}/acl/:id`, async ({ params }) => {
    const raw = params['id'] ?? '';
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new HttpError(400, 'invalid', `an ACL rule id is a positive integer, got "${raw}" (rules from the config file have no id and cannot be deleted here)`);
    await metaCall(() => admin.removeAclRule(Number(raw)));
    return { body: { deleted: Number(raw) } };
  });
}
