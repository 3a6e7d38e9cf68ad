/**
 * CRC32C (Castagnoli), the checksum used by our on-disk formats (Raft WAL,
 * snapshots). Backed by @node-rs/crc32 (native, SIMD/SSE4.2 accelerated).
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC32C of `buf`. Pass the previous result as `initial` to continue a running
 * checksum over several buffers: crc32c(b, crc32c(a)) === crc32c(a ++ b).
 * Always returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, initial = 0): number {
  return nativeCrc32c(buf, initial) >>> 0;
}
