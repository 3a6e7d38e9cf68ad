/**
 * A raw MQTT client connection for the load generator: a byte stream (TCP with
 * TCP_NODELAY, TLS, or WebSocket through `ws`) plus the project's stream decoder, with the
 * CONNECT/CONNACK handshake done. After setup the owner installs `onData` (called once per
 * received chunk, after the chunk went into the decoder) and `onClose`; it writes encoded
 * bytes to `stream` itself, so that a batch of packets is one write.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocket, createWebSocketStream } from 'ws';
import { MqttDecodeError, MqttDecoder, encode, type ConnackPacket, type ConnectPacket, type Packet, type ProtocolLevel } from '../broker/mqtt/codec/index.js';
import { describeConnectError, reasonName, socketErrorReason } from './errors.js';

export interface Endpoint {
  host: string;
  port: number;
  tls: boolean;
  ws: boolean;
  wsPath: string;
  /** PEM of a CA to trust (TLS). */
  ca?: string;
  insecure: boolean;
}

export interface ConnectSpec extends Endpoint {
  level: ProtocolLevel;
  clientId: string;
  username?: string;
  password?: string;
  keepAliveS: number;
  timeoutMs: number;
}

/** A connection attempt that did not end with an accepted CONNACK. `reason` is short and stable (a map key). */
export class ConnectFailure extends Error {
  override readonly name = 'ConnectFailure';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const MAX_PACKET = 268_435_460;
const noop = (): void => {};

export function endpointName(e: Endpoint): string {
  const scheme = e.ws ? (e.tls ? 'wss' : 'ws') : e.tls ? 'mqtts' : 'mqtt';
  const host = isIP(e.host) === 6 ? `[${e.host}]` : e.host;
  return `${scheme}://${host}:${e.port}${e.ws ? e.wsPath : ''}`;
}

export class MqttConn {
  readonly decoder: MqttDecoder;
  closed = false;
  /** The broker's DISCONNECT reason, when it sent one (v5). */
  disconnectReason: number | undefined;
  /** From CONNACK (v5 properties; defaults otherwise). */
  receiveMaximum = 65535;
  maximumQoS = 2;
  maximumPacketSize = MAX_PACKET;
  serverKeepAlive: number | undefined;
  /** Called after each received chunk was pushed into `decoder`. */
  onData: (chunk: Buffer) => void = noop;
  /** Called once when the stream closes (err: the stream error, if any). */
  onClose: (err: Error | undefined) => void = noop;
  /** The first bytes received (to explain a CONNACK the decoder cannot read). */
  firstBytes: Buffer | undefined;
  private lastError: Error | undefined;

  constructor(
    readonly stream: Duplex,
    readonly level: ProtocolLevel,
    readonly id: string,
  ) {
    this.decoder = new MqttDecoder({ maxPacketSize: MAX_PACKET, protocolLevel: level });
    stream.on('data', (chunk: Buffer) => {
      this.firstBytes ??= Buffer.from(chunk.subarray(0, 8));
      this.decoder.push(chunk);
      this.onData(chunk);
    });
    stream.on('error', (err: Error) => {
      this.lastError ??= err;
    });
    stream.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.onClose(this.lastError);
    });
  }

  /** The next packet (setup only: replaces onData until it arrives). */
  nextPacket(timeoutMs: number, what: string): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, p?: Packet) => {
        clearTimeout(timer);
        this.onData = noop;
        this.onClose = noop;
        if (err) reject(err);
        else resolve(p!);
      };
      const check = () => {
        let p: Packet | undefined;
        try {
          p = this.decoder.next();
        } catch (err) {
          done(new ConnectFailure('malformed packet', `malformed packet from the broker while waiting for ${what}: ${(err as Error).message}`));
          return;
        }
        if (p !== undefined) done(undefined, p);
      };
      const timer = setTimeout(() => done(new ConnectFailure('timeout', `no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.onData = check;
      this.onClose = (err) => done(new ConnectFailure(err ? socketErrorReason(err) : 'closed', `connection closed while waiting for ${what}${err ? `: ${err.message}` : ''}`));
      if (this.closed) {
        done(new ConnectFailure('closed', `connection closed while waiting for ${what}`));
        return;
      }
      check();
    });
  }

  /** Sends DISCONNECT and ends the stream; resolves when closed (or after `timeoutMs`). */
  close(timeoutMs = 1000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stream.destroy();
        resolve();
      }, timeoutMs);
      timer.unref();
      this.onClose = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        this.stream.end(encode({ type: 'disconnect', reasonCode: 0 }, this.level));
      } catch {
        this.stream.destroy();
      }
    });
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Opens the byte stream (TCP, TLS or WebSocket); rejects with a ConnectFailure. */
function openStream(e: Endpoint, timeoutMs: number): Promise<Duplex> {
  const where = endpointName(e);
  return new Promise((resolve, reject) => {
    let settled = false;
    let abort = noop; // tears down a half-open attempt
    // Error listeners stay attached after success (no-ops then): MqttConn adds its own.
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort();
      const reason = socketErrorReason(err);
      const msg = err instanceof Error ? err.message : String(err);
      const http = /^Unexpected server response: (\d+)/.exec(msg);
      if (http) {
        reject(new ConnectFailure(`HTTP ${http[1]}`, `WebSocket upgrade at ${where} refused: HTTP ${http[1]} (wrong --port or --ws-path?)`));
      } else if ((e.tls || e.ws) && (reason === 'ECONNRESET' || reason === 'closed')) {
        reject(new ConnectFailure(reason, `${e.ws ? 'WebSocket upgrade' : 'TLS handshake'} with ${where} failed: connection reset by the broker (is that port a ${e.ws ? (e.tls ? 'secure WebSocket' : 'WebSocket') : 'TLS'} port?)`));
      } else if (e.tls && /CERT|SELF_SIGNED|SSL|TLS|UNABLE_TO|EPROTO/.test(reason)) {
        reject(new ConnectFailure(reason, `TLS handshake with ${where} failed: ${msg} (trust the broker's CA with --ca FILE, or --insecure)`));
      } else {
        reject(new ConnectFailure(reason, describeConnectError(reason, where)));
      }
    };
    const ok = (s: Duplex) => {
      if (settled) {
        s.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(s);
    };
    const timer = setTimeout(() => fail(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);

    if (e.ws) {
      const url = `${e.tls ? 'wss' : 'ws'}://${isIP(e.host) === 6 ? `[${e.host}]` : e.host}:${e.port}${e.wsPath}`;
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, 'mqtt', {
          perMessageDeflate: false,
          ...(e.tls ? { rejectUnauthorized: !e.insecure, ...(e.ca !== undefined ? { ca: e.ca } : {}) } : {}),
        });
      } catch (err) {
        fail(err);
        return;
      }
      ws.on('error', (err: Error) => fail(err));
      abort = () => ws.terminate();
      // The ws client sets TCP_NODELAY on its socket itself. One write on the duplex is one binary frame.
      ws.once('open', () => ok(createWebSocketStream(ws)));
      return;
    }
    let sock: Socket | TLSSocket;
    if (e.tls) {
      sock = tlsConnect({
        host: e.host,
        port: e.port,
        rejectUnauthorized: !e.insecure,
        ...(e.ca !== undefined ? { ca: e.ca } : {}),
        ...(isIP(e.host) === 0 ? { servername: e.host } : {}),
      });
      sock.once('secureConnect', () => {
        sock.setNoDelay(true);
        ok(sock);
      });
    } else {
      sock = netConnect({ host: e.host, port: e.port });
      sock.once('connect', () => {
        sock.setNoDelay(true);
        ok(sock);
      });
    }
    sock.on('error', (err: Error) => fail(err));
    abort = () => sock.destroy();
  });
}

