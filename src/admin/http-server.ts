import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { ListenError, RobustError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { NodeMetrics } from '../common/metrics.js';

/** An error the admin API returns as `{ "error": { "code", "message" } }` with this status. */
export class HttpError extends RobustError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(message, code);
  }
}

export interface HttpReply {
  status?: number;
  /** Serialised as JSON unless `contentType` says otherwise (then it must be a string). */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface HttpRequestContext {
  req: IncomingMessage;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
}

export type HttpHandler = (ctx: HttpRequestContext) => Promise<HttpReply> | HttpReply;

/**
 * A small JSON-over-HTTP server: the admin API and, when configured, the
 * stand-alone Prometheus port. Every failure is answered as JSON, never a crash.
 */
export class HttpServer {
  private readonly router = FindMyWay({ ignoreTrailingSlash: true });
  private readonly server: Server;
  private boundPort: number | undefined;

  constructor(
    private readonly name: string,
    private readonly log: Logger,
    private readonly metrics: NodeMetrics,
  ) {
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 5_000;
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  route(method: HTTPMethod, path: string, handler: HttpHandler): void {
    this.router.on(method, path, (req, res, params) => {
      void this.run(path, handler, req, res, params as Record<string, string | undefined>);
    });
  }

  async listen(host: string, port: number, configKey: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new ListenError(configKey, host, port, err));
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (err) => this.log.error({ err, server: this.name }, 'http server error'));
    this.boundPort = (this.server.address() as AddressInfo).port;
    return this.boundPort;
  }

  async stop(): Promise<void> {
    if (this.boundPort === undefined) return;
    this.boundPort = undefined;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0]!;
    if (!this.router.find(req.method as HTTPMethod, path)) {
      const allowed = this.allowedMethods(path);
      if (allowed.length > 0) {
        this.send(res, req, '(unmatched)', { status: 405, headers: { allow: allowed.join(', ') }, body: errorBody('method_not_allowed', `${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}`) });
      } else {
        this.send(res, req, '(unmatched)', { status: 404, body: errorBody('not_found', `no such endpoint: ${path}`) });
      }
      return;
    }
    this.router.lookup(req, res);
  }

  private allowedMethods(path: string): string[] {
    const methods: HTTPMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
    return methods.filter((m) => this.router.find(m, path) !== null);
  }

  private async run(route: string, handler: HttpHandler, req: IncomingMessage, res: ServerResponse, params: Record<string, string | undefined>): Promise<void> {
    let reply: HttpReply;
    try {
      const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
      reply = await handler({ req, params, query });
    } catch (err) {
      if (err instanceof HttpError) {
        reply = { status: err.status, body: errorBody(err.code, err.message) };
      } else {
        this.log.error({ err, route }, 'admin request failed');
        reply = { status: 500, body: errorBody('internal', errorMessage(err)) };
      }
    }
    this.send(res, req, route, reply);
  }

  private send(res: ServerResponse, req: IncomingMessage, route: string, reply: HttpReply): void {
    const status = reply.status ?? 200;
    const isJson = reply.contentType === undefined;
    const payload = isJson ? JSON.stringify(reply.body, jsonReplacer, 2) + '\n' : String(reply.body);
    res.writeHead(status, {
      'content-type': reply.contentType ?? 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      ...reply.headers,
    });
    res.end(req.method === 'HEAD' ? undefined : payload);
    this.metrics.adminRequests.inc({ method: req.method ?? 'UNKNOWN', route, status: String(status) });
  }
}

/** Offsets are bigints (they can pass 2^53); JSON carries them as decimal strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}
