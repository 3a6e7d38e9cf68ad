/**
 * Shared helpers for the MQTT codec tests: fast-check arbitraries of valid packets per
 * protocol level, the canonical decoded form of a packet, and conversions to and from
 * mqtt-packet's packet objects (the independent oracle).
 */
import fc from 'fast-check';
import type { IConnectPacket, Packet as MpPacket, UserProperties as MpUserProperties } from 'mqtt-packet';
import { PROP_CONTEXTS, PacketType } from '../../../../src/broker/mqtt/codec/decoder.js';
import type {
  Packet,
  Properties,
  ProtocolLevel,
  QoS,
  SubscriptionRequest,
  UserProperties,
} from '../../../../src/broker/mqtt/codec/packets.js';

export const LEVELS: ProtocolLevel[] = [3, 4, 5];
export const CTX_WILL = 16;

/** Number of fast-check runs; MQTT_CODEC_RUNS overrides. */
export function runs(n: number): number {
  const env = Number(process.env.MQTT_CODEC_RUNS);
  return env > 0 ? env : n;
}

// ---------------------------------------------------------------------------------------
// Arbitraries.

/** Any Unicode string without U+0000 (well-formed: fast-check's 'binary' unit never emits lone surrogates). */
export const arbStr = (maxLength = 12): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', maxLength }).map((s) => s.replace(/\0/g, ''));
export const arbNonEmptyStr = (maxLength = 12): fc.Arbitrary<string> => arbStr(maxLength).map((s) => (s === '' ? 'x' : s));
export const arbBin = (maxLength = 16): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const arbU16 = fc.integer({ min: 0, max: 0xffff });
const arbU32 = fc.integer({ min: 0, max: 0xffffffff });
const arb01 = fc.integer({ min: 0, max: 1 });
const arbQos = fc.constantFrom<QoS>(0, 1, 2);
const arbPacketId = fc.integer({ min: 1, max: 0xffff });
const arbUserProps: fc.Arbitrary<UserProperties> = fc.array(fc.tuple(arbStr(6), arbStr(6)), { minLength: 1, maxLength: 4 });

const PROP_ARB: Record<number, [keyof Properties, fc.Arbitrary<unknown>]> = {
  0x01: ['payloadFormatIndicator', arb01],
  0x02: ['messageExpiryInterval', arbU32],
  0x03: ['contentType', arbStr()],
  0x08: ['responseTopic', arbStr()],
  0x09: ['correlationData', arbBin()],
  0x0b: ['subscriptionIdentifiers', fc.array(fc.integer({ min: 1, max: 268_435_455 }), { minLength: 1, maxLength: 3 })],
  0x11: ['sessionExpiryInterval', arbU32],
  0x12: ['assignedClientIdentifier', arbStr()],
  0x13: ['serverKeepAlive', arbU16],
  0x15: ['authenticationMethod', arbStr()],
  0x16: ['authenticationData', arbBin()],
  0x17: ['requestProblemInformation', arb01],
  0x18: ['willDelayInterval', arbU32],
  0x19: ['requestResponseInformation', arb01],
  0x1a: ['responseInformation', arbStr()],
  0x1c: ['serverReference', arbStr()],
  0x1f: ['reasonString', arbStr()],
  0x21: ['receiveMaximum', fc.integer({ min: 1, max: 0xffff })],
  0x22: ['topicAliasMaximum', arbU16],
  0x23: ['topicAlias', fc.integer({ min: 1, max: 0xffff })],
  0x24: ['maximumQoS', arb01],
  0x25: ['retainAvailable', arb01],
  0x26: ['userProperties', arbUserProps],
  0x27: ['maximumPacketSize', fc.integer({ min: 1, max: 0xffffffff })],
  0x28: ['wildcardSubscriptionAvailable', arb01],
  0x29: ['subscriptionIdentifiersAvailable', arb01],
  0x2a: ['sharedSubscriptionAvailable', arb01],
};

