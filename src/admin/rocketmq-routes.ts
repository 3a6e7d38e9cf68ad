/**
 * The RocketMQ operator surface of the admin API, in the spirit of mqadmin
 * (robust-ctl rocketmq drives it):
 *
 *   GET    /api/v1/rocketmq/topics                        topicList: topics with queues and message type
 *   PUT    /api/v1/rocketmq/topics/{topic}                updateTopic: create, or add queues / change the type
 *          { "queues"?: n, "message_type"?: "NORMAL"|"FIFO"|"DELAY"|"TRANSACTION"|"MIXED" }
 *   DELETE /api/v1/rocketmq/topics/{topic}                deleteTopic
 *   GET    /api/v1/rocketmq/topics/{topic}/route          topicRoute: queues, leaders, endpoints
 *   GET    /api/v1/rocketmq/groups                        consumerProgress: groups with lag and in-flight
 *   GET    /api/v1/rocketmq/groups/{group}                consumerProgress GROUP: per queue offsets and lag
 *   GET    /api/v1/rocketmq/topics/{topic}/messages?key=K[&max=N][&scan=N]
 *                                                         queryMsgByKey
 *   GET    /api/v1/rocketmq/topics/{topic}/messages/{id}[?scan=N]
 *                                                         queryMsgById
 *
 * Lookups scan at most `scan` messages per queue (default 10000): storage
 * keeps no index of keys or ids.
 */
import { HttpError, type HttpServer } from './http-server.js';
import { readJsonBody } from './meta-routes.js';

export interface RocketmqTopicView {
  topic: string;
  queues: number;
  message_type: string;
  engine: string;
  /** The protocol that created it, when known. */
  protocol: string | null;
  created_at_ms: number;
}

export interface RocketmqUpdateTopicView {
  topic: RocketmqTopicView;
  created: boolean;
  /** What changed, in words ("queues 2 -> 4"); empty when nothing did. */
  changes: string[];
}

export interface RocketmqRouteQueueView {
  queue: number;
  /** Node leading the queue; null while it has none. */
  leader: number | null;
  replicas: number[];
  /** The leader's RocketMQ gRPC address as clients are told it; null when it advertises none (down, or no RocketMQ listener). */
  endpoint: string | null;
}

export interface RocketmqRouteBrokerView {
  broker: string;
  node_id: number;
  endpoint: string;
  queues: number[];
}

export interface RocketmqTopicRouteView {
  topic: string;
  message_type: string;
  accept_message_types: string[];
  queues: RocketmqRouteQueueView[];
  /** What QueryRoute answers: one queue per broker, at its endpoint. */
  brokers: RocketmqRouteBrokerView[];
}

export interface RocketmqQueueProgressView {
  topic: string;
  queue: number;
  broker_offset: number | null;
  consumer_offset: number | null;
  committed_offset: number | null;
  lag: number | null;
  inflight: number;
  last_commit_ms: number | null;
}

export interface RocketmqGroupClientView {
  client_id: string;
  type: string;
  topics: string[];
  last_seen_ms: number;
}

export interface RocketmqGroupSummaryView {
  group: string;
  clients: number;
  topics: string[];
  total_lag: number;
  inflight: number;
}

export interface RocketmqGroupView {
  group: string;
  clients: RocketmqGroupClientView[];
  queues: RocketmqQueueProgressView[];
  total_lag: number;
  inflight: number;
}

export interface RocketmqMessageView {
  topic: string;
  queue: number;
  offset: number;
  message_id: string;
  type: string;
  tag: string | null;
  keys: string[];
  message_group: string | null;
  born_ms: number | null;
  born_host: string | null;
  store_ms: number | null;
  deliver_at_ms: number | null;
  properties: Record<string, string>;
  body_size: number;
  /** The body as UTF-8 text, or base64 when it is not valid UTF-8 (see body_encoding). */
  body: string;
  body_encoding: 'utf8' | 'base64';
}

export interface RocketmqLookupView {
  topic: string;
  messages: RocketmqMessageView[];
  scanned: number;
  scan_per_queue: number;
  queues_scanned: number[];
  /** Queues served by other brokers: ask their admin API. */
  queues_elsewhere: number[];
  /** Some queue holds older messages than the scan reached. */
  partial: boolean;
}

export interface LookupLimits {
  scanPerQueue: number;
  maxResults: number;
}

