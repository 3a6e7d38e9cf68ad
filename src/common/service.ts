import type { ListenerInfo } from './node-info.js';

/**
 * A part of a node that starts and stops with it (common server, meta, journal,
 * broker). The node starts services one after another in its roles' order and
 * stops them in reverse.
 */
export interface Service {
  readonly name: string;
  /** Resolves once the service can serve the services started after it. */
  start(): Promise<void>;
  /** Release everything; must not throw for a service that never started. */
  stop(): Promise<void>;
  /** Live readiness: may turn false after start (e.g. meta lost its leader). */
  isReady(): boolean;
  /** Sockets this service listens on, for logs and the node's info. */
  listeners?(): ListenerInfo[];
}

/** How a running service reports an error it cannot recover from: the node stops with exit code 1. */
export type FatalHandler = (error: unknown) => void;
