/**
 * Client listeners of the broker: TCP, TLS, WebSocket and secure WebSocket (DESIGN §7,
 * the network layer under the protocol codecs). A listener accepts connections and hands
 * each one to the protocol layer as a byte Duplex; it knows nothing of MQTT beyond the
 * WebSocket subprotocol names and the default path.
 *
 * API
 * ```ts
 * type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss';
 * interface ClientTransport {
 *   kind; stream: Duplex; remoteAddress; remotePort;
 *   clientCert?: { commonName?: string; subject: Record<string, string> };
 *   webSocketProtocol?: string;            // ws/wss: the negotiated subprotocol, '' if none
 * }
 * interface TlsFiles { cert; key; ca?; verifyClient? }   // file paths
 * interface ListenerOptions {
 *   kind; host; port;                      // port 0 = any free port
 *   name?;                                 // used in error messages, default `mqtt ${kind}`
 *   tls?: TlsFiles;                        // required for tls/wss
 *   wsPath?: string;                       // default '/mqtt'
 *   maxFrameBytes?: number;                // ws/wss maxPayload, default 256 MiB + 64 KiB
 *   maxConnections?: number;               // undefined or 0 = unlimited
 *   onConnection(t: ClientTransport): void;
 *   onError?(err: Error): void;
 * }
 * interface RunningListener { kind; host; port; connections(); rejected(); close(): Promise<void> }
 * function startListener(opts: ListenerOptions): Promise<RunningListener>;
 * class ListenerConfigError extends RobustError (extends Error) { kind; field; file? }
 * ```
 * `startListener` rejects with `ListenerConfigError` for a bad option or a missing or
 * unreadable certificate file (naming the kind, the option and the file), and with
 * `ListenError` (common/errors) naming host:port and the listener when it cannot bind.
 *
 * Behaviour
 * - Every accepted TCP socket gets `setNoDelay(true)` (also the one under TLS/WS).
 * - tcp/tls: the stream handed over IS the net.Socket / tls.TLSSocket: no extra layer
 *   and no per-chunk copy on the hot path. For tls it is handed over after the handshake.
 * - tls/wss: cert, key and ca are read once at start; minimum TLS 1.2. `verifyClient`
 *   sets requestCert + rejectUnauthorized (so `ca` is required); a client without a
 *   certificate signed by `ca` never reaches `onConnection`. `clientCert` is set when the
 *   peer presented a verified certificate.
 * - ws/wss: `ws` with `noServer` behind node:http(s); the path is checked on the upgrade
 *   request before the handshake (any other path: HTTP 404; the right path without an
 *   upgrade: 426). Subprotocol: 'mqtt' is chosen if offered, else 'mqttv3.1'; a client
 *   offering neither (or none) is accepted without a subprotocol. No per-message
 *   deflate. The stream is a `WebSocketDuplex` (see ws-stream.ts): binary frames in,
 *   one binary frame per write out, with backpressure both ways.
 * - maxConnections counts every accepted TCP connection, including ones still in the
 *   TLS or WebSocket handshake; beyond it the kernel socket is closed at once, before
 *   any handshake, and `rejected()` grows. `connections()` is the number open now.
 * - Errors on an accepted socket or stream, TLS handshake failures and HTTP parse
 *   errors go to `onError` (or are dropped); they never crash the process. The
 *   protocol layer may add its own 'error' listeners on the stream.
 * - `close()` stops accepting, destroys every open connection and resolves when the
 *   server is closed; calling it again returns the same promise.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { ListenError, RobustError, errorMessage } from '../../common/errors.js';
import { WebSocketDuplex } from './ws-stream.js';

export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss';

export const TRANSPORT_KINDS: readonly TransportKind[] = ['tcp', 'tls', 'ws', 'wss'];

export interface ClientCertInfo {
  /** Subject CN, if the subject has one. */
  commonName?: string;
  /** Every subject attribute (CN, O, OU, C, ...); repeated attributes joined with '+'. */
  subject: Record<string, string>;
}

export interface ClientTransport {
  readonly kind: TransportKind;
  /** Bytes in and out. tcp: the net.Socket; tls: the tls.TLSSocket; ws/wss: a WebSocketDuplex. */
  readonly stream: Duplex;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** For tls/wss with a verified client certificate: its subject; else undefined. */
  readonly clientCert?: ClientCertInfo;
  /** For ws/wss: the negotiated WebSocket subprotocol ('' if none); else undefined. */
  readonly webSocketProtocol?: string;
}

/** Paths of PEM files. `verifyClient` => requestCert + rejectUnauthorized, and needs `ca`. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
  verifyClient?: boolean;
}

export interface ListenerOptions {
  kind: TransportKind;
  host: string;
  /** 0 = any free port (see RunningListener.port). */
  port: number;
  /** Names the listener in errors (e.g. the config key); default `mqtt ${kind}`. */
  name?: string;
  /** Required for tls and wss. */
  tls?: TlsFiles;
  /** ws/wss: the HTTP path of the endpoint; default '/mqtt'. */
  wsPath?: string;
  /** ws/wss: largest accepted WebSocket message; default 256 MiB + 64 KiB. */
  maxFrameBytes?: number;
  /** Open connections allowed at once; undefined or 0 = unlimited. */
  maxConnections?: number;
  onConnection(t: ClientTransport): void;
  /** Socket-level errors (resets, failed handshakes, bad HTTP). Optional. */
  onError?(err: Error): void;
}

