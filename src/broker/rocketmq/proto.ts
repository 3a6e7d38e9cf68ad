/**
 * The RocketMQ 5 gRPC protocol (apache.rocketmq.v2), loaded at run time from
 * the .proto files the official Node client ships (rocketmq-client-nodejs/proto),
 * so the wire format is exactly the one that client speaks and nothing is copied
 * into this repository.
 *
 * The interfaces below are the fields this broker reads or writes, as
 * proto-loader hands them over with the options used here: camelCase names,
 * int64 as numbers (offsets stay below 2^53), enums as their names, absent
 * fields left out (so presence can be told from a zero value).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: true,
};

/** The directory holding `apache/rocketmq/v2/*.proto` inside the installed client package. */
export function protoRoot(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('rocketmq-client-nodejs/package.json')), 'proto');
}

let cached: grpc.ServiceDefinition | undefined;

/** apache.rocketmq.v2.MessagingService, loaded once per process. */
export function messagingServiceDefinition(): grpc.ServiceDefinition {
  if (!cached) {
    const definition = protoLoader.loadSync('apache/rocketmq/v2/service.proto', { ...LOADER_OPTIONS, includeDirs: [protoRoot()] });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { apache: { rocketmq: { v2: { MessagingService: grpc.ServiceClientConstructor } } } };
    cached = pkg.apache.rocketmq.v2.MessagingService.service;
  }
  return cached;
}

// ------------------------------------------------------------------ enums (names as in definition.proto)

export type Code =
  | 'OK'
  | 'MULTIPLE_RESULTS'
  | 'BAD_REQUEST'
  | 'ILLEGAL_ACCESS_POINT'
  | 'ILLEGAL_TOPIC'
  | 'ILLEGAL_CONSUMER_GROUP'
  | 'ILLEGAL_MESSAGE_TAG'
  | 'ILLEGAL_MESSAGE_KEY'
  | 'ILLEGAL_MESSAGE_GROUP'
  | 'ILLEGAL_MESSAGE_PROPERTY_KEY'
  | 'INVALID_TRANSACTION_ID'
  | 'ILLEGAL_MESSAGE_ID'
  | 'ILLEGAL_FILTER_EXPRESSION'
  | 'ILLEGAL_INVISIBLE_TIME'
  | 'ILLEGAL_DELIVERY_TIME'
  | 'INVALID_RECEIPT_HANDLE'
  | 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE'
  | 'UNRECOGNIZED_CLIENT_TYPE'
  | 'MESSAGE_CORRUPTED'
  | 'CLIENT_ID_REQUIRED'
  | 'ILLEGAL_POLLING_TIME'
  | 'ILLEGAL_OFFSET'
  | 'NOT_FOUND'
  | 'MESSAGE_NOT_FOUND'
  | 'TOPIC_NOT_FOUND'
  | 'CONSUMER_GROUP_NOT_FOUND'
  | 'OFFSET_NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'MESSAGE_BODY_TOO_LARGE'
  | 'MESSAGE_BODY_EMPTY'
  | 'TOO_MANY_REQUESTS'
  | 'MESSAGE_PROPERTIES_TOO_LARGE'
  | 'INTERNAL_ERROR'
  | 'INTERNAL_SERVER_ERROR'
  | 'HA_NOT_AVAILABLE'
  | 'NOT_IMPLEMENTED'
  | 'PROXY_TIMEOUT'
  | 'UNSUPPORTED';

export type MessageType = 'MESSAGE_TYPE_UNSPECIFIED' | 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION' | 'LITE' | 'PRIORITY';
export type ClientType = 'CLIENT_TYPE_UNSPECIFIED' | 'PRODUCER' | 'PUSH_CONSUMER' | 'SIMPLE_CONSUMER' | 'PULL_CONSUMER' | 'LITE_PUSH_CONSUMER' | 'LITE_SIMPLE_CONSUMER';
export type Permission = 'PERMISSION_UNSPECIFIED' | 'NONE' | 'READ' | 'WRITE' | 'READ_WRITE';
export type FilterType = 'FILTER_TYPE_UNSPECIFIED' | 'TAG' | 'SQL';
export type AddressScheme = 'ADDRESS_SCHEME_UNSPECIFIED' | 'IPv4' | 'IPv6' | 'DOMAIN_NAME';
export type DigestType = 'DIGEST_TYPE_UNSPECIFIED' | 'CRC32' | 'MD5' | 'SHA1';
export type Encoding = 'ENCODING_UNSPECIFIED' | 'IDENTITY' | 'GZIP';

// ------------------------------------------------------------------ messages

export interface Status {
  code: Code;
  message: string;
}

export interface Duration {
  seconds?: number;
  nanos?: number;
}

export interface Timestamp {
  seconds?: number;
  nanos?: number;
}

export interface Resource {
  resourceNamespace?: string;
  name?: string;
}

export interface FilterExpression {
  type?: FilterType;
  expression?: string;
}

