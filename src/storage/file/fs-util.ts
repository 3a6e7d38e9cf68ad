/** File helpers of the file engine: the shared ones, plus RocketMQ-style file names. */
export { datasyncPath, fsyncDir, isNotFound, readFully, writeAll, writeFileAtomic } from '../../common/fs-util.js';

/** Fixed-width decimal name of a position or offset, like RocketMQ's file names. */
export function numberName(n: number): string {
  return String(n).padStart(20, '0');
}

export const NUMBER_NAME_RE = /^\d{20}$/;