export interface RunningListener {
  readonly kind: TransportKind;
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Connections open now (including those still in a TLS/WebSocket handshake). */
  connections(): number;
  /** Connections closed at once because maxConnections was reached, since start. */
  rejected(): number;
  /** Stop accepting and destroy open connections; resolves when the server is closed. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_WS_PATH = '/mqtt';
/** MQTT's largest packet (256 MiB - 1 + 5 header bytes) fits with room to spare. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024 + 64 * 1024;
/** WebSocket subprotocols accepted, in order of preference. */
export const MQTT_WS_PROTOCOLS: readonly string[] = ['mqtt', 'mqttv3.1'];

/** A listener option is missing or wrong, or a certificate file cannot be read. */
export class ListenerConfigError extends RobustError {
  constructor(
    readonly kind: TransportKind | string,
    /** The option at fault, e.g. 'tls', 'tls.cert', 'tls.ca', 'port'. */
    readonly field: string,
    readonly detail: string,
    /** The file, when a file is at fault. */
    readonly file?: string,
    cause?: unknown,
  ) {
    super(`${kind} listener: ${field}${file !== undefined ? ` (${file})` : ''}: ${detail}`, 'config_invalid', { cause });
  }
}

export async function startListener(opts: ListenerOptions): Promise<RunningListener> {
  const { kind, host } = opts;
  validate(opts);
  const tlsOptions = kind === 'tls' || kind === 'wss' ? await loadTls(kind, opts.tls) : undefined;
  const reportError = (err: unknown): void => {
    if (!opts.onError) return;
    try {
      opts.onError(err instanceof Error ? err : new Error(errorMessage(err)));
    } catch {
      // an error reporter that throws must not take the listener down
    }
  };

  /** Every accepted TCP socket, until it closes. */
  const sockets = new Set<Socket>();
  /** Every stream handed to onConnection (or in a handshake above TCP), until it closes. */
  const streams = new Set<Duplex>();
  let rejected = 0;
  let closing: Promise<void> | undefined;

  const track = (s: Duplex): void => {
    streams.add(s);
    s.once('close', () => streams.delete(s));
  };

  const deliver = (t: ClientTransport): void => {
    try {
      opts.onConnection(t);
    } catch (err) {
      reportError(err);
      t.stream.destroy();
    }
  };

  let server: NetServer;
  let wss: WebSocketServer | undefined;
  let httpServer: HttpServer | undefined;
  switch (kind) {
    case 'tcp': {
      // Connections are delivered below, after the common per-socket setup.
      server = createNetServer({ noDelay: true });
      break;
    }
    case 'tls': {
      const tlsServer = createTlsServer({ ...tlsOptions, noDelay: true });
      tlsServer.on('secureConnection', (socket: TLSSocket) => {
        socket.on('error', reportError);
        track(socket);
        if (closing) {
          socket.destroy();
          return;
        }
        const t: ClientTransport = {
          kind,
          stream: socket,
          remoteAddress: socket.remoteAddress ?? '',
          remotePort: socket.remotePort ?? 0,
          clientCert: peerCert(socket),
        };
        deliver(t);
      });
      tlsServer.on('tlsClientError', (err: Error) => reportError(err));
      server = tlsServer;
      break;
    }
    case 'ws':
    case 'wss': {
      const maxPayload = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
      const path = opts.wsPath ?? DEFAULT_WS_PATH;
      const ws = new WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        clientTracking: false,
        maxPayload,
        handleProtocols: (offered: Set<string>) => {
          for (const p of MQTT_WS_PROTOCOLS) if (offered.has(p)) return p;
          return false;
        },
      });
      wss = ws;
      const http: HttpServer =
        kind === 'wss' ? createHttpsServer({ ...tlsOptions, noDelay: true }) : createHttpServer({ noDelay: true });
      http.on('request', (req, res) => {
        const status = pathOf(req) === path ? 426 : 404;
        res.writeHead(status, {
          'content-type': 'text/plain',
          connection: 'close',
          ...(status === 426 ? { upgrade: 'websocket' } : {}),
        });
        res.end(status === 426 ? 'WebSocket upgrade required\n' : 'Not Found\n');
      });
      http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (closing) {
          socket.destroy();
          return;
        }
        if (pathOf(req) !== path) {
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n');
          return;
        }
        ws.handleUpgrade(req, socket, head, (client: WebSocket) => {
          const duplex = new WebSocketDuplex(client);
          duplex.on('error', reportError);
          track(duplex);
          if (closing) {
            duplex.destroy();
            return;
          }
          const under = req.socket;
          deliver({
            kind,
            stream: duplex,
            remoteAddress: under.remoteAddress ?? '',
            remotePort: under.remotePort ?? 0,
            clientCert: kind === 'wss' ? peerCert(under as TLSSocket) : undefined,
            webSocketProtocol: client.protocol,
          });
        });
      });
      http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
        if (err.code !== 'ECONNRESET') reportError(err);
        if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
        else socket.destroy();
      });
      if (kind === 'wss') {
        http.on('secureConnection', (socket: TLSSocket) => socket.on('error', reportError));
        http.on('tlsClientError', (err: Error) => reportError(err));
      }
      server = httpServer = http;
      break;
    }
  }

  if (opts.maxConnections !== undefined && opts.maxConnections > 0) {
    // net.Server closes the kernel socket before creating any JS object or starting a
    // handshake, and tells us with 'drop'.
    server.maxConnections = opts.maxConnections;
    server.on('drop', () => {
      rejected++;
    });
  }
  // Registered after the server's own 'connection' listener (tls/http create their socket
  // wrappers there), so this runs for every kind on the raw TCP socket.
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true);
    socket.on('error', reportError);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  if (kind === 'tcp') {
    server.on('connection', (socket: Socket) => {
      if (closing) {
        socket.destroy();
        return;
      }
      deliver({ kind, stream: socket, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 });
    });
  }

  await new Promise<void>((resolve, reject) => {
    const onListenError = (err: Error): void => {
      reject(new ListenError(opts.name ?? `mqtt ${kind}`, host, opts.port, err));
    };
    server.once('error', onListenError);
    server.listen({ host, port: opts.port, exclusive: true }, () => {
      server.off('error', onListenError);
      resolve();
    });
  });
  server.on('error', reportError);
  const port = (server.address() as AddressInfo).port;

  const close = (): Promise<void> => {
    if (closing) return closing;
    closing = new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of streams) s.destroy();
      for (const s of sockets) s.destroy();
      httpServer?.closeAllConnections();
      wss?.close();
    });
    return closing;
  };

  return {
    kind,
    host,
    port,
    connections: () => sockets.size,
    rejected: () => rejected,
    close,
  };
}

