/**
 * RocketMQ answers errors in-band: the gRPC call succeeds and the response's
 * Status carries a Code the client maps to its exceptions. Handlers throw
 * RocketmqError with the Code the client should see; the server turns it
 * into that Status (anything else becomes INTERNAL_ERROR).
 */
import { RobustError, errorMessage } from '../../common/errors.js';
import { StorageError } from '../../storage/errors.js';
import type { Code, Status } from './proto.js';

export class RocketmqError extends RobustError {
  constructor(
    readonly status: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, `rocketmq_${status.toLowerCase()}`, options);
  }
}

/** A storage failure as the Status a RocketMQ proxy gives for it (retriable ones map to codes the client retries). */
export function storageStatus(err: StorageError): Code {
  switch (err.code) {
    case 'shard_not_found':
      return 'TOPIC_NOT_FOUND';
    case 'record_too_large':
      return 'MESSAGE_BODY_TOO_LARGE';
    case 'not_writer':
    case 'not_enough_replicas':
    case 'journal_unavailable':
    case 'journal_recovery_race':
      return 'HA_NOT_AVAILABLE';
    default:
      return 'INTERNAL_ERROR';
  }
}

/** The Status a failed handler answers with. */
export function statusOf(err: unknown): Status {
  if (err instanceof RocketmqError) return { code: err.status, message: err.message };
  if (err instanceof StorageError) return { code: storageStatus(err), message: err.message };
  return { code: 'INTERNAL_ERROR', message: errorMessage(err) };
}

/** Whether a failure is the broker's fault (worth an error log line) rather than the client's. */
export function isServerFault(err: unknown): boolean {
  if (err instanceof RocketmqError) return err.status.startsWith('INTERNAL') || err.status === 'HA_NOT_AVAILABLE';
  return true;
}
