/** Helpers shared by the journal node tests. */
import { KafkaWriter } from '../../src/broker/kafka/protocol/writer.js';
import { encodeRecordBatch } from '../../src/broker/kafka/records/index.js';
import { decodeStoredBatch } from '../../src/server/stored-batch.js';
import { ReplicaStore, type ReplicaStoreOptions } from '../../src/journal/replica-store.js';
import { Op, type AddRequest, type ReadUnit, type Unit } from '../../src/storage/journal/protocol.js';
import type { AppendBatch, AppendRecord, StoredRecord } from '../../src/storage/types.js';
import { captureLog } from '../storage/file/support.js';

export { makeRoot } from '../storage/file/support.js';

/** A v2 batch of these records, as a producer sends it (base offset 0). */
export function batchOf(records: AppendRecord[]): AppendBatch {
  const w = new KafkaWriter();
  encodeRecordBatch(w, { baseOffset: 0n, compression: 'none', records: records.map((r, i) => ({ ...r, offset: BigInt(i) })) });
  const ts = records.map((r) => r.timestamp);
  return { bytes: w.toBuffer(), count: records.length, firstTimestamp: ts[0]!, maxTimestamp: Math.max(...ts) };
}

/** A deterministic record; every fourth has null key and value, every third headers (and a tag, unless it goes in a Kafka batch). */
export function rec(n: number, tagged = true): AppendRecord {
  const r: AppendRecord = {
    timestamp: 1_700_000_000_000 + n,
    key: n % 4 === 3 ? null : Buffer.from(`k${n}`),
    value: n % 4 === 3 ? null : Buffer.from(`value-${n}-`.repeat(1 + (n % 5))),
    headers: n % 3 === 0 ? [{ key: `h${n}`, value: Buffer.from(`hv${n}`) }] : [],
  };
  if (tagged && n % 3 === 0) r.tag = `tag${n % 2}`;
  return r;
}

export const recordUnit = (n: number): Unit => ({ kind: 'record', record: rec(n) });
export const batchUnit = (from: number, count: number): Unit => ({ kind: 'batch', batch: batchOf(Array.from({ length: count }, (_, i) => rec(from + i, false))) });

export function addReq(shard: string, segment: number, firstEntry: number, units: Unit[], extra: Partial<AddRequest> = {}): AddRequest {
  return { op: Op.Add, shard, segment, epoch: 1, sync: false, lac: firstEntry - 1, firstEntry, units, ...extra };
}

/** Units made of entries [from, from+n): a mix of single records and batches (deterministic by position). */
/** Units made of entries [from, from+n): a mix of single records and batches (deterministic by position), and the records they hold. */
export function mixedUnits(from: number, n: number): { units: Unit[]; want: AppendRecord[] } {
  const units: Unit[] = [];
  const want: AppendRecord[] = [];
  let e = from;
  while (e < from + n) {
    const left = from + n - e;
    if (e % 7 < 3 || left < 2) {
      const r = rec(e);
      units.push({ kind: 'record', record: r });
      want.push(r);
      e += 1;
    } else {
      const c = Math.min(left, 2 + (e % 4));
      const rs = Array.from({ length: c }, (_, i) => rec(e + i, false));
      units.push({ kind: 'batch', batch: batchOf(rs) });
      want.push(...rs);
      e += c;
    }
  }
  return { units, want };
}

/** Read units as records with their entry ids (batches decoded; the base-offset field is the replica's). */
export function unitRecords(units: ReadUnit[]): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (const u of units) {
    if (u.kind === 'batch') out.push(...decodeStoredBatch(u.bytes, BigInt(u.entry)));
    else if (u.kind === 'hole') throw new Error(`entries ${u.entry}..${u.entry + u.count - 1} are a hole here`);
    else out.push({ ...u.record, offset: BigInt(u.entry) });
  }
  return out;
}

export function sameAs(got: StoredRecord, want: AppendRecord): boolean {
  const eq = (a: Buffer | null, b: Buffer | null) => (a === null || b === null ? a === b : a.equals(b));
  return (
    got.timestamp === want.timestamp &&
    eq(got.key, want.key) &&
    eq(got.value, want.value) &&
    (got.tag ?? undefined) === want.tag &&
    got.headers.length === want.headers.length &&
    got.headers.every((h, i) => h.key === want.headers[i]?.key && h.value.equals(want.headers[i]!.value))
  );
}

export function storeOptions(dir: string, extra: Partial<ReplicaStoreOptions> = {}): ReplicaStoreOptions {
  return { dir, log: captureLog().log, flushIntervalMs: 60_000, segmentBytes: 256 * 1024, ...extra };
}

export function openStore(dir: string, extra: Partial<ReplicaStoreOptions> = {}): Promise<ReplicaStore> {
  return ReplicaStore.open(storeOptions(dir, extra));
}