/** CONNECT for this spec. */
export function connectPacket(s: ConnectSpec): ConnectPacket {
  const p: ConnectPacket = {
    type: 'connect',
    protocolName: s.level === 3 ? 'MQIsdp' : 'MQTT',
    protocolLevel: s.level,
    cleanStart: true,
    keepAlive: s.keepAliveS,
    clientId: s.clientId,
  };
  if (s.username !== undefined) p.username = s.username;
  if (s.password !== undefined) p.password = Buffer.from(s.password, 'utf8');
  if (s.level === 5) p.properties = {};
  return p;
}

/** Connects and completes CONNECT/CONNACK; rejects with a ConnectFailure. */
export async function mqttConnect(s: ConnectSpec): Promise<MqttConn> {
  const started = Date.now();
  const stream = await openStream(s, s.timeoutMs);
  const conn = new MqttConn(stream, s.level, s.clientId);
  try {
    stream.write(encode(connectPacket(s), s.level));
    const p = await conn.nextPacket(Math.max(1, s.timeoutMs - (Date.now() - started)), 'CONNACK');
    if (p.type !== 'connack') throw new ConnectFailure('protocol error', `expected CONNACK, got ${p.type.toUpperCase()}`);
    applyConnack(conn, p);
    return conn;
  } catch (err) {
    conn.destroy();
    const fb = conn.firstBytes;
    if (s.level === 5 && err instanceof ConnectFailure && err.reason === 'malformed packet' && fb !== undefined && fb[0] === 0x20 && fb[1] === 2 && fb[3] !== undefined && fb[3] >= 1 && fb[3] <= 5) {
      // A 3.1.1-only broker answers a v5 CONNECT with a v3 CONNACK (return code 1).
      const name = reasonName(fb[3], true);
      throw new ConnectFailure(`CONNACK ${name}`, `CONNACK refused: ${name} (the broker answered in MQTT 3.1.1: it does not support MQTT 5.0; use --mqtt-version 4)`);
    }
    if (err instanceof ConnectFailure) throw err;
    if (err instanceof MqttDecodeError) throw new ConnectFailure('malformed packet', `malformed CONNACK: ${err.message}`);
    throw err;
  }
}

function applyConnack(conn: MqttConn, p: ConnackPacket): void {
  if (p.reasonCode !== 0) {
    const name = reasonName(p.reasonCode, conn.level !== 5);
    throw new ConnectFailure(`CONNACK ${name}`, `CONNACK refused: ${name}`);
  }
  const pr = p.properties;
  if (pr) {
    if (pr.receiveMaximum !== undefined) conn.receiveMaximum = pr.receiveMaximum;
    if (pr.maximumQoS !== undefined) conn.maximumQoS = pr.maximumQoS;
    if (pr.maximumPacketSize !== undefined) conn.maximumPacketSize = pr.maximumPacketSize;
    if (pr.serverKeepAlive !== undefined) conn.serverKeepAlive = pr.serverKeepAlive;
  }
}
