/**
 * A message inside the MQTT broker: what a PUBLISH carried, resolved (no topic
 * alias), with the properties that travel with it to subscribers (MQTT 5
 * §3.3.2.3: payload format, content type, response topic, correlation data,
 * user properties, message expiry). Immutable once published; every subscriber
 * shares the same object and payload buffer.
 */
import type { Properties, QoS, UserProperties } from './codec/packets.js';
import type { PreparedPublish } from './codec/encoder.js';

export interface ForwardedProperties {
  payloadFormatIndicator?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperties;
}

export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  /** The RETAIN flag as published (for retain-as-published). */
  readonly retain: boolean;
  readonly properties: ForwardedProperties | undefined;
  /** Epoch ms after which the message must not be delivered (MQTT 5 message expiry); undefined = never. */
  readonly expiresAt: number | undefined;
  /** Client id of the publisher ('' for messages the broker makes: $SYS, admin publish). */
  readonly publisher: string;
  readonly receivedAt: number;
  /** The PUBLISH encoding shared by every delivery (topic and properties encoded once); built on first send. */
  prepared?: PreparedPublish | undefined;
}

/** The properties of an incoming PUBLISH that are forwarded to subscribers. */
export function forwardedProperties(p: Properties | undefined): ForwardedProperties | undefined {
  if (!p) return undefined;
  const out: ForwardedProperties = {};
  let any = false;
  if (p.payloadFormatIndicator !== undefined) (out.payloadFormatIndicator = p.payloadFormatIndicator), (any = true);
  if (p.contentType !== undefined) (out.contentType = p.contentType), (any = true);
  if (p.responseTopic !== undefined) (out.responseTopic = p.responseTopic), (any = true);
  if (p.correlationData !== undefined) (out.correlationData = p.correlationData), (any = true);
  if (p.userProperties !== undefined && p.userProperties.length > 0) (out.userProperties = p.userProperties), (any = true);
  return any ? out : undefined;
}

export function isExpired(m: Message, now: number): boolean {
  return m.expiresAt !== undefined && now >= m.expiresAt;
}

/** Seconds left before expiry, as a PUBLISH's Message Expiry Interval (at least 1 while not expired). */
export function remainingExpirySec(m: Message, now: number): number | undefined {
  if (m.expiresAt === undefined) return undefined;
  return Math.max(1, Math.ceil((m.expiresAt - now) / 1000));
}

export function makeMessage(fields: {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: ForwardedProperties | undefined;
  expirySec?: number | undefined;
  publisher: string;
  now: number;
}): Message {
  return {
    topic: fields.topic,
    payload: fields.payload,
    qos: fields.qos,
    retain: fields.retain,
    properties: fields.properties,
    expiresAt: fields.expirySec === undefined ? undefined : fields.now + fields.expirySec * 1000,
    publisher: fields.publisher,
    receivedAt: fields.now,
  };
}
