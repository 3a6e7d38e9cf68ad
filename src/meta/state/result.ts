/**
 * The outcome of applying one committed entry. A rejected command is still a
 * consumed log entry: every meta node reaches the same rejection, so the error
 * is part of the replicated outcome (the proposer hands it back to its client),
 * never an exception that would stop the apply loop.
 */

/** Error codes a command can end with; record types may add their own strings. */
export type MetaErrorCode =
  | 'invalid' // malformed command or a value out of range
  | 'not_found'
  | 'already_exists'
  | 'conflict' // well-formed but contradicts current state (stale epoch, wrong lifecycle state)
  | 'unknown_kind'
  | 'stale_index' // the entry's index is not above appliedIndex: applying it twice would diverge
  | 'internal'; // a record type threw something unexpected: a bug, reported not propagated

export type ApplyResult =
  | { readonly ok: true; readonly value?: unknown }
  | { readonly ok: false; readonly code: MetaErrorCode | (string & {}); readonly message: string };

export function ok(value?: unknown): ApplyResult {
  return value === undefined ? { ok: true } : { ok: true, value };
}

export function fail(code: MetaErrorCode, message: string): ApplyResult {
  return { ok: false, code, message };
}

/**
 * Thrown by a record type's `validate` (and, as a convenience, by `apply` before
 * it mutates anything). The machine turns it into an error result.
 */
export class MetaCommandError extends Error {
  constructor(
    readonly code: MetaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MetaCommandError';
  }
}

/** Raised by `restore` for a snapshot this build cannot load; restore is not part of the log, so it throws. */
export class MetaSnapshotError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetaSnapshotError';
  }
}
