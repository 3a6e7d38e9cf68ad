/**
 * MQTT durable sessions (clean start = false / session expiry > 0): where the
 * session lives and what it subscribed to, so another broker can take it over
 * after a failover or when the client reconnects elsewhere.
 *
 * `mqtt.session.put` replaces the whole session: a broker writes the session
 * as it stands (on connect, subscribe, unsubscribe, disconnect), so apply never
 * merges partial updates that could arrive from two brokers.
 */
import { sortedValues } from '../canonical.js';
import { Fields, checkList, invalid } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok } from '../result.js';
import { checkMqttFilter } from './mqtt-topic.js';

const CLIENT_ID = { max: 65_535 };
const MAX_SUBSCRIPTIONS = 10_000;

export interface MqttSubscription {
  readonly filter: string;
  readonly qos: 0 | 1 | 2;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  /** 0 send retained on subscribe, 1 only if new, 2 never. */
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId?: number;
}

export interface MqttSession {
  readonly clientId: string;
  /** 0xFFFFFFFF = never expires. */
  readonly expiryIntervalSec: number;
  /** The broker that holds (or last held) the connection. */
  readonly nodeId: number;
  readonly connected: boolean;
  readonly lastSeenMs: number;
  readonly subscriptions: readonly MqttSubscription[];
}

export type MqttSubscriptionInput = Pick<MqttSubscription, 'filter' | 'qos'> & Partial<Omit<MqttSubscription, 'filter' | 'qos'>>;

export interface MqttSessionPutCommand {
  readonly kind: 'mqtt.session.put';
  readonly clientId: string;
  readonly expiryIntervalSec: number;
  readonly nodeId: number;
  readonly connected: boolean;
  readonly lastSeenMs: number;
  readonly subscriptions: readonly MqttSubscriptionInput[];
}

export interface MqttSessionDeleteCommand {
  readonly kind: 'mqtt.session.delete';
  readonly clientId: string;
}

export type MqttSessionCommand = MqttSessionPutCommand | MqttSessionDeleteCommand;

export type MqttSessionEvent =
  | { readonly type: 'mqtt.session.updated'; readonly session: MqttSession; readonly previous?: MqttSession }
  | { readonly type: 'mqtt.session.deleted'; readonly session: MqttSession };

export type MqttSessionsState = Map<string, MqttSession>;

export interface MqttSessionsQuery {
  get(clientId: string): MqttSession | undefined;
  /** Sorted by client id. */
  list(): MqttSession[];
  /** Sessions held by a node (to take over when it dies), sorted by client id. */
  onNode(nodeId: number): MqttSession[];
  count(): number;
}

const QOS = [0, 1, 2] as const;

function checkSubscription(raw: unknown, where: string): MqttSubscription {
  const f = Fields.of(raw, where);
  const subscriptionId = f.optInt('subscriptionId', { min: 1, max: 268_435_455 });
  const noLocal = f.optBool('noLocal');
  const retainAsPublished = f.optBool('retainAsPublished');
  const retainHandling = f.optOneOf('retainHandling', QOS);
  return withDefaults({
    filter: checkMqttFilter(f.raw('filter'), `${where}.filter`),
    qos: f.oneOf('qos', QOS),
    ...(noLocal !== undefined ? { noLocal } : {}),
    ...(retainAsPublished !== undefined ? { retainAsPublished } : {}),
    ...(retainHandling !== undefined ? { retainHandling } : {}),
    ...(subscriptionId !== undefined ? { subscriptionId } : {}),
  });
}

function withDefaults(s: MqttSubscriptionInput): MqttSubscription {
  return {
    filter: s.filter,
    qos: s.qos,
    noLocal: s.noLocal ?? false,
    retainAsPublished: s.retainAsPublished ?? false,
    retainHandling: s.retainHandling ?? 0,
    ...(s.subscriptionId !== undefined ? { subscriptionId: s.subscriptionId } : {}),
  };
}

/** Session fields, shared by the put command and snapshot entries. */
function checkSession(raw: unknown, where: string): MqttSession {
  const f = Fields.of(raw, where);
  const subscriptions = f.list('subscriptions', checkSubscription, { max: MAX_SUBSCRIPTIONS });
  const filters = new Set<string>();
  for (const s of subscriptions) {
    // A session holds at most one subscription per filter (MQTT 5.0 §3.8.4: a repeat replaces it).
    if (filters.has(s.filter)) invalid(`${where}: filter '${s.filter}' is subscribed twice`);
    filters.add(s.filter);
  }
  return {
    clientId: f.str('clientId', CLIENT_ID),
    expiryIntervalSec: f.int('expiryIntervalSec', { min: 0, max: 0xffff_ffff }),
    nodeId: f.nodeId('nodeId'),
    connected: f.bool('connected'),
    lastSeenMs: f.time('lastSeenMs'),
    subscriptions,
  };
}

function validate(raw: unknown): MqttSessionCommand {
  const kind = Fields.of(raw, 'mqtt session command').oneOf('kind', ['mqtt.session.put', 'mqtt.session.delete'] as const);
  if (kind === 'mqtt.session.delete') return { kind, clientId: Fields.of(raw, kind).str('clientId', CLIENT_ID) };
  return { kind, ...checkSession(raw, kind) };
}

function apply(sessions: MqttSessionsState, cmd: MqttSessionCommand): ApplyOutput<MqttSessionEvent> {
  if (cmd.kind === 'mqtt.session.delete') {
    const session = sessions.get(cmd.clientId);
    if (!session) return { result: fail('not_found', `no session for client '${cmd.clientId}'`), events: [] };
    sessions.delete(cmd.clientId);
    return { result: ok(), events: [{ type: 'mqtt.session.deleted', session }] };
  }
  const previous = sessions.get(cmd.clientId);
  const session: MqttSession = deepFreeze({
    clientId: cmd.clientId,
    expiryIntervalSec: cmd.expiryIntervalSec,
    nodeId: cmd.nodeId,
    connected: cmd.connected,
    lastSeenMs: cmd.lastSeenMs,
    subscriptions: cmd.subscriptions.map(withDefaults),
  });
  sessions.set(session.clientId, session);
  return { result: ok(), events: [{ type: 'mqtt.session.updated', session, ...(previous ? { previous } : {}) }] };
}

export const mqttSessionsRecord = defineRecord({
  name: 'mqttSessions',
  commands: ['mqtt.session.put', 'mqtt.session.delete'],
  initial: (): MqttSessionsState => new Map(),
  validate,
  apply,
  snapshot: (sessions: MqttSessionsState) => sortedValues(sessions).map((s) => ({ ...s, subscriptions: s.subscriptions.map((x) => ({ ...x })) })),
  restore(json: unknown): MqttSessionsState {
    const sessions: MqttSessionsState = new Map();
    for (const s of checkList(json, 'mqttSessions', checkSession)) {
      if (sessions.has(s.clientId)) invalid(`mqttSessions: '${s.clientId}' appears twice`);
      sessions.set(s.clientId, deepFreeze(s));
    }
    return sessions;
  },
  query: (read: () => MqttSessionsState): MqttSessionsQuery => ({
    get: (clientId) => read().get(clientId),
    list: () => sortedValues(read()),
    onNode: (nodeId) => sortedValues(read()).filter((s) => s.nodeId === nodeId),
    count: () => read().size,
  }),
});
