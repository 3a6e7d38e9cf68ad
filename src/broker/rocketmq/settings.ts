/**
 * The Settings a broker answers a client's Settings with, on the Telemetry
 * stream. The client blocks its startup until this answer arrives, then takes
 * its retry policy (producers), body size limit and type validation from it.
 */
import { DEFAULT_MAX_DELIVERY_ATTEMPTS } from './dead-letter-policy.js';
import { RocketmqError } from './errors.js';
import type { RetryPolicy, Settings } from './proto.js';
import { toDuration } from './proto.js';
import type { RocketmqSettings } from './ports.js';

/** Producers retry a failed send 3 times, waiting 10 ms, then twice as long each time, at most 1 s. */
const PRODUCER_BACKOFF: RetryPolicy = { maxAttempts: 3, exponentialBackoff: { initial: toDuration(10), max: toDuration(1000), multiplier: 2 } };

/** Push consumers redeliver a failed message up to the group's max delivery attempts, 1 s .. 2 h apart, then forward it to the DLQ. */
function consumerBackoff(maxAttempts: number): RetryPolicy {
  return { maxAttempts, exponentialBackoff: { initial: toDuration(1000), max: toDuration(2 * 3600 * 1000), multiplier: 2 } };
}

export interface SettingsContext {
  settings: RocketmqSettings;
  /** Whether the consumer group's topics deliver in message-group order (any FIFO topic among them). */
  fifo: boolean;
  /** The consumer group's max delivery attempts (RocketMQ's 16 when absent). */
  maxDeliveryAttempts?: number;
}

export function answerSettings(client: Settings, ctx: SettingsContext): Settings {
  const base = {
    ...(client.clientType !== undefined ? { clientType: client.clientType } : {}),
    ...(client.accessPoint ? { accessPoint: client.accessPoint } : {}),
    ...(client.requestTimeout ? { requestTimeout: client.requestTimeout } : {}),
    ...(client.userAgent ? { userAgent: client.userAgent } : {}),
  };
  if (client.publishing || client.clientType === 'PRODUCER') {
    return {
      ...base,
      backoffPolicy: PRODUCER_BACKOFF,
      publishing: { topics: client.publishing?.topics ?? [], maxBodySize: ctx.settings.maxBodyBytes, validateMessageType: true },
    };
  }
  if (client.subscription || client.clientType === 'SIMPLE_CONSUMER' || client.clientType === 'PUSH_CONSUMER') {
    const sub = client.subscription ?? {};
    return {
      ...base,
      backoffPolicy: consumerBackoff(ctx.maxDeliveryAttempts ?? DEFAULT_MAX_DELIVERY_ATTEMPTS),
      subscription: {
        ...(sub.group ? { group: sub.group } : {}),
        subscriptions: sub.subscriptions ?? [],
        fifo: ctx.fifo,
        receiveBatchSize: ctx.settings.receiveBatchSize,
        longPollingTimeout: toDuration(ctx.settings.longPollingTimeoutMs),
      },
    };
  }
  throw new RocketmqError('UNRECOGNIZED_CLIENT_TYPE', `client type ${client.clientType ?? 'unspecified'} is not supported: settings carry neither publishing nor subscription`);
}
