import { RobustError } from '../common/errors.js';

/** Base of every storage failure; `code` is what protocols map to client errors. */
export class StorageError extends RobustError {}

export class ShardNotFoundError extends StorageError {
  constructor(readonly shard: string) {
    super(`shard ${shard} does not exist`, 'shard_not_found');
  }
}

export class OffsetOutOfRangeError extends StorageError {
  constructor(
    readonly shard: string,
    readonly offset: bigint,
    readonly startOffset: bigint,
    readonly endOffset: bigint,
  ) {
    super(`offset ${offset} is out of range for shard ${shard} (valid ${startOffset}..${endOffset})`, 'offset_out_of_range');
  }
}

/** The disk is full: appends fail, reads keep working, nothing acknowledged is touched. */
export class StorageFullError extends StorageError {
  constructor(
    readonly path: string,
    cause?: unknown,
  ) {
    super(`no space left on the device holding ${path}; appends are refused until space is freed`, 'storage_full');
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause });
  }
}

/** Any other I/O failure while writing or reading. */
export class StorageIOError extends StorageError {
  constructor(
    readonly path: string,
    readonly op: string,
    cause: unknown,
  ) {
    super(`${op} failed on ${path}: ${(cause as Error)?.message ?? String(cause)}`, 'storage_io');
    Object.defineProperty(this, 'cause', { value: cause });
  }
}

/** A record or batch the engine will not store (e.g. larger than a CommitLog segment). */
export class RecordTooLargeError extends StorageError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`record batch of ${bytes} bytes exceeds the limit of ${limit} bytes`, 'record_too_large');
  }
}

/** The shard's topic uses an engine this node does not run. */
export class EngineUnavailableError extends StorageError {
  constructor(readonly engine: string) {
    super(`storage engine "${engine}" is not available on this node`, 'engine_unavailable');
  }
}

/** The engine was closed. */
export class StorageClosedError extends StorageError {
  constructor() {
    super('storage is closed', 'storage_closed');
  }
}

/** Map a Node.js fs error to a typed storage error. */
export function ioError(path: string, op: string, err: unknown): StorageError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StorageFullError(path, err);
  return new StorageIOError(path, op, err);
}
