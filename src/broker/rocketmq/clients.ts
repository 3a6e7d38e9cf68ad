/**
 * The RocketMQ clients this broker knows: who they are (from their Telemetry
 * settings and heartbeats), when they were last heard from, and the open
 * Telemetry stream through which the broker can send them commands (the
 * transaction check-back needs it). Clients that neither heartbeat nor keep a
 * stream open are forgotten after a while.
 */
import type { ClientType, TelemetryCommand } from './proto.js';

export interface ClientInfo {
  clientId: string;
  type: ClientType;
  /** Consumer group (consumers). */
  group: string | undefined;
  topics: string[];
  lastSeenMs: number;
  /** Writes a command to the client's Telemetry stream while one is open. */
  send: ((cmd: TelemetryCommand) => void) | undefined;
}

export class ClientRegistry {
  private readonly clients = new Map<string, ClientInfo>();

  /** Records that the client was heard from, with whatever it told. */
  seen(clientId: string, now: number, update: Partial<Omit<ClientInfo, 'clientId' | 'lastSeenMs'>> = {}): ClientInfo {
    let c = this.clients.get(clientId);
    if (!c) {
      c = { clientId, type: 'CLIENT_TYPE_UNSPECIFIED', group: undefined, topics: [], lastSeenMs: now, send: undefined };
      this.clients.set(clientId, c);
    }
    Object.assign(c, update, { lastSeenMs: now });
    return c;
  }

  get(clientId: string): ClientInfo | undefined {
    return this.clients.get(clientId);
  }

  remove(clientId: string): void {
    this.clients.delete(clientId);
  }

  /** A Telemetry stream closed: the client may still heartbeat, but commands cannot reach it. */
  detach(clientId: string, send: (cmd: TelemetryCommand) => void): void {
    const c = this.clients.get(clientId);
    if (c && c.send === send) c.send = undefined;
  }

  list(): ClientInfo[] {
    return [...this.clients.values()];
  }

  countByType(): Map<ClientType, number> {
    const out = new Map<ClientType, number>();
    for (const c of this.clients.values()) out.set(c.type, (out.get(c.type) ?? 0) + 1);
    return out;
  }

  /** Drops clients without an open stream that were last heard from before `now - idleMs`. */
  expire(now: number, idleMs: number): void {
    for (const [id, c] of this.clients) if (c.send === undefined && now - c.lastSeenMs > idleMs) this.clients.delete(id);
  }
}
