/**
 * The RocketMQ 5 gRPC endpoint of a broker (the "Proxy" of RocketMQ 5, in
 * Local mode: same process as the storage): apache.rocketmq.v2.MessagingService
 * on a grpc-js server of its own, bound to `[rocketmq] grpc_port`.
 *
 * Every RPC answers in-band: failures become a RocketMQ Status in a normal
 * response (the client maps the code to its exceptions), never a failed gRPC
 * call and never an exception that escapes into the process.
 */
import * as grpc from '@grpc/grpc-js';
import { ListenError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ListenerInfo } from '../../common/node-info.js';
import type { StorageAdapter } from '../../storage/types.js';
import { ackMessage, changeInvisibleDuration } from './ack.js';
import { queryAssignment } from './assignment.js';
import { ClientRegistry } from './clients.js';
import { Consumption } from './consumption.js';
import { DeadLetters, forwardToDeadLetterQueue } from './dead-letter.js';
import { endTransaction } from './end-transaction.js';
import { isServerFault, statusOf } from './errors.js';
import type { RocketmqMetrics } from './metrics.js';
import { getOffset, queryOffset, updateOffset } from './offsets.js';
import type { RocketmqBusPort, RocketmqDeps, RocketmqMetaPort, RocketmqSettings } from './ports.js';
import { messagingServiceDefinition, type ReceiveMessageRequest, type ReceiveMessageResponse, type Status, type TelemetryCommand } from './proto.js';
import { Puller, type PullMessageRequest, type PullMessageResponse } from './pull.js';
import { recallMessage } from './recall.js';
import { Receiver } from './receive.js';
import { queryRoute } from './route.js';
import { Sender } from './send.js';
import { heartbeat, notifyClientTermination, serveTelemetry } from './telemetry.js';
import { TimerStore } from './timer-store.js';
import { TopicWriter } from './topic-writer.js';
import { Transactions } from './transactions.js';
import { clientIdOf } from './validate.js';

export interface RocketmqServerOptions {
  host: string;
  port: number;
  /** Host clients are told to connect to. */
  advertisedHost: string;
  meta: RocketmqMetaPort;
  storage: () => StorageAdapter;
  bus?: RocketmqBusPort;
  settings: RocketmqSettings;
  metrics: RocketmqMetrics;
  log: Logger;
  now?: () => number;
}

/** Calls in flight get this long to finish at stop before they are cut. */
const STOP_GRACE_MS = 3000;
/** A client with no Telemetry stream is forgotten after this long without a heartbeat (it sends one every 10 s). */
const CLIENT_IDLE_MS = 120_000;

type UnaryFn = (request: never, call: grpc.ServerUnaryCall<never, unknown>) => Promise<{ status: Status }> | { status: Status };

export class RocketmqServer {
  readonly deps: RocketmqDeps;
  readonly consumption: Consumption;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  /** Delay messages until due, and half messages of pending transactions (durable, in internal logs). */
  readonly timers: TimerStore;
  readonly transactions: Transactions;
  private readonly deadLetters: DeadLetters;
  private readonly puller: Puller;
  private readonly telemetryStreams = new Set<grpc.ServerDuplexStream<TelemetryCommand, TelemetryCommand>>();
  private grpcServer: grpc.Server | undefined;
  private boundPort: number | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private signalStop!: () => void;
  private readonly stopping = new Promise<void>((resolve) => (this.signalStop = resolve));

  constructor(private readonly opts: RocketmqServerOptions) {
    this.deps = {
      meta: opts.meta,
      storage: opts.storage,
      ...(opts.bus ? { bus: opts.bus } : {}),
      settings: opts.settings,
      clients: new ClientRegistry(),
      metrics: opts.metrics,
      log: opts.log,
      now: opts.now ?? Date.now,
      advertised: () => ({ host: opts.advertisedHost, port: this.boundPort ?? opts.port }),
    };
    this.consumption = new Consumption(this.deps);
    const writer = new TopicWriter(this.deps);
    this.timers = new TimerStore(this.deps, writer);
    this.transactions = new Transactions(this.deps, writer);
    this.deadLetters = new DeadLetters(this.deps, writer);
    this.sender = new Sender(this.deps, writer, this.timers, this.transactions);
    this.receiver = new Receiver(this.deps, this.consumption, this.stopping, this.deadLetters);
    this.puller = new Puller(this.deps);
    const clients = this.deps.clients;
    opts.metrics.setSources(
      () => new Map([...clients.countByType()].map(([type, n]) => [type.toLowerCase(), n])),
      () => this.consumption.inflightTotal(),
    );
    opts.metrics.setPendingSource(() => ({ timers: this.timers.size, transactions: this.transactions.book.size }));
  }

  port(): number | undefined {
    return this.boundPort;
  }

