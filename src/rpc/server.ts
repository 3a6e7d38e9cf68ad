import * as grpc from '@grpc/grpc-js';
import { ListenError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { NodeMetrics } from '../common/metrics.js';
import { RpcError } from './errors.js';

export type UnaryHandler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res;

/**
 * The node's inner gRPC server. Services may be added before or after it binds:
 * the common server starts first and later services register as they start.
 */
export class RpcServer {
  readonly grpc: grpc.Server;
  private boundPort: number | undefined;

  constructor(
    private readonly log: Logger,
    private readonly metrics: NodeMetrics,
  ) {
    this.grpc = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
    });
  }

  /**
   * Register a service whose unary methods are plain (async) functions; streaming
   * methods are given as grpc-js handlers in `streams`.
   */
  addUnaryService(service: grpc.ServiceDefinition, handlers: Record<string, UnaryHandler<never, unknown>>, streams: grpc.UntypedServiceImplementation = {}): void {
    const impl: grpc.UntypedServiceImplementation = { ...streams };
    for (const [name, method] of Object.entries(service)) {
      if (streams[name]) continue;
      const handler = handlers[name];
      if (!handler) throw new Error(`no handler for ${method.path}`);
      const unary: grpc.handleUnaryCall<never, unknown> = (call, callback) => {
        Promise.resolve()
          .then(() => handler(call.request, call))
          .then(
            (res) => {
              this.metrics.rpcRequests.inc({ method: method.path, code: 'OK' });
              callback(null, res);
            },
            (err: unknown) => {
              const code = err instanceof RpcError ? err.status : grpc.status.INTERNAL;
              if (code === grpc.status.INTERNAL) this.log.error({ err, method: method.path }, 'inner rpc handler failed');
              this.metrics.rpcRequests.inc({ method: method.path, code: grpc.status[code] });
              callback({ code, details: errorMessage(err) });
            },
          );
      };
      impl[name] = unary as grpc.UntypedHandleCall;
    }
    this.grpc.addService(service, impl);
  }

  async listen(host: string, port: number): Promise<number> {
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.grpc.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(new ListenError('grpc_port', host, port, bindCause(err)));
        else resolve(bound);
      });
    });
    return this.boundPort;
  }

  /** Finish calls in flight, then close; force-close whatever is left after graceMs. */
  async stop(graceMs: number): Promise<void> {
    if (this.boundPort === undefined) return;
    this.boundPort = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      this.grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** grpc-js folds the socket error into its message; recover the errno so the log line says "address in use". */
function bindCause(err: Error): Error {
  const m = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(err.message);
  if (m) return Object.assign(new Error(err.message), { code: m[1] });
  return err;
}
