/**
 * What a RocketMQ 5 message id tells: clients make it from a version byte
 * (0x01), 6 bytes of MAC address, 2 of process id, 4 of seconds since
 * 2021-01-01T00:00:00Z and a 4-byte sequence, in upper-case hex. The seconds
 * let a lookup by id start near the time the message was sent instead of
 * scanning a whole queue.
 */
const V1_ID = /^01[0-9A-Fa-f]{32}$/;
const EPOCH_2021_MS = Date.UTC(2021, 0, 1);

/** When the client created the id (ms since the epoch, to the second); undefined for ids in another format. */
export function messageIdTime(id: string): number | undefined {
  if (!V1_ID.test(id)) return undefined;
  const seconds = Number.parseInt(id.slice(18, 26), 16);
  return EPOCH_2021_MS + seconds * 1000;
}
