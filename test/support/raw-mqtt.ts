/**
 * A bare MQTT client for tests that need to break the rules or watch exact
 * packets (receive maximum, keep alive, malformed input, AUTH exchanges): it
 * encodes packets with the broker's own encoder and decodes replies with its
 * decoder, and hands every packet received to the test.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { MqttDecoder, encode, type Packet, type ProtocolLevel } from '../../src/broker/mqtt/codec/index.js';

type PacketOfType<P, T> = P extends { type: infer U } ? (T extends U ? P : never) : never;
/** The packet shape(s) whose type field admits T (AckPacket covers four types). */
export type PacketOf<T extends Packet['type']> = PacketOfType<Packet, T>;

export class RawClient {
  readonly received: Packet[] = [];
  closed = false;
  private readonly decoder: MqttDecoder;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: Socket,
    readonly level: ProtocolLevel,
  ) {
    this.decoder = new MqttDecoder({ maxPacketSize: 268_435_460, protocolLevel: level });
    socket.on('data', (chunk) => {
      this.decoder.push(chunk);
      for (;;) {
        let p: Packet | undefined;
        try {
          p = this.decoder.next();
        } catch {
          break;
        }
        if (!p) break;
        this.received.push(p);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number, level: ProtocolLevel = 5): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(new RawClient(s, level)));
      s.once('error', reject);
    });
  }

  send(p: Packet): void {
    this.socket.write(encode(p, this.level));
  }

  sendBytes(b: Buffer): void {
    this.socket.write(b);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for a packet matching `pred` (searching everything received so far), removing it from `received`. */
  async next<T extends Packet['type']>(type: T, pred: (p: PacketOf<T>) => boolean = () => true, timeoutMs = 3000): Promise<PacketOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((p) => p.type === type && pred(p as PacketOf<T>));
      if (i >= 0) return this.received.splice(i, 1)[0] as PacketOf<T>;
      if (this.closed) throw new Error(`connection closed while waiting for ${type}; got ${this.received.map((p) => p.type).join(', ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type}; got ${this.received.map((p) => p.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** CONNECT and wait for CONNACK. */
  async connect(fields: Partial<PacketOf<'connect'>> = {}): Promise<PacketOf<'connack'>> {
    this.send({
      type: 'connect',
      protocolName: this.level === 3 ? 'MQIsdp' : 'MQTT',
      protocolLevel: this.level,
      cleanStart: true,
      keepAlive: 60,
      clientId: `raw-${Math.random().toString(36).slice(2)}`,
      ...fields,
    });
    return this.next('connack');
  }

  close(): void {
    this.socket.destroy();
  }
}
