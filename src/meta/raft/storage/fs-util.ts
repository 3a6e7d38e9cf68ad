import { open, type FileHandle } from 'node:fs/promises';
import { io } from './errors.js';

/** fsync a directory so that creations, renames and unlinks inside it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  await io('fsync directory', dir, async () => {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  });
}

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
