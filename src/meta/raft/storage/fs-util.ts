import { fsyncDir as fsyncDirRaw } from '../../../common/fs-util.js';
import { io } from './errors.js';

export { writeAll, writevAll } from '../../../common/fs-util.js';

/** fsync a directory so that creations, renames and unlinks inside it are durable (errors as RaftStorageError). */
export async function fsyncDir(dir: string): Promise<void> {
  await io('fsync directory', dir, () => fsyncDirRaw(dir));
}