export interface RocketmqAdmin {
  /** Why this node cannot answer broker questions (consumer progress, message lookups), or undefined. */
  brokerUnavailable(): string | undefined;
  topics(): RocketmqTopicView[];
  /** Throws HttpError 400 for bad input. */
  updateTopic(name: string, spec: { queues?: number; messageType?: string }): Promise<RocketmqUpdateTopicView>;
  deleteTopic(name: string): Promise<void>;
  route(name: string): RocketmqTopicRouteView | undefined;
  groups(): Promise<RocketmqGroupSummaryView[]>;
  group(name: string): Promise<RocketmqGroupView | undefined>;
  /** undefined when the topic does not exist. */
  messagesByKey(topic: string, key: string, limits: LookupLimits): Promise<RocketmqLookupView | undefined>;
  messageById(topic: string, id: string, limits: LookupLimits): Promise<RocketmqLookupView | undefined>;
}

export const DEFAULT_SCAN_PER_QUEUE = 10_000;
export const MAX_SCAN_PER_QUEUE = 1_000_000;
const DEFAULT_MAX_RESULTS = 64;
const MAX_RESULTS = 1000;

function intParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) throw new HttpError(400, 'invalid', `"${name}" must be an integer in 1..${max}, got "${raw}"`);
  return n;
}

function topicNotFound(name: string): HttpError {
  return new HttpError(404, 'not_found', `topic "${name}" does not exist`);
}

export function addRocketmqRoutes(http: HttpServer, admin: RocketmqAdmin): void {
  const base = '/api/v1/rocketmq';
  const guard = (): void => {
    const why = admin.brokerUnavailable();
    if (why !== undefined) throw new HttpError(503, 'broker_unavailable', why);
  };

  http.route('GET', `${base}/topics`, () => ({ body: { topics: admin.topics() } }));

  http.route('PUT', `${base}/topics/:topic`, async ({ params, req }) => {
    const body = await readJsonBody(req);
    const queues = body['queues'];
    const type = body['message_type'];
    if (queues !== undefined && (typeof queues !== 'number' || !Number.isInteger(queues) || queues < 1)) throw new HttpError(400, 'invalid', '"queues" must be an integer >= 1');
    if (type !== undefined && typeof type !== 'string') throw new HttpError(400, 'invalid', '"message_type" must be a string');
    const res = await admin.updateTopic(params['topic'] ?? '', { ...(queues !== undefined ? { queues } : {}), ...(type !== undefined ? { messageType: type } : {}) });
    return { status: res.created ? 201 : 200, body: res };
  });

  http.route('DELETE', `${base}/topics/:topic`, async ({ params }) => {
    const name = params['topic'] ?? '';
    await admin.deleteTopic(name);
    return { body: { deleted: name } };
  });

  http.route('GET', `${base}/topics/:topic/route`, ({ params }) => {
    const name = params['topic'] ?? '';
    const route = admin.route(name);
    if (!route) throw topicNotFound(name);
    return { body: route };
  });

  http.route('GET', `${base}/groups`, async () => {
    guard();
    return { body: { groups: await admin.groups() } };
  });

  http.route('GET', `${base}/groups/:group`, async ({ params }) => {
    guard();
    const name = params['group'] ?? '';
    const g = await admin.group(name);
    if (!g) throw new HttpError(404, 'not_found', `consumer group "${name}" is not known to RocketMQ on this node (no committed offsets, no consumers)`);
    return { body: g };
  });

  http.route('GET', `${base}/topics/:topic/messages`, async ({ params, query }) => {
    guard();
    const name = params['topic'] ?? '';
    const key = query.get('key');
    if (key === null || key === '') throw new HttpError(400, 'invalid', 'query parameter "key" is required');
    const limits = { scanPerQueue: intParam(query, 'scan', DEFAULT_SCAN_PER_QUEUE, MAX_SCAN_PER_QUEUE), maxResults: intParam(query, 'max', DEFAULT_MAX_RESULTS, MAX_RESULTS) };
    const res = await admin.messagesByKey(name, key, limits);
    if (!res) throw topicNotFound(name);
    return { body: res };
  });

  http.route('GET', `${base}/topics/:topic/messages/:id`, async ({ params, query }) => {
    guard();
    const name = params['topic'] ?? '';
    const id = params['id'] ?? '';
    const res = await admin.messageById(name, id, { scanPerQueue: intParam(query, 'scan', DEFAULT_SCAN_PER_QUEUE, MAX_SCAN_PER_QUEUE), maxResults: 1 });
    if (!res) throw topicNotFound(name);
    if (res.messages.length === 0) {
      const where = res.queues_elsewhere.length > 0 ? `; queues ${res.queues_elsewhere.join(',')} are served by other brokers` : '';
      throw new HttpError(404, 'message_not_found', `no message "${id}" among the ${res.scanned} messages scanned in topic "${name}" (at most ${res.scan_per_queue} per queue${where})`);
    }
    return { body: res };
  });
}
