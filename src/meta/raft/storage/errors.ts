import { RobustError } from '../../../common/errors.js';

export type RaftStorageErrorCode =
  /** A filesystem call failed (open, read, write, fsync, rename, unlink...). */
  | 'raft_storage_io'
  /** The files on disk are inconsistent in a way recovery must not paper over (not a torn tail). */
  | 'raft_storage_corrupt'
  /** The caller broke the storage contract (non-contiguous entries, snapshot beyond the log...). */
  | 'raft_storage_misuse'
  /** The store was closed, or failed earlier and refuses further writes. */
  | 'raft_storage_unavailable';

/**
 * A Raft log store failure. `path` names the file (or directory) involved and
 * `op` what was being done, so the one-line message is actionable on its own.
 * A torn WAL tail is NOT an error: recovery cuts it off and reports it.
 */
export class RaftStorageError extends RobustError {
  constructor(
    readonly op: string,
    readonly path: string,
    readonly detail: string,
    code: RaftStorageErrorCode = 'raft_storage_io',
    cause?: unknown,
  ) {
    super(`raft storage: ${op} ${path}: ${detail}`, code, cause === undefined ? undefined : { cause });
  }
}

/** Wrap a filesystem call so a failure becomes a RaftStorageError naming the file. */
export async function io<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RaftStorageError) throw err;
    const e = err as NodeJS.ErrnoException;
    const detail = e?.code ? `${e.code}: ${e.message}` : String((err as Error)?.message ?? err);
    throw new RaftStorageError(op, path, detail, 'raft_storage_io', err);
  }
}
