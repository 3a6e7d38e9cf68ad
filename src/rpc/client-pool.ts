import * as grpc from '@grpc/grpc-js';
import { RpcCallError } from './errors.js';

/**
 * One client per (service, address), reused by every caller in the node.
 * grpc-js keeps one HTTP/2 connection per address underneath and reconnects
 * on its own, so callers never open sockets themselves.
 */
export class RpcClientPool {
  private readonly clients = new Map<string, grpc.Client>();

  get<C extends grpc.Client>(ctor: grpc.ServiceClientConstructor, address: string): C {
    const key = `${ctor.serviceName}@${address}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new ctor(address, grpc.credentials.createInsecure(), {
        'grpc.keepalive_time_ms': 30_000,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 5_000,
      });
      this.clients.set(key, client);
    }
    return client as C;
  }

  /** A unary call as a promise, with a deadline. */
  unary<Req, Res>(ctor: grpc.ServiceClientConstructor, address: string, method: string, request: Req, timeoutMs: number): Promise<Res> {
    const client = this.get(ctor, address) as unknown as Record<string, (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>;
    const fn = client[method];
    if (typeof fn !== 'function') return Promise.reject(new Error(`${ctor.serviceName} has no method ${method}`));
    return new Promise<Res>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new RpcCallError(address, `${ctor.serviceName}/${method}`, err.code, err.details || err.message));
        else resolve(res);
      });
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
