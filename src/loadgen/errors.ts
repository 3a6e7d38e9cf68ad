/**
 * The two ways robust-bench fails: bad input (exit 2, the usage is at fault) and a run
 * that could not be carried out (exit 1: cannot connect, CONNACK refused, connection lost).
 * Both carry one line for the operator; neither is printed with a stack trace.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export class RunError extends Error {
  override readonly name = 'RunError';
}

/** Short, stable reason for a failed connection attempt (the key in `connect.failures`). */
export function socketErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code !== '') return code;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A human sentence for an errno code seen while connecting to `where`. */
export function describeConnectError(reason: string, where: string, fdLimit?: number): string {
  switch (reason) {
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused (is the broker running and listening there?)`;
    case 'ETIMEDOUT':
      return `cannot connect to ${where}: timed out`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${where}: host unreachable`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: host name not found`;
    case 'EMFILE':
    case 'ENFILE':
      return `too many open files (${reason})${fdLimit !== undefined ? `: this process may open ${fdLimit} files (ulimit -n ${fdLimit})` : ''}; raise the limit in the shell that starts robust-bench (ulimit -n), or run fewer connections per process`;
    case 'EADDRNOTAVAIL':
      return `cannot connect to ${where}: no local address/port available (the ephemeral port range is exhausted: see /proc/sys/net/ipv4/ip_local_port_range)`;
    case 'ECONNRESET':
      return `connection to ${where} reset by the broker`;
    default:
      return `cannot connect to ${where}: ${reason}`;
  }
}

/** MQTT 3.1/3.1.1 CONNACK return codes and the MQTT 5 reason codes a CONNACK may carry. */
const CONNACK_V3_NAMES: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};
const REASON_NAMES: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

/** "0x87 not authorized" (v5) or "5 not authorized" (v3/v4 CONNACK return code). */
export function reasonName(code: number, v3Connack = false): string {
  if (v3Connack) return `${code} ${CONNACK_V3_NAMES[code] ?? 'unknown return code'}`;
  return `0x${code.toString(16).padStart(2, '0')} ${REASON_NAMES[code] ?? 'unknown reason'}`;
}
