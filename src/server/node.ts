import { ServiceError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { NodeMetrics } from '../common/metrics.js';
import type { ListenerInfo, ServiceState } from '../common/node-info.js';
import type { Service } from '../common/service.js';

export interface NodeLifecycleOptions {
  /** Whole-node budget for a graceful stop; a service still stopping after it is abandoned. */
  stopDeadlineMs: number;
  /** Called once when a running service fails fatally and the node has stopped. */
  onFatalStop: (exitCode: number) => void;
}

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * Starts services in order (each waits for the one before), stops them in
 * reverse, reports readiness, and turns a fatal error in any service into a
 * clean stop with exit code 1.
 */
export class NodeLifecycle {
  private phase: Phase = 'new';
  private readonly started: Service[] = [];
  private stopping: Promise<boolean> | undefined;

  constructor(
    private readonly services: readonly Service[],
    private readonly log: Logger,
    metrics: NodeMetrics,
    private readonly options: NodeLifecycleOptions,
  ) {
    metrics.reportReadinessFrom(() => this.serviceStates());
  }

  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`node cannot start from phase ${this.phase}`);
    this.phase = 'starting';
    for (const service of this.services) {
      if (this.phase !== 'starting') return; // a signal arrived while starting
      const t0 = performance.now();
      try {
        this.started.push(service);
        await service.start();
      } catch (err) {
        const failure = err instanceof ServiceError ? err : new ServiceError(service.name, `failed to start: ${errorMessage(err)}`, err);
        this.log.error({ service: service.name, err: errorMessage(err) }, `${service.name} failed to start: ${errorMessage(err)}`);
        await this.stop();
        throw failure;
      }
      this.log.debug({ service: service.name, ms: Math.round(performance.now() - t0) }, `${service.name} started`);
    }
    if (this.phase === 'starting') this.phase = 'running';
  }

  /** Stop every started service in reverse order. Resolves true when all stopped within the deadline. */
  stop(): Promise<boolean> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  /** A running service hit an error it cannot recover from. */
  fail(serviceName: string, error: unknown): void {
    if (this.phase === 'stopping' || this.phase === 'stopped') {
      this.log.warn({ service: serviceName, err: errorMessage(error) }, `${serviceName} reported an error while stopping: ${errorMessage(error)}`);
      return;
    }
    this.log.fatal({ service: serviceName, err: errorMessage(error) }, `fatal error in ${serviceName}: ${errorMessage(error)}; stopping the node`);
    void this.stop().then(() => this.options.onFatalStop(1));
  }

  isReady(): boolean {
    return this.phase === 'running' && this.services.every((s) => s.isReady());
  }

  get currentPhase(): Phase {
    return this.phase;
  }

  serviceStates(): ServiceState[] {
    const running = this.phase === 'running' || this.phase === 'starting';
    return this.services.map((s) => ({ name: s.name, ready: running && this.started.includes(s) && s.isReady() }));
  }

  listeners(): ListenerInfo[] {
    return this.started.flatMap((s) => s.listeners?.() ?? []);
  }

  private async stopAll(): Promise<boolean> {
    this.phase = 'stopping';
    const deadline = Date.now() + this.options.stopDeadlineMs;
    let clean = true;
    for (const service of [...this.started].reverse()) {
      const left = deadline - Date.now();
      const outcome = await withTimeout(service.stop(), Math.max(left, 0));
      if (outcome.kind === 'timeout') {
        clean = false;
        this.log.error({ service: service.name }, `${service.name} did not stop within the deadline; abandoning it`);
      } else if (outcome.kind === 'error') {
        clean = false;
        this.log.error({ service: service.name, err: errorMessage(outcome.error) }, `${service.name} failed to stop: ${errorMessage(outcome.error)}`);
      } else {
        this.log.debug({ service: service.name }, `${service.name} stopped`);
      }
    }
    this.phase = 'stopped';
    return clean;
  }
}

type Outcome = { kind: 'ok' } | { kind: 'timeout' } | { kind: 'error'; error: unknown };

function withTimeout(p: Promise<void>, ms: number): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve({ kind: 'ok' });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ kind: 'error', error });
      },
    );
  });
}
