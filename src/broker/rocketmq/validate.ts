/**
 * Checks of the names and values requests carry, each failing with the
 * RocketMQ code a proxy answers for it.
 */
import type { Metadata } from '@grpc/grpc-js';
import { isValidStoredTopicName } from '../../meta/state/records/topics.js';
import { RocketmqError } from './errors.js';
import type { Resource } from './proto.js';

const GROUP_RE = /^[%|a-zA-Z0-9_.-]{1,255}$/;

function plainName(resource: Resource | undefined, what: string, code: 'ILLEGAL_TOPIC' | 'ILLEGAL_CONSUMER_GROUP'): string {
  const name = resource?.name ?? '';
  if (name === '') throw new RocketmqError(code, `${what} name is missing`);
  if (resource?.resourceNamespace) throw new RocketmqError(code, `${what} "${name}" is in namespace "${resource.resourceNamespace}": namespaces are not supported`);
  return name;
}

/** A topic name any protocol could use (1..249 of [a-zA-Z0-9._-]), or a group's `%DLQ%` / `%RETRY%` system topic. */
export function topicName(resource: Resource | undefined): string {
  const name = plainName(resource, 'topic', 'ILLEGAL_TOPIC');
  if (!isValidStoredTopicName(name)) throw new RocketmqError('ILLEGAL_TOPIC', `topic name "${name.slice(0, 300)}" is not valid: 1..249 characters of [a-zA-Z0-9._-], optionally after %DLQ% or %RETRY%`);
  if (name.startsWith('__')) throw new RocketmqError('ILLEGAL_TOPIC', `topic "${name}" is reserved for the broker's internal use`);
  return name;
}

export function groupName(resource: Resource | undefined): string {
  const name = plainName(resource, 'consumer group', 'ILLEGAL_CONSUMER_GROUP');
  if (!GROUP_RE.test(name)) throw new RocketmqError('ILLEGAL_CONSUMER_GROUP', `consumer group "${name.slice(0, 300)}" is not valid: 1..255 characters of [%|a-zA-Z0-9_.-]`);
  return name;
}

/** The client id every RocketMQ client puts in its request headers. */
export function clientIdOf(metadata: Metadata): string | undefined {
  const v = metadata.get('x-mq-client-id')[0];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A duration in a request, checked against bounds (`code` is the error for one out of them). */
export function boundedMs(value: number | undefined, fallback: number, min: number, max: number, what: string, code: 'ILLEGAL_INVISIBLE_TIME' | 'ILLEGAL_POLLING_TIME'): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms < min || ms > max) throw new RocketmqError(code, `${what} of ${ms} ms is out of range: ${min}..${max} ms`);
  return ms;
}