/** Every property id allowed in context `ctx` (a packet type or CTX_WILL). */
export function propIdsFor(ctx: number): number[] {
  const ids: number[] = [];
  for (let id = 0; id < PROP_CONTEXTS.length; id++) if ((PROP_CONTEXTS[id]! & (1 << ctx)) !== 0) ids.push(id);
  return ids;
}

/** Valid properties for context `ctx` (possibly none → undefined). */
export function arbProps(ctx: number): fc.Arbitrary<Properties | undefined> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const id of propIdsFor(ctx)) {
    const [key, arb] = PROP_ARB[id]!;
    model[key] = key === 'subscriptionIdentifiers' && ctx === PacketType.SUBSCRIBE ? fc.array(fc.integer({ min: 1, max: 268_435_455 }), { minLength: 1, maxLength: 1 }) : arb;
  }
  return fc.record(model, { requiredKeys: [] }).map((r) => {
    const pr = r as Properties;
    if (pr.authenticationData !== undefined && pr.authenticationMethod === undefined) pr.authenticationMethod = 'm';
    return Object.keys(pr).length === 0 ? undefined : pr;
  });
}

/** Every property allowed in `ctx`, each present (user properties twice, subscription ids as allowed). */
export function fullProps(ctx: number): Properties {
  const pr: Properties = {};
  const set = pr as Record<string, unknown>;
  const v: Record<number, unknown> = {
    0x01: 1, 0x02: 0xfffffffe, 0x03: 'text/plain; ü', 0x08: 'resp/topic', 0x09: Buffer.from([0, 1, 2, 0xff]),
    0x0b: ctx === PacketType.SUBSCRIBE ? [268_435_455] : [1, 127, 128, 16_383, 16_384, 268_435_455],
    0x11: 0xffffffff, 0x12: 'assigned-id', 0x13: 0xffff, 0x15: 'SCRAM-SHA-1', 0x16: Buffer.from('auth-data'),
    0x17: 0, 0x18: 123, 0x19: 1, 0x1a: 'resp-info', 0x1c: 'other.server:1883', 0x1f: 'because 🙂',
    0x21: 1, 0x22: 0xffff, 0x23: 0xffff, 0x24: 0, 0x25: 1,
    0x26: [['k', 'v'], ['k', 'v2'], ['ключ', '值']], 0x27: 0xffffffff, 0x28: 0, 0x29: 1, 0x2a: 0,
  };
  for (const id of propIdsFor(ctx)) set[PROP_ARB[id]![0]] = v[id];
  return pr;
}

const arbSubscription = (level: ProtocolLevel): fc.Arbitrary<SubscriptionRequest> =>
  level === 5
    ? fc.record({
        filter: arbNonEmptyStr(),
        qos: arbQos,
        noLocal: fc.boolean(),
        retainAsPublished: fc.boolean(),
        retainHandling: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
      })
    : fc.record({
        filter: arbNonEmptyStr(),
        qos: arbQos,
        noLocal: fc.constant(false),
        retainAsPublished: fc.constant(false),
        retainHandling: fc.constant<0>(0),
      });

export const V5_CODES: Record<string, number[]> = {
  connack: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2],
  auth: [0x00, 0x18, 0x19],
};
const v5 = (level: ProtocolLevel, ctx: number): fc.Arbitrary<Properties | undefined> => (level === 5 ? arbProps(ctx) : fc.constant(undefined));
const code = (level: ProtocolLevel, type: string): fc.Arbitrary<number> => (level === 5 ? fc.constantFrom(...V5_CODES[type]!) : fc.constant(0));

export function arbConnect(level: ProtocolLevel): fc.Arbitrary<Packet> {
  const will = fc.option(
    fc.record({ topic: arbNonEmptyStr(), payload: arbBin(), qos: arbQos, retain: fc.boolean(), properties: v5(level, CTX_WILL) }),
    { nil: undefined },
  );
  return fc
    .record({
      cleanStart: fc.boolean(),
      keepAlive: arbU16,
      clientId: arbStr(),
      will,
      username: fc.option(arbStr(), { nil: undefined }),
      password: fc.option(arbBin(), { nil: undefined }),
      properties: v5(level, PacketType.CONNECT),
    })
    .map((r) => ({
      type: 'connect' as const,
      protocolName: level === 3 ? 'MQIsdp' : 'MQTT',
      protocolLevel: level,
      ...r,
      // MQTT 3.1/3.1.1: no password without a user name
      password: level < 5 && r.username === undefined ? undefined : r.password,
    }));
}