function validate(opts: ListenerOptions): void {
  const kind: string = opts.kind;
  if (!(TRANSPORT_KINDS as readonly string[]).includes(kind)) {
    throw new ListenerConfigError(kind, 'kind', `unknown transport; use one of ${TRANSPORT_KINDS.join(', ')}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new ListenerConfigError(kind, 'port', `must be an integer 0..65535, got ${String(opts.port)}`);
  }
  if (opts.maxConnections !== undefined && (!Number.isInteger(opts.maxConnections) || opts.maxConnections < 0)) {
    throw new ListenerConfigError(kind, 'maxConnections', `must be a non-negative integer, got ${String(opts.maxConnections)}`);
  }
  if (opts.maxFrameBytes !== undefined && (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes <= 0)) {
    throw new ListenerConfigError(kind, 'maxFrameBytes', `must be a positive integer, got ${String(opts.maxFrameBytes)}`);
  }
  if (opts.wsPath !== undefined && !opts.wsPath.startsWith('/')) {
    throw new ListenerConfigError(kind, 'wsPath', `must start with '/', got '${opts.wsPath}'`);
  }
}

async function loadTls(kind: TransportKind, files: TlsFiles | undefined): Promise<TlsOptions> {
  if (!files) throw new ListenerConfigError(kind, 'tls', 'a certificate and key are required (tls.cert, tls.key)');
  if (!files.cert) throw new ListenerConfigError(kind, 'tls.cert', 'no certificate file given');
  if (!files.key) throw new ListenerConfigError(kind, 'tls.key', 'no key file given');
  if (files.verifyClient && !files.ca) {
    throw new ListenerConfigError(kind, 'tls.ca', 'verifyClient needs a CA file to check client certificates against');
  }
  const read = async (field: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : `cannot read: ${errorMessage(err)}`;
      throw new ListenerConfigError(kind, field, why, file, err);
    }
  };
  const [cert, key, ca] = await Promise.all([
    read('tls.cert', files.cert),
    read('tls.key', files.key),
    files.ca ? read('tls.ca', files.ca) : Promise.resolve(undefined),
  ]);
  const verify = files.verifyClient === true;
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    minVersion: 'TLSv1.2',
    requestCert: verify,
    rejectUnauthorized: verify,
  };
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function peerCert(socket: TLSSocket): ClientCertInfo | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.subject) return undefined;
  const subject: Record<string, string> = {};
  for (const [k, v] of Object.entries(cert.subject as unknown as Record<string, string | string[] | undefined>)) {
    if (v === undefined) continue;
    subject[k] = Array.isArray(v) ? v.join('+') : v;
  }
  if (Object.keys(subject).length === 0) return undefined;
  return subject.CN !== undefined ? { commonName: subject.CN, subject } : { subject };
}