export interface Address {
  host: string;
  port: number;
}

export interface Endpoints {
  scheme: AddressScheme;
  addresses: Address[];
}

export interface Broker {
  name: string;
  id: number;
  endpoints: Endpoints;
}

export interface MessageQueue {
  topic?: Resource;
  id?: number;
  permission?: Permission;
  broker?: Broker;
  acceptMessageTypes?: MessageType[];
}

export interface Digest {
  type: DigestType;
  checksum: string;
}

export interface SystemProperties {
  tag?: string;
  keys?: string[];
  messageId?: string;
  bodyDigest?: Digest;
  bodyEncoding?: Encoding;
  messageType?: MessageType;
  bornTimestamp?: Timestamp;
  bornHost?: string;
  storeTimestamp?: Timestamp;
  storeHost?: string;
  deliveryTimestamp?: Timestamp;
  receiptHandle?: string;
  queueId?: number;
  queueOffset?: number;
  invisibleDuration?: Duration;
  deliveryAttempt?: number;
  messageGroup?: string;
  traceContext?: string;
}

export interface Message {
  topic?: Resource;
  userProperties?: Record<string, string>;
  systemProperties?: SystemProperties;
  body?: Buffer;
}

export interface RetryPolicy {
  maxAttempts: number;
  exponentialBackoff?: { initial: Duration; max: Duration; multiplier: number };
}

export interface SubscriptionEntry {
  topic?: Resource;
  expression?: FilterExpression;
}

export interface Settings {
  clientType?: ClientType;
  accessPoint?: Endpoints;
  backoffPolicy?: RetryPolicy;
  requestTimeout?: Duration;
  publishing?: { topics?: Resource[]; maxBodySize?: number; validateMessageType?: boolean };
  subscription?: {
    group?: Resource;
    subscriptions?: SubscriptionEntry[];
    fifo?: boolean;
    receiveBatchSize?: number;
    longPollingTimeout?: Duration;
  };
  userAgent?: { language?: string; version?: string; platform?: string; hostname?: string };
  /** The oneof member proto-loader names ('publishing' | 'subscription'). */
  pubSub?: string;
}

export interface TelemetryCommand {
  status?: Status;
  settings?: Settings;
  /** The oneof member proto-loader names. */
  command?: string;
}

export interface QueryRouteRequest {
  topic?: Resource;
  endpoints?: Endpoints;
}
export interface QueryRouteResponse {
  status: Status;
  messageQueues?: MessageQueue[];
}

export interface HeartbeatRequest {
  group?: Resource;
  clientType?: ClientType;
}

export interface SendMessageRequest {
  messages?: Message[];
}
export interface SendResultEntry {
  status: Status;
  messageId?: string;
  transactionId?: string;
  offset?: number;
  recallHandle?: string;
}
export interface SendMessageResponse {
  status: Status;
  entries?: SendResultEntry[];
}

export interface ReceiveMessageRequest {
  group?: Resource;
  messageQueue?: MessageQueue;
  filterExpression?: FilterExpression;
  batchSize?: number;
  invisibleDuration?: Duration;
  autoRenew?: boolean;
  longPollingTimeout?: Duration;
  attemptId?: string;
}
export type ReceiveMessageResponse = { status: Status } | { message: Message } | { deliveryTimestamp: Timestamp };

export interface AckMessageEntry {
  messageId?: string;
  receiptHandle?: string;
}
export interface AckMessageRequest {
  group?: Resource;
  topic?: Resource;
  entries?: AckMessageEntry[];
}
export interface AckMessageResultEntry {
  messageId: string;
  receiptHandle: string;
  status: Status;
}
export interface AckMessageResponse {
  status: Status;
  entries?: AckMessageResultEntry[];
}

export interface ChangeInvisibleDurationRequest {
  group?: Resource;
  topic?: Resource;
  receiptHandle?: string;
  invisibleDuration?: Duration;
  messageId?: string;
}
export interface ChangeInvisibleDurationResponse {
  status: Status;
  receiptHandle?: string;
}

export interface NotifyClientTerminationRequest {
  group?: Resource;
}

/** Every unary response carries a status first; this is the shape of the ones that carry nothing else. */
export interface StatusOnlyResponse {
  status: Status;
}

// ------------------------------------------------------------------ conversions

export function ok(message = 'OK'): Status {
  return { code: 'OK', message };
}

/** Milliseconds of a protobuf Duration; undefined when absent. */
export function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.floor(Number(d.nanos ?? 0) / 1e6);
}

export function toDuration(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function timestampMs(t: Timestamp | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
}

export function toTimestamp(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

export function endpointsOf(host: string, port: number): Endpoints {
  const scheme: AddressScheme = isIPv4(host) ? 'IPv4' : isIPv6(host) ? 'IPv6' : 'DOMAIN_NAME';
  return { scheme, addresses: [{ host, port }] };
}