/** Any valid packet (either direction) at `level`. */
export function arbPacket(level: ProtocolLevel): fc.Arbitrary<Packet> {
  const T = PacketType;
  const arbs = [
    arbConnect(level),
    fc.record({
      type: fc.constant('connack' as const),
      sessionPresent: level === 3 ? fc.constant(false) : fc.boolean(),
      reasonCode: level === 5 ? code(5, 'connack') : fc.integer({ min: 0, max: 5 }),
      properties: v5(level, T.CONNACK),
    }),
    fc
      .record({
        topic: arbNonEmptyStr(20),
        payload: arbBin(64),
        qos: arbQos,
        retain: fc.boolean(),
        dup: fc.boolean(),
        packetId: arbPacketId,
        properties: v5(level, T.PUBLISH),
        dropTopic: fc.boolean(),
      })
      .map(({ dropTopic, ...r }) => ({
        type: 'publish' as const,
        ...r,
        topic: dropTopic && r.properties?.topicAlias !== undefined ? '' : r.topic,
        dup: r.qos > 0 && r.dup,
        packetId: r.qos > 0 ? r.packetId : undefined,
      })),
    ...(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const).map((type) =>
      fc.record({
        type: fc.constant(type),
        packetId: arbPacketId,
        reasonCode: code(level, type),
        properties: v5(level, T[type.toUpperCase() as 'PUBACK']),
      }),
    ),
    fc.record({
      type: fc.constant('subscribe' as const),
      packetId: arbPacketId,
      subscriptions: fc.array(arbSubscription(level), { minLength: 1, maxLength: 4 }),
      properties: v5(level, T.SUBSCRIBE),
    }),
    fc.record({
      type: fc.constant('suback' as const),
      packetId: arbPacketId,
      reasonCodes: fc.array(level === 5 ? code(5, 'suback') : fc.constantFrom(0, 1, 2, 0x80), { minLength: 1, maxLength: 4 }),
      properties: v5(level, T.SUBACK),
    }),
    fc.record({
      type: fc.constant('unsubscribe' as const),
      packetId: arbPacketId,
      filters: fc.array(arbNonEmptyStr(), { minLength: 1, maxLength: 4 }),
      properties: v5(level, T.UNSUBSCRIBE),
    }),
    fc.record({
      type: fc.constant('unsuback' as const),
      packetId: arbPacketId,
      reasonCodes: level === 5 ? fc.array(code(5, 'unsuback'), { minLength: 1, maxLength: 4 }) : fc.constant<number[]>([]),
      properties: v5(level, T.UNSUBACK),
    }),
    fc.constant({ type: 'pingreq' as const }),
    fc.constant({ type: 'pingresp' as const }),
    fc.record({ type: fc.constant('disconnect' as const), reasonCode: code(level, 'disconnect'), properties: v5(level, T.DISCONNECT) }),
  ] as unknown as fc.Arbitrary<Packet>[];
  if (level === 5) {
    arbs.push(fc.record({ type: fc.constant('auth' as const), reasonCode: code(5, 'auth'), properties: arbProps(T.AUTH) }) as fc.Arbitrary<Packet>);
  }
  return fc.oneof(...arbs);
}

