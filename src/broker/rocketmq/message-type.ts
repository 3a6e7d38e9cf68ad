/**
 * A RocketMQ 5 topic has one message type, set when it is created (RocketMQ's
 * topic attribute `message.type`, kept here in the topic's config under the
 * same key). A topic without one — created over Kafka or MQTT, or auto-created
 * — is MIXED, as RocketMQ calls topics that predate typed topics: it takes
 * every type.
 */
import { RocketmqError } from './errors.js';
import type { MessageType } from './proto.js';

export const MESSAGE_TYPE_CONFIG_KEY = 'message.type';

export const TOPIC_MESSAGE_TYPES = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION', 'MIXED'] as const;
export type TopicMessageType = (typeof TOPIC_MESSAGE_TYPES)[number];

const SENDABLE: readonly MessageType[] = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'];

/** The problem with a `message.type` topic config value, or undefined when it is fine (or absent). */
export function checkMessageTypeConfig(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if ((TOPIC_MESSAGE_TYPES as readonly string[]).includes(value.toUpperCase())) return undefined;
  return `topic config "${MESSAGE_TYPE_CONFIG_KEY}" must be one of ${TOPIC_MESSAGE_TYPES.join(', ')}, got "${value}"`;
}

export function topicMessageType(config: Readonly<Record<string, string>>): TopicMessageType {
  const v = config[MESSAGE_TYPE_CONFIG_KEY]?.toUpperCase();
  return v !== undefined && (TOPIC_MESSAGE_TYPES as readonly string[]).includes(v) ? (v as TopicMessageType) : 'MIXED';
}

/** What QueryRoute lists in accept_message_types (the client refuses to send any other type). */
export function acceptedMessageTypes(type: TopicMessageType): MessageType[] {
  return type === 'MIXED' ? [...SENDABLE] : [type];
}

/**
 * The type a message declares, checked against what it carries: a message
 * group makes it FIFO, a delivery time DELAY, and neither may come with the
 * other (RocketMQ's MESSAGE_PROPERTY_CONFLICT_WITH_TYPE).
 */
export function messageTypeOf(declared: MessageType | undefined, hasGroup: boolean, hasDeliveryTime: boolean): MessageType {
  if (hasGroup && hasDeliveryTime) throw new RocketmqError('MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'a message may not have both a message group and a delivery timestamp');
  const implied: MessageType = hasGroup ? 'FIFO' : hasDeliveryTime ? 'DELAY' : 'NORMAL';
  if (declared === undefined || declared === 'MESSAGE_TYPE_UNSPECIFIED') return implied;
  if (declared === 'TRANSACTION' ? hasGroup || hasDeliveryTime : declared !== implied) {
    throw new RocketmqError('MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', `message type ${declared} does not match its properties (message group: ${hasGroup}, delivery timestamp: ${hasDeliveryTime})`);
  }
  return declared;
}

/** Throws RocketMQ's type-mismatch error when the topic does not take messages of this type. */
export function checkTopicAccepts(topic: string, type: TopicMessageType, message: MessageType): void {
  const accepted = acceptedMessageTypes(type);
  if (!accepted.includes(message)) {
    throw new RocketmqError(
      'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE',
      `current message type not match with topic accept message types: topic=${topic}, messageType=${message}, acceptMessageTypes=[${accepted.join(', ')}]`,
    );
  }
}
