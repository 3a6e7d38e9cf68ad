/**
 * Telemetry: the bidirectional stream every client keeps open to each broker
 * it uses. The client opens it with its Settings and waits (at startup,
 * forever) for the broker's Settings in return; the broker also uses the
 * stream to send commands to the client. Heartbeat and NotifyClientTermination
 * keep the client registry current between streams.
 */
import type * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../common/errors.js';
import { maxDeliveryAttempts } from './dead-letter-policy.js';
import { RocketmqError, statusOf } from './errors.js';
import { topicMessageType } from './message-type.js';
import type { RocketmqDeps } from './ports.js';
import { ok, type HeartbeatRequest, type NotifyClientTerminationRequest, type Settings, type StatusOnlyResponse, type TelemetryCommand } from './proto.js';
import { answerSettings } from './settings.js';
import { clientIdOf, groupName } from './validate.js';

type TelemetryCall = grpc.ServerDuplexStream<TelemetryCommand, TelemetryCommand>;

/**
 * The Node client starts waiting for the broker's Settings only after it has
 * queried the routes of all its topics, but opens the stream (and gets the
 * answer) after the first one: an answer that arrives in between is missed and
 * the client waits for its next settings sync, 5 minutes later. So the answer
 * is repeated a few times while the stream stays open; a repeat is harmless.
 */
const SETTINGS_REPEATS_MS = [1000, 3000, 10_000];

function topicsOf(s: Settings): string[] {
  const names = [...(s.publishing?.topics ?? []).map((t) => t.name), ...(s.subscription?.subscriptions ?? []).map((e) => e.topic?.name)];
  return names.filter((n): n is string => typeof n === 'string' && n !== '');
}

/** Serves one Telemetry stream until either side ends it; `open` tracks the live ones so the server can end them at stop. */
export function serveTelemetry(deps: RocketmqDeps, call: TelemetryCall, open: Set<TelemetryCall>): void {
  const clientId = clientIdOf(call.metadata);
  const send = (cmd: TelemetryCommand): void => {
    if (!call.writableEnded && !call.destroyed) call.write(cmd);
  };
  let repeats: NodeJS.Timeout[] = [];
  const stopRepeats = (): void => {
    for (const t of repeats) clearTimeout(t);
    repeats = [];
  };
  const close = (): void => {
    stopRepeats();
    open.delete(call);
    if (clientId) deps.clients.detach(clientId, send);
  };
  open.add(call);
  call.on('error', (err: Error) => {
    close();
    deps.log.debug({ clientId, err: errorMessage(err) }, 'rocketmq: telemetry stream failed');
  });
  call.on('cancelled', close);
  call.on('end', () => {
    close();
    if (!call.writableEnded) call.end();
  });
  if (!clientId) {
    deps.metrics.request('Telemetry', 'CLIENT_ID_REQUIRED');
    send({ status: { code: 'CLIENT_ID_REQUIRED', message: 'the x-mq-client-id header is missing' } });
    call.end();
    close();
    return;
  }
  call.on('data', (cmd: TelemetryCommand) => {
    if (!cmd.settings) return; // answers to broker commands (stack traces, verifications): nothing asks for them yet
    try {
      const s = cmd.settings;
      const topics = topicsOf(s);
      const group = s.subscription?.group?.name ? groupName(s.subscription.group) : undefined;
      deps.clients.seen(clientId, deps.now(), { type: s.clientType ?? 'CLIENT_TYPE_UNSPECIFIED', group, topics, send });
      const fifo = (s.subscription?.subscriptions ?? []).some((e) => {
        const t = e.topic?.name ? deps.meta.topic(e.topic.name) : undefined;
        return t !== undefined && topicMessageType(t.config) === 'FIFO';
      });
      const maxAttempts = group !== undefined ? { maxDeliveryAttempts: maxDeliveryAttempts(group, deps.settings.groupMaxDeliveryAttempts, deps.settings.maxDeliveryAttempts) } : {};
      const answer: TelemetryCommand = { status: ok(), settings: answerSettings(s, { settings: deps.settings, fifo, ...maxAttempts }) };
      send(answer);
      stopRepeats();
      repeats = SETTINGS_REPEATS_MS.map((ms) => setTimeout(() => send(answer), ms).unref());
      deps.metrics.request('Telemetry', 'OK');
    } catch (err) {
      const status = statusOf(err);
      if (!(err instanceof RocketmqError)) deps.log.warn({ clientId, err: errorMessage(err) }, 'rocketmq: could not answer a client settings command');
      deps.metrics.request('Telemetry', status.code);
      send({ status });
    }
  });
}

export function heartbeat(deps: RocketmqDeps, req: HeartbeatRequest, metadata: grpc.Metadata): StatusOnlyResponse {
  const clientId = clientIdOf(metadata);
  if (!clientId) throw new RocketmqError('CLIENT_ID_REQUIRED', 'the x-mq-client-id header is missing');
  const isConsumer = req.clientType === 'SIMPLE_CONSUMER' || req.clientType === 'PUSH_CONSUMER' || req.clientType === 'PULL_CONSUMER';
  const group = isConsumer || req.group?.name ? groupName(req.group) : undefined;
  deps.clients.seen(clientId, deps.now(), { ...(req.clientType ? { type: req.clientType } : {}), ...(group !== undefined ? { group } : {}) });
  return { status: ok() };
}

export function notifyClientTermination(deps: RocketmqDeps, _req: NotifyClientTerminationRequest, metadata: grpc.Metadata): StatusOnlyResponse {
  const clientId = clientIdOf(metadata);
  if (!clientId) throw new RocketmqError('CLIENT_ID_REQUIRED', 'the x-mq-client-id header is missing');
  // Its in-flight messages stay invisible until their deadline and are then delivered to the group's other consumers.
  deps.clients.remove(clientId);
  return { status: ok() };
}
