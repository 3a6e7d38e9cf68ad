/** File helpers shared by the durable stores (Raft WAL, file engine). Errors are raw Node.js errors; callers map them. */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';

/** Positioned write of the whole buffer (loops on short writes). */
export async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    done += bytesWritten;
  }
}

/** Positioned vectored write of all buffers (finishes a short writev with plain writes). */
export async function writevAll(fh: FileHandle, bufs: Uint8Array[], position: number): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  const { bytesWritten } = await fh.writev(bufs, position);
  if (bytesWritten >= total) return;
  let skip = bytesWritten;
  let pos = position + bytesWritten;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    const rest = b.subarray(skip);
    skip = 0;
    await writeAll(fh, rest, pos);
    pos += rest.length;
  }
}

/** Positioned read filling `buf` from `position`; returns the bytes read (less than buf.length only at end of file). */
export async function readFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead <= 0) break;
    done += bytesRead;
  }
  return done;
}

/** fsync a directory so that creations, renames and unlinks inside it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes `data` to `path` atomically: a temp file, fdatasync, rename over. Optionally fsyncs the directory. */
export async function writeFileAtomic(path: string, data: Uint8Array, syncDirOf?: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeAll(fh, data, 0);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  if (syncDirOf !== undefined) await fsyncDir(syncDirOf);
}

/** fdatasync a file by path; false when it no longer exists (deleted by retention meanwhile). */
export async function datasyncPath(path: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r+');
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  try {
    await fh.datasync();
    return true;
  } finally {
    await fh.close();
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