/** One packet of every type with every property its type allows. */
export function everyPacket(level: ProtocolLevel): Packet[] {
  const T = PacketType;
  const pr = (ctx: number) => (level === 5 ? fullProps(ctx) : undefined);
  const list: Packet[] = [
    {
      type: 'connect', protocolName: level === 3 ? 'MQIsdp' : 'MQTT', protocolLevel: level, cleanStart: true, keepAlive: 65535, clientId: 'client-ü',
      will: { topic: 'will/topic', payload: Buffer.from('bye'), qos: 2, retain: true, properties: pr(CTX_WILL) },
      username: 'user', password: Buffer.from([0, 1, 2, 255]), properties: pr(T.CONNECT),
    },
    { type: 'connect', protocolName: level === 3 ? 'MQIsdp' : 'MQTT', protocolLevel: level, cleanStart: false, keepAlive: 0, clientId: '' },
    { type: 'connack', sessionPresent: level > 3, reasonCode: 0, properties: pr(T.CONNACK) },
    { type: 'connack', sessionPresent: false, reasonCode: level === 5 ? 0x86 : 4 },
    { type: 'publish', topic: 'a/b/c', payload: Buffer.alloc(300, 7), qos: 0, retain: true, dup: false, properties: pr(T.PUBLISH) },
    { type: 'publish', topic: 'ü/€/𝄞', payload: Buffer.alloc(0), qos: 1, retain: false, dup: true, packetId: 1 },
    { type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 65535, properties: pr(T.PUBLISH) },
  ];
  for (const type of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
    list.push({ type, packetId: 42, reasonCode: 0 });
    list.push({ type, packetId: 43, reasonCode: level === 5 ? (type === 'pubrel' || type === 'pubcomp' ? 0x92 : 0x10) : 0 });
    list.push({ type, packetId: 44, reasonCode: 0, properties: pr(T[type.toUpperCase() as 'PUBACK']) });
  }
  list.push(
    {
      type: 'subscribe', packetId: 7, properties: pr(T.SUBSCRIBE),
      subscriptions: [
        { filter: 'a/+/c', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { filter: 'x/#', qos: 2, noLocal: level === 5, retainAsPublished: level === 5, retainHandling: level === 5 ? 2 : 0 },
        { filter: '$share/g/t', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: level === 5 ? 1 : 0 },
      ],
    },
    { type: 'suback', packetId: 7, reasonCodes: level === 5 ? [0, 1, 2, 0x80, 0x8f, 0xa2] : [0, 1, 2, 0x80], properties: pr(T.SUBACK) },
    { type: 'unsubscribe', packetId: 8, filters: ['a/+/c', 'x/#'], properties: pr(T.UNSUBSCRIBE) },
    { type: 'unsuback', packetId: 8, reasonCodes: level === 5 ? [0, 0x11] : [], properties: pr(T.UNSUBACK) },
    { type: 'pingreq' },
    { type: 'pingresp' },
    { type: 'disconnect', reasonCode: 0 },
    { type: 'disconnect', reasonCode: level === 5 ? 0x04 : 0 },
    { type: 'disconnect', reasonCode: level === 5 ? 0x8b : 0, properties: pr(T.DISCONNECT) },
  );
  if (level === 5) {
    list.push({ type: 'auth', reasonCode: 0 }, { type: 'auth', reasonCode: 0x18, properties: pr(T.AUTH) });
  }
  return list;
}

// ---------------------------------------------------------------------------------------
// Canonical forms.

/** Deep copy without undefined-valued keys (Buffers kept as they are). */
export function norm<T>(x: T): T {
  if (Array.isArray(x)) return x.map(norm) as T;
  if (x === null || typeof x !== 'object' || Buffer.isBuffer(x)) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = norm(v);
  return out as T;
}

/** What decoding `encode(p, level)` must give, in `norm` form. */
export function expectedDecoded(p: Packet, level: ProtocolLevel): Packet {
  const q = structuredCloneWithBuffers(p);
  const r = q as unknown as Record<string, unknown>;
  if (level < 5) {
    delete r.properties;
    if ('reasonCode' in q && q.type !== 'connack') (q as { reasonCode: number }).reasonCode = 0;
  } else if (r.properties !== undefined && Object.keys(r.properties as object).length === 0) {
    delete r.properties;
  }
  switch (q.type) {
    case 'connect':
      q.protocolName = level === 3 ? 'MQIsdp' : 'MQTT';
      q.protocolLevel = level;
      if (q.will && level < 5) delete q.will.properties;
      break;
    case 'connack':
      if (level === 3) q.sessionPresent = false;
      break;
    case 'suback':
      if (level < 5) q.reasonCodes = q.reasonCodes.map((c) => (c <= 2 ? c : 0x80));
      break;
    case 'unsuback':
      if (level < 5) q.reasonCodes = [];
      break;
    case 'subscribe':
      if (level < 5) q.subscriptions = q.subscriptions.map((s) => ({ ...s, noLocal: false, retainAsPublished: false, retainHandling: 0 }));
      break;
  }
  return norm(q);
}

function structuredCloneWithBuffers<T>(x: T): T {
  if (Array.isArray(x)) return x.map(structuredCloneWithBuffers) as T;
  if (x === null || typeof x !== 'object') return x;
  if (Buffer.isBuffer(x)) return Buffer.from(x) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) out[k] = structuredCloneWithBuffers(v);
  return out as T;
}