  async start(): Promise<void> {
    // Before the port opens: a send must find the stores open, and a commit its half message.
    await this.timers.open();
    await this.transactions.open();
    const server = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
    });
    server.addService(messagingServiceDefinition(), this.implementation());
    const { host, port } = this.opts;
    this.boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(new ListenError('rocketmq.grpc_port', host, port, bindCause(err)));
        else resolve(bound);
      });
    });
    this.grpcServer = server;
    this.consumption.start();
    this.timers.start();
    this.transactions.start();
    this.sweeper = setInterval(() => this.deps.clients.expire(this.deps.now(), CLIENT_IDLE_MS), 30_000);
    this.sweeper.unref();
    this.opts.log.info({ port: this.boundPort }, `rocketmq: gRPC listening on ${host}:${this.boundPort}`);
  }

  async stop(): Promise<void> {
    const server = this.grpcServer;
    this.grpcServer = undefined;
    if (this.sweeper) clearInterval(this.sweeper);
    // Waiting receives answer now; clients reconnect their Telemetry streams elsewhere.
    this.receiver.stop();
    this.puller.stop();
    this.signalStop();
    for (const call of this.telemetryStreams) if (!call.writableEnded) call.end();
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, STOP_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.boundPort = undefined;
    await this.timers.stop();
    await this.transactions.stop();
    await this.consumption.stop();
  }

  listeners(): ListenerInfo[] {
    return this.boundPort === undefined ? [] : [{ name: 'rocketmq-grpc', protocol: 'rocketmq', address: `${this.opts.host}:${this.boundPort}` }];
  }

  private implementation(): grpc.UntypedServiceImplementation {
    const deps = this.deps;
    const unary: Record<string, UnaryFn> = {
      QueryRoute: (req) => queryRoute(deps, req),
      Heartbeat: (req, call) => heartbeat(deps, req, call.metadata),
      SendMessage: (req, call) => this.sender.send(req, clientIdOf(call.metadata)),
      EndTransaction: (req) => endTransaction(this.transactions, req),
      RecallMessage: (req) => recallMessage(deps, this.timers, req),
      ForwardMessageToDeadLetterQueue: (req) => forwardToDeadLetterQueue(deps, this.consumption, this.deadLetters, req),
      AckMessage: (req) => ackMessage(deps, this.consumption, req),
      ChangeInvisibleDuration: (req) => changeInvisibleDuration(deps, this.consumption, req),
      NotifyClientTermination: (req, call) => notifyClientTermination(deps, req, call.metadata),
      QueryAssignment: (req) => queryAssignment(deps, req),
      UpdateOffset: (req) => updateOffset(deps, this.consumption, req),
      GetOffset: (req) => getOffset(deps, req),
      QueryOffset: (req) => queryOffset(deps, req),
    };
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(messagingServiceDefinition())) {
      const fn = unary[name];
      if (fn) impl[name] = this.unaryHandler(name, fn) as grpc.UntypedHandleCall;
      else if (!method.requestStream && !method.responseStream) impl[name] = this.unaryHandler(name, () => notImplemented(name)) as grpc.UntypedHandleCall;
    }
    impl['ReceiveMessage'] = ((call: grpc.ServerWritableStream<ReceiveMessageRequest, ReceiveMessageResponse>) =>
      this.serveStream('ReceiveMessage', call, () => this.receiver.receive(call.request, call))) as grpc.UntypedHandleCall;
    impl['PullMessage'] = ((call: grpc.ServerWritableStream<PullMessageRequest, PullMessageResponse>) =>
      this.serveStream('PullMessage', call, () => this.puller.pull(call.request, call))) as grpc.UntypedHandleCall;
    impl['Telemetry'] = ((call: grpc.ServerDuplexStream<TelemetryCommand, TelemetryCommand>) => serveTelemetry(deps, call, this.telemetryStreams)) as grpc.UntypedHandleCall;
    return impl;
  }

  private unaryHandler(rpc: string, fn: UnaryFn): grpc.handleUnaryCall<never, unknown> {
    return (call, callback) => {
      const started = performance.now();
      Promise.resolve()
        .then(() => fn(call.request, call))
        .then(
          (res) => {
            this.deps.metrics.request(rpc, res.status.code, elapsed(started));
            callback(null, res);
          },
          (err: unknown) => {
            const status = this.failed(rpc, err, elapsed(started));
            callback(null, { status });
          },
        )
        .catch((err: unknown) => this.opts.log.error({ rpc, err: errorMessage(err) }, 'rocketmq: could not answer a request'));
    };
  }

  /** A server-streaming RPC: `run` answers on the stream; a failure becomes a single Status response. */
  private serveStream(rpc: string, call: grpc.ServerWritableStream<unknown, { status: Status } | object>, run: () => Promise<string>): void {
    const started = performance.now();
    run().then(
      (code) => this.deps.metrics.request(rpc, code, elapsed(started)),
      (err: unknown) => {
        const status = this.failed(rpc, err, elapsed(started));
        try {
          if (!call.cancelled && !call.writableEnded) {
            call.write({ status });
            call.end();
          }
        } catch (writeErr) {
          this.opts.log.warn({ rpc, err: errorMessage(writeErr) }, `rocketmq: could not answer a ${rpc}`);
        }
      },
    );
  }

  /** The status a failure is answered with, counted and (when it is the broker's fault) logged. */
  private failed(rpc: string, err: unknown, seconds?: number): Status {
    const status = statusOf(err);
    this.deps.metrics.request(rpc, status.code, seconds);
    if (isServerFault(err)) this.opts.log.warn({ rpc, code: status.code, err: errorMessage(err) }, `rocketmq: ${rpc} failed`);
    return status;
  }
}

function elapsed(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

function notImplemented(rpc: string): { status: Status } {
  return { status: { code: 'NOT_IMPLEMENTED', message: `${rpc} is not implemented by this broker yet` } };
}

/** grpc-js folds the socket error into its message; recover the errno so the log line says "address in use". */
function bindCause(err: Error): Error {
  const m = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(err.message);
  if (m) return Object.assign(new Error(err.message), { code: m[1] });
  return err;
}
