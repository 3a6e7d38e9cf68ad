/**
 * Typed errors. Each carries enough context that the one line an operator sees
 * names what went wrong and where, without a stack trace.
 */
export class RobustError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration problem: the file (or env var) and the key are always named. */
export class ConfigError extends RobustError {
  constructor(
    readonly source: string,
    readonly key: string | undefined,
    readonly detail: string,
  ) {
    super(key ? `${source}: ${key}: ${detail}` : `${source}: ${detail}`, 'config_invalid');
  }
}

/** A listener could not bind its port. */
export class ListenError extends RobustError {
  constructor(
    readonly listener: string,
    readonly host: string,
    readonly port: number,
    cause: unknown,
  ) {
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
    const why =
      errno === 'EADDRINUSE'
        ? 'address in use'
        : errno === 'EACCES'
          ? 'permission denied'
          : errno === 'EADDRNOTAVAIL'
            ? 'address not available on this host'
            : String((cause as Error | undefined)?.message ?? cause);
    super(`cannot listen on ${host}:${port} (${listener}): ${why}`, errno === 'EADDRINUSE' ? 'address_in_use' : 'listen_failed', { cause });
  }
}

/** A service failed to start, or failed while running. */
export class ServiceError extends RobustError {
  constructor(
    readonly service: string,
    message: string,
    cause?: unknown,
  ) {
    super(`${service}: ${message}`, 'service_failed', { cause });
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