// ---------------------------------------------------------------------------------------
// mqtt-packet conversions (its userProperties is an object: name -> value | values).

const MP_BOOL_PROPS = new Set([
  'payloadFormatIndicator', 'requestProblemInformation', 'requestResponseInformation', 'retainAvailable',
  'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable',
]);

function userPropsToMp(u: UserProperties): MpUserProperties {
  const o: Record<string, string | string[]> = {};
  for (const [k, v] of u) {
    const cur = o[k];
    if (cur === undefined) o[k] = v;
    else if (Array.isArray(cur)) cur.push(v);
    else o[k] = [cur, v];
  }
  return o;
}

/** Our properties in mqtt-packet's shape. */
export function propsToMp(pr: Properties | undefined, ctx: number): Record<string, unknown> | undefined {
  if (pr === undefined) return undefined;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pr)) {
    if (v === undefined) continue;
    if (k === 'userProperties') o.userProperties = userPropsToMp(v as UserProperties);
    else if (k === 'subscriptionIdentifiers') {
      const ids = v as number[];
      o.subscriptionIdentifier = ctx === PacketType.SUBSCRIBE || ids.length === 1 ? ids[0] : ids;
    } else if (MP_BOOL_PROPS.has(k)) o[k] = v === 1;
    else o[k] = v;
  }
  return Object.keys(o).length === 0 ? undefined : o;
}

/** mqtt-packet's properties, canonicalised for comparison with `propsToMp(ours)`. */
export function mpPropsCanonical(pr: unknown): Record<string, unknown> | undefined {
  if (pr === undefined || pr === null) return undefined;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pr as Record<string, unknown>)) {
    if (v === undefined) continue;
    if (k === 'userProperties') o[k] = { ...(v as object) };
    else if (k === 'subscriptionIdentifier' && Array.isArray(v) && v.length === 1) o[k] = v[0];
    else o[k] = v;
  }
  return Object.keys(o).length === 0 ? undefined : o;
}

