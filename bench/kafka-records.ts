/**
 * Kafka record batch micro-benchmark: encode and decode rates of v2 record
 * batches of 1000 records (8-byte key, no headers) with 100 B and 1 KiB
 * values, uncompressed by default.
 *
 *   encode   encodeRecordBatch into one reused KafkaWriter (reset per batch).
 *   decode   decodeRecords of the same encoded batch (CRC-32C checked).
 *
 * Each case runs --seconds (default 2) after a 0.3 s warm-up. Prints a table
 * and, last, one JSON line.
 *
 *   npm run build && node dist/bench/kafka-records.js [--seconds 2] [--compression none|gzip|snappy|lz4|zstd]
 */
import { parseArgs } from 'node:util';
import { KafkaWriter } from '../src/broker/kafka/protocol/writer.js';
import { COMPRESSIONS, decodeRecords, encodeRecordBatch, type Compression } from '../src/broker/kafka/records/index.js';
import type { StoredRecord } from '../src/storage/types.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, compression: { type: 'string', default: 'none' } } });
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${args.seconds}`);
const compression = args.compression as Compression;
if (!COMPRESSIONS.includes(compression)) throw new Error(`--compression must be one of ${COMPRESSIONS.join(', ')}`);

const BATCH = 1000;

function makeRecords(valueSize: number): StoredRecord[] {
  const t0 = Date.now();
  return Array.from({ length: BATCH }, (_, i) => {
    const value = Buffer.alloc(valueSize);
    for (let j = 0; j < valueSize; j++) value[j] = (i * 31 + j * 7) & 0xff;
    return { offset: 1_000_000n + BigInt(i), timestamp: t0 + (i >> 4), key: Buffer.from(String(10_000_000 + i)), value, headers: [] };
  });
}

/** Runs `op` (one batch) for `secs` after a warm-up; returns batches per second. */
function rate(op: () => void, secs: number): number {
  const warm = performance.now() + 300;
  while (performance.now() < warm) op();
  let n = 0;
  const start = performance.now();
  const stop = start + secs * 1000;
  let now = start;
  while (now < stop) {
    for (let i = 0; i < 10; i++) op();
    n += 10;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

interface Row {
  case: string;
  op: 'encode' | 'decode';
  recordsPerSec: number;
  mbPerSec: number;
}

const rows: Row[] = [];
for (const size of [100, 1024]) {
  const records = makeRecords(size);
  const w = new KafkaWriter(1 << 20);
  encodeRecordBatch(w, { baseOffset: records[0]!.offset, records, compression });
  const encoded = w.toBuffer();
  const name = `${size === 1024 ? '1 KiB' : `${size} B`} x ${BATCH} (${compression})`;
  const payload = records.reduce((n, r) => n + (r.value?.length ?? 0) + (r.key?.length ?? 0), 0);

  const enc = rate(() => {
    w.reset();
    encodeRecordBatch(w, { baseOffset: records[0]!.offset, records, compression });
  }, seconds);
  rows.push({ case: name, op: 'encode', recordsPerSec: enc * BATCH, mbPerSec: (enc * payload) / 1e6 });

  let sink = 0;
  const dec = rate(() => {
    sink += decodeRecords(encoded)[0]!.records.length;
  }, seconds);
  if (sink === 0) throw new Error('nothing decoded');
  rows.push({ case: name, op: 'decode', recordsPerSec: dec * BATCH, mbPerSec: (dec * payload) / 1e6 });
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(`${'case'.padEnd(26)} ${'op'.padEnd(7)} ${'records/s'.padStart(12)} ${'MB/s'.padStart(8)}`);
for (const r of rows) console.log(`${r.case.padEnd(26)} ${r.op.padEnd(7)} ${fmt(r.recordsPerSec).padStart(12)} ${r.mbPerSec.toFixed(0).padStart(8)}`);
console.log(JSON.stringify({ bench: 'kafka-records', node: process.version, seconds, compression, rows }));
