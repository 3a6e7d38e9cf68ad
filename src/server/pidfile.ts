import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RobustError } from '../common/errors.js';

const PID_FILE = 'robust-server.pid';

export class NodeAlreadyRunningError extends RobustError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`a node is already running with data_dir ${dataDir} (pid ${pid})`, 'already_running');
  }
}

export function pidFilePath(dataDir: string): string {
  return join(dataDir, PID_FILE);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the live node that owns this data dir, if any (a stale file is ignored). */
export function runningPid(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFilePath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) ? pid : undefined;
}

/** Claim the data dir for this process; one node per data dir. */
export function writePidFile(dataDir: string): void {
  const other = runningPid(dataDir);
  if (other !== undefined && other !== process.pid) throw new NodeAlreadyRunningError(dataDir, other);
  writeFileSync(pidFilePath(dataDir), `${process.pid}\n`);
}

/** Remove the pid file if it is still ours. */
export function removePidFile(dataDir: string): void {
  try {
    const text = readFileSync(pidFilePath(dataDir), 'utf8');
    if (Number.parseInt(text.trim(), 10) === process.pid) unlinkSync(pidFilePath(dataDir));
  } catch {
    // already gone
  }
}