/** Our packet as an mqtt-packet object, for its generate() and for comparing with its parser. */
export function toMp(p: Packet, level: ProtocolLevel): MpPacket {
  const T = PacketType;
  const props = (ctx: number, pr: Properties | undefined) => (level === 5 ? propsToMp(pr, ctx) : undefined);
  switch (p.type) {
    case 'connect': {
      const c: IConnectPacket = {
        cmd: 'connect',
        protocolId: level === 3 ? 'MQIsdp' : 'MQTT',
        protocolVersion: level,
        clean: p.cleanStart,
        keepalive: p.keepAlive,
        clientId: p.clientId,
      };
      if (p.username !== undefined) c.username = p.username;
      if (p.password !== undefined) c.password = p.password;
      if (p.will) {
        c.will = { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain };
        const wp = props(CTX_WILL, p.will.properties);
        if (wp) c.will.properties = wp;
      }
      const cp = props(T.CONNECT, p.properties);
      if (cp) c.properties = cp;
      return c;
    }
    case 'connack':
      return clean({ cmd: 'connack', sessionPresent: p.sessionPresent, ...(level === 5 ? { reasonCode: p.reasonCode } : { returnCode: p.reasonCode }), properties: props(T.CONNACK, p.properties) }) as unknown as MpPacket;
    case 'publish':
      return clean({ cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, dup: p.dup, retain: p.retain, messageId: p.packetId, properties: props(T.PUBLISH, p.properties) }) as unknown as MpPacket;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return clean({ cmd: p.type, messageId: p.packetId, ...(level === 5 ? { reasonCode: p.reasonCode } : {}), properties: props(T[p.type.toUpperCase() as 'PUBACK'], p.properties) }) as unknown as MpPacket;
    case 'subscribe':
      return clean({
        cmd: 'subscribe',
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) => (level === 5 ? { topic: s.filter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling } : { topic: s.filter, qos: s.qos })),
        properties: props(T.SUBSCRIBE, p.properties),
      }) as unknown as MpPacket;
    case 'suback':
      return clean({ cmd: 'suback', messageId: p.packetId, granted: p.reasonCodes, properties: props(T.SUBACK, p.properties) }) as unknown as MpPacket;
    case 'unsubscribe':
      return clean({ cmd: 'unsubscribe', messageId: p.packetId, unsubscriptions: p.filters, properties: props(T.UNSUBSCRIBE, p.properties) }) as unknown as MpPacket;
    case 'unsuback':
      return clean({ cmd: 'unsuback', messageId: p.packetId, ...(level === 5 ? { granted: p.reasonCodes } : {}), properties: props(T.UNSUBACK, p.properties) }) as unknown as MpPacket;
    case 'pingreq':
    case 'pingresp':
      return { cmd: p.type };
    case 'disconnect':
      return clean({ cmd: 'disconnect', ...(level === 5 ? { reasonCode: p.reasonCode } : {}), properties: props(T.DISCONNECT, p.properties) }) as unknown as MpPacket;
    case 'auth':
      return clean({ cmd: 'auth', reasonCode: p.reasonCode, properties: props(T.AUTH, p.properties) }) as unknown as MpPacket;
  }
}

function clean(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * The meaning of an mqtt-packet parser result, as `toMp` would produce it, so that
 * `mpMeaning(parsed) deepEquals mpMeaning(toMp(ours))`.
 */
export function mpMeaning(m: MpPacket, level: ProtocolLevel): Record<string, unknown> {
  const x = m as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { cmd: x.cmd };
  const pick = (...keys: string[]) => {
    for (const k of keys) if (x[k] !== undefined && x[k] !== null) out[k] = x[k];
  };
  switch (x.cmd) {
    case 'connect': {
      pick('protocolId', 'protocolVersion', 'clean', 'keepalive', 'clientId', 'username', 'password');
      const w = x.will as Record<string, unknown> | undefined;
      if (w) {
        out.will = clean({ topic: w.topic, payload: Buffer.from(w.payload as Buffer), qos: w.qos, retain: w.retain, properties: level === 5 ? mpPropsCanonical(w.properties) : undefined });
      }
      break;
    }
    case 'connack':
      pick('sessionPresent', level === 5 ? 'reasonCode' : 'returnCode');
      break;
    case 'publish':
      pick('topic', 'qos', 'dup', 'retain');
      out.payload = Buffer.from(x.payload as Buffer);
      if ((x.qos as number) > 0) pick('messageId');
      break;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      pick('messageId');
      if (level === 5) out.reasonCode = x.reasonCode ?? 0;
      break;
    case 'subscribe':
      pick('messageId');
      out.subscriptions = (x.subscriptions as Record<string, unknown>[]).map((s) =>
        level === 5 ? { topic: s.topic, qos: s.qos, nl: !!s.nl, rap: !!s.rap, rh: s.rh ?? 0 } : { topic: s.topic, qos: s.qos },
      );
      break;
    case 'suback':
      pick('messageId', 'granted');
      break;
    case 'unsubscribe':
      pick('messageId', 'unsubscriptions');
      break;
    case 'unsuback':
      pick('messageId');
      if (level === 5) pick('granted');
      break;
    case 'disconnect':
    case 'auth':
      if (level === 5) out.reasonCode = x.reasonCode ?? 0;
      break;
  }
  if (level === 5) {
    const pr = mpPropsCanonical(x.properties);
    if (pr) out.properties = pr;
  }
  return out;
}
