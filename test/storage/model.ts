/**
 * A reference model of one StorageEngine and a model-based property test driver
 * that runs random command sequences against an engine and the model side by side
 * (fast-check `fc.commands` + `fc.asyncModelRun`), comparing every result.
 *
 * Reuse for any engine:
 *
 *   await checkEngineAgainstModel('file', {
 *     makeEngine: async () => FileEngine.open({ dir: freshDir(), ... }),
 *     reopen: async (e) => { await e.close(); return FileEngine.open({ dir: dirOf(e), ... }); },
 *     destroy: async (e) => removeDir(dirOf(e)),
 *     unbounded: true,
 *   }, runs);
 *
 * Each run starts with shards orders-0 and orders-1 created (logs-0, and deleted
 * shards, exercise ShardNotFoundError), then runs up to 80 random commands:
 * createShard, append (1..20 records: null/empty/small/large keys and values,
 * unicode header keys, tags, timestamps that may go backwards), concurrentAppend
 * (2..3 batches in flight), read (valid, endOffset, below start, past end; small
 * and huge limits), waitForData (data there: must resolve at once; else timeout
 * 0..3 ms), waitThenAppend (a pending long poll must be woken by the append),
 * offsetForTime, truncateBefore, shardInfo, deleteShard, and, when the factory
 * supports them, reopen and maintenance. After reopen/maintenance every shard is
 * read back in full.
 *
 * Semantics the model expects (StorageEngine in src/storage/types.ts, plus the
 * points the contract leaves open, as the memory engine implements them):
 * - every operation on a shard that does not exist throws ShardNotFoundError
 *   (deleteShard of one is a no-op; createShard of an existing one keeps its data);
 * - read: OffsetOutOfRangeError (with the shard's startOffset/endOffset) outside
 *   [startOffset, endOffset], [] at endOffset, else a prefix of the records from
 *   `from` of at most maxRecords records, at least one; exact maxBytes cut when the
 *   factory gives `recordBytes`;
 * - waitForData resolves promptly when a record at `from` exists, and never
 *   rejects on timeout (from < startOffset: only "resolves" is checked);
 * - offsetForTime: first readable offset with timestamp >= t (timestamps may go
 *   backwards unless `timestamps: 'monotonic'`), endOffset if none;
 * - truncateBefore(o): o <= startOffset is a no-op, o > endOffset throws
 *   OffsetOutOfRangeError, else startOffset = o; it survives a reopen;
 * - concurrent appends to one shard get disjoint, dense offset ranges.
 *
 * A failure prints fast-check's seed, path and the command list (with its
 * replayPath) and the exact replay line: STORAGE_PROPERTY_SEED=<seed>
 * STORAGE_PROPERTY_PATH=<path> STORAGE_PROPERTY_REPLAY_PATH=<replayPath> (fast-check
 * needs the replayPath of fc.commands as well as seed and path to replay).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OffsetOutOfRangeError, RecordTooLargeError, ShardNotFoundError } from '../../src/storage/errors.js';
import type { AppendRecord, RecordHeader, StorageEngine, StoredRecord } from '../../src/storage/types.js';

// ---------------------------------------------------------------------------
// The reference model

export class ModelShard {
  /** Every record ever appended, index = offset (records before `start` are gone). */
  readonly records: StoredRecord[] = [];
  start = 0;
  get end(): number {
    return this.records.length;
  }
  /** The records still readable. */
  live(): StoredRecord[] {
    return this.records.slice(this.start);
  }
  append(batch: AppendRecord[]): number {
    const base = this.records.length;
    batch.forEach((r, i) => this.records.push(copyRecord(r, BigInt(base + i))));
    return base;
  }
  read(from: number, maxRecords: number, maxBytes: number, recordBytes?: (r: AppendRecord) => number): StoredRecord[] {
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (let o = from; o < this.end && out.length < Math.max(1, maxRecords); o++) {
      const r = this.records[o]!;
      if (recordBytes) {
        const n = recordBytes(r);
        if (out.length > 0 && bytes + n > maxBytes) break;
        bytes += n;
      }
      out.push(r);
    }
    return out;
  }
  offsetForTime(t: number): number {
    for (let o = this.start; o < this.end; o++) if (this.records[o]!.timestamp >= t) return o;
    return this.end;
  }
  truncateBefore(o: number): void {
    if (o > this.start) this.start = o;
  }
}

export class StorageModel {
  readonly shards = new Map<string, ModelShard>();
  /** Timestamp generator state (ms after TS_BASE). */
  clock = 0;
}

export function copyRecord(r: AppendRecord, offset: bigint): StoredRecord {
  const out: StoredRecord = {
    offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : Buffer.from(r.key),
    value: r.value === null ? null : Buffer.from(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value) })),
  };
  if (r.tag !== undefined) out.tag = r.tag;
  return out;
}

// ---------------------------------------------------------------------------
// Comparisons

function bufEq(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
}

function describeBuf(b: Buffer | null): string {
  if (b === null) return 'null';
  if (!Buffer.isBuffer(b)) return `non-Buffer ${typeof b}`;
  return b.length <= 16 ? `<${b.toString('hex')}>` : `<${b.length} bytes ${b.subarray(0, 8).toString('hex')}…>`;
}

/** Field-by-field equality of a record read back with the model's; throws naming the first difference. */
export function assertRecordEqual(got: StoredRecord, want: StoredRecord, where: string): void {
  const at = `${where} offset ${want.offset}`;
  assert.equal(typeof got.offset, 'bigint', `${at}: offset is not a bigint`);
  assert.equal(got.offset, want.offset, `${at}: offset`);
  assert.equal(got.timestamp, want.timestamp, `${at}: timestamp`);
  assert.ok(bufEq(got.key, want.key), `${at}: key ${describeBuf(got.key)} != ${describeBuf(want.key)}`);
  assert.ok(bufEq(got.value, want.value), `${at}: value ${describeBuf(got.value)} != ${describeBuf(want.value)}`);
  assert.ok(Array.isArray(got.headers), `${at}: headers is not an array`);
  assert.equal(got.headers.length, want.headers.length, `${at}: header count`);
  want.headers.forEach((h: RecordHeader, i) => {
    const g = got.headers[i]!;
    assert.equal(g.key, h.key, `${at}: header ${i} key`);
    assert.ok(bufEq(g.value, h.value), `${at}: header ${i} value ${describeBuf(g.value)} != ${describeBuf(h.value)}`);
  });
  assert.equal(got.tag, want.tag, `${at}: tag`);
}

/** Awaits `p` and asserts it rejects with an instance of `cls`; returns the error. */
export async function expectError<E extends Error>(p: Promise<unknown>, cls: abstract new (...args: never[]) => E, what: string): Promise<E> {
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    if (err instanceof cls) return err;
    assert.fail(`${what}: expected ${cls.name}, got ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`);
  }
  assert.fail(`${what}: expected ${cls.name}, but it succeeded with ${fmt(result)}`);
}

function fmt(v: unknown): string {
  if (Array.isArray(v)) return `[${v.length} items]`;
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

/** Resolves to 'resolved' or 'timeout' (never hangs the test). */
async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false }> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<{ ok: false }>((res) => {
    timer = setTimeout(() => res({ ok: false }), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value })), guard]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// The driver

export interface EngineFactory {
  /** A fresh, empty engine (one per run). */
  makeEngine(): Promise<StorageEngine>;
  /** For persistent engines: close `engine` and open it again on the same data; the model keeps its state. */
  reopen?(engine: StorageEngine): Promise<StorageEngine>;
  /**
   * Engine housekeeping the model does not see, run as a random command (e.g.
   * enforceRetention(): with retention off it only reclaims unused segments);
   * every shard must read back unchanged afterwards.
   */
  maintenance?(engine: StorageEngine): Promise<void>;
  /** Called once per run after the engine was closed (e.g. remove its directory). */
  destroy?(engine: StorageEngine): Promise<void>;
  /**
   * True when the engine never drops data on its own (no byte bound or retention
   * in play): startOffset must then equal the model's exactly. When false, after
   * each append the engine may have advanced startOffset (dropped the oldest
   * records); the model checks it only moved forward, endOffset matches, and what
   * remains is the model's suffix, then adopts the engine's startOffset.
   */
  unbounded?: boolean;
  /**
   * The engine's per-record byte accounting for ReadLimits.maxBytes. Given, reads
   * are checked for the exact cut; absent, only "a non-empty prefix" (and the full
   * count when maxBytes is huge).
   */
  recordBytes?: (r: AppendRecord) => number;
  /** shardInfo().bytes equals the sum of recordBytes over the readable records. */
  exactShardBytes?: boolean;
  /**
   * With recordBytes and unbounded = false: the shard's byte bound. The model then
   * predicts exactly which records are dropped (the longest suffix that fits) and
   * expects RecordTooLargeError for a batch larger than the bound.
   */
  boundBytes?: number;
  /** 'monotonic': appended timestamps never go backwards. Default 'any'. */
  timestamps?: 'any' | 'monotonic';
  /** Largest value generated (bytes). Default 3000. */
  maxValueBytes?: number;
  /** Weight of "large" values (256..maxValueBytes) against 8 for null/empty/small ones. Default 1. */
  largeValueWeight?: number;
  /**
   * With recordBytes: generated batches are cut (keeping at least one record) to
   * at most this many bytes, e.g. to stay under a CommitLog segment.
   */
  maxBatchBytes?: number;
  /** Commands per run (max). Default 80. */
  maxCommands?: number;
}

/** Shard ids the commands pick from (few, so commands hit existing shards often). */
export const MODEL_SHARDS = ['orders-0', 'orders-1', 'logs-0'] as const;
export const TS_BASE = 1_700_000_000_000;
const HUGE_BYTES = 64 * 1024 * 1024;

interface Real {
  engine: StorageEngine;
}

interface Ctx {
  name: string;
  factory: EngineFactory;
}

// A record template: the bytes are re-materialized as fresh Buffers on every run,
// so an engine that mutated what it was given cannot poison a replay.
interface RecordTemplate {
  tsDelta: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Array<{ key: string; value: Uint8Array }>;
  tag: string | undefined;
}

type OffsetPick = { kind: 'in'; frac: number } | { kind: 'end' } | { kind: 'below'; delta: number } | { kind: 'above'; delta: number };
type TimePick = { kind: 'existing'; frac: number; delta: -1 | 0 | 1 } | { kind: 'min' } | { kind: 'max' } | { kind: 'random'; t: number };

type Op =
  | { op: 'createShard'; shard: string }
  | { op: 'deleteShard'; shard: string }
  | { op: 'append'; shard: string; records: RecordTemplate[] }
  | { op: 'concurrentAppend'; shard: string; batches: RecordTemplate[][] }
  | { op: 'read'; shard: string; from: OffsetPick; maxRecords: number; maxBytes: number }
  | { op: 'waitForData'; shard: string; from: OffsetPick; timeoutMs: number }
  | { op: 'waitThenAppend'; shard: string; records: RecordTemplate[] }
  | { op: 'offsetForTime'; shard: string; at: TimePick }
  | { op: 'truncateBefore'; shard: string; to: OffsetPick }
  | { op: 'shardInfo'; shard: string }
  | { op: 'reopen' }
  | { op: 'maintenance' };

function pickOffset(m: ModelShard | undefined, p: OffsetPick): bigint {
  const start = m?.start ?? 0;
  const end = m?.end ?? 0;
  switch (p.kind) {
    case 'in':
      return BigInt(start + Math.floor(p.frac * (end - start)));
    case 'end':
      return BigInt(end);
    case 'below':
      return BigInt(start - p.delta);
    case 'above':
      return BigInt(end + p.delta);
  }
}

function pickTime(m: ModelShard | undefined, p: TimePick): number {
  switch (p.kind) {
    case 'min':
      return 0;
    case 'max':
      return Number.MAX_SAFE_INTEGER;
    case 'random':
      return TS_BASE + p.t;
    case 'existing': {
      if (!m || m.end === m.start) return TS_BASE + p.delta;
      const r = m.records[m.start + Math.floor(p.frac * (m.end - m.start))]!;
      return r.timestamp + p.delta;
    }
  }
}

function materialize(ctx: Ctx, model: StorageModel, templates: RecordTemplate[]): AppendRecord[] {
  const { recordBytes, maxBatchBytes } = ctx.factory;
  const monotonic = ctx.factory.timestamps === 'monotonic';
  let bytes = 0;
  const out: AppendRecord[] = [];
  for (const t of templates) {
    const ts = model.clock + (monotonic ? Math.abs(t.tsDelta) : t.tsDelta);
    model.clock = Math.max(model.clock, ts);
    const r: AppendRecord = {
      timestamp: TS_BASE + ts,
      key: t.key === null ? null : Buffer.from(t.key),
      value: t.value === null ? null : Buffer.from(t.value),
      headers: t.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value) })),
    };
    if (t.tag !== undefined) r.tag = t.tag;
    if (recordBytes && maxBatchBytes !== undefined) {
      bytes += recordBytes(r);
      if (out.length > 0 && bytes > maxBatchBytes) break;
    }
    out.push(r);
  }
  return out;
}

function describeTemplates(ts: RecordTemplate[]): string {
  const one = (t: RecordTemplate) =>
    `{dt:${t.tsDelta},k:${t.key === null ? 'null' : t.key.length},v:${t.value === null ? 'null' : t.value.length},h:${t.headers.length}${t.tag !== undefined ? `,tag:${JSON.stringify(t.tag)}` : ''}}`;
  return `[${ts.map(one).join(',')}]`;
}

function describeOp(op: Op): string {
  switch (op.op) {
    case 'append':
    case 'waitThenAppend':
      return `${op.op}(${op.shard}, ${describeTemplates(op.records)})`;
    case 'concurrentAppend':
      return `concurrentAppend(${op.shard}, ${op.batches.map(describeTemplates).join(' | ')})`;
    case 'reopen':
    case 'maintenance':
      return `${op.op}()`;
    default: {
      const { op: name, shard, ...rest } = op;
      return `${name}(${shard}${Object.keys(rest).length ? `, ${JSON.stringify(rest)}` : ''})`;
    }
  }
}

class StorageCommand implements fc.AsyncCommand<StorageModel, Real> {
  constructor(
    private readonly ctx: Ctx,
    readonly op: Op,
  ) {}

  check(): boolean {
    return true;
  }

  toString(): string {
    return describeOp(this.op);
  }

  async run(model: StorageModel, real: Real): Promise<void> {
    const { factory } = this.ctx;
    const op = this.op;
    const e = real.engine;
    if (op.op === 'reopen') {
      real.engine = await factory.reopen!(e);
      await checkAll(this.ctx, model, real, 'after reopen');
      return;
    }
    if (op.op === 'maintenance') {
      await factory.maintenance!(e);
      await checkAll(this.ctx, model, real, 'after maintenance');
      return;
    }
    const shard = op.shard;
    const m = model.shards.get(shard);
    const what = `${describeOp(op)}`;
    const missing = async (p: Promise<unknown>) => {
      await expectError(p, ShardNotFoundError, `${what} on a missing shard`);
    };

    switch (op.op) {
      case 'createShard': {
        await e.createShard({ shard, topic: shard.replace(/-\d+$/, ''), engine: e.name });
        if (!m) model.shards.set(shard, new ModelShard());
        await checkShard(this.ctx, model, real, shard, what);
        assert.ok(e.listShards().includes(shard), `${what}: listShards lacks ${shard}`);
        return;
      }
      case 'deleteShard': {
        await e.deleteShard(shard);
        model.shards.delete(shard);
        assert.ok(!e.listShards().includes(shard), `${what}: listShards still has ${shard}`);
        await missing(e.shardInfo(shard));
        return;
      }
      case 'append': {
        const recs = materialize(this.ctx, model, op.records);
        if (!m) return missing(e.append(shard, recs));
        if (this.tooLarge(recs)) {
          await expectError(e.append(shard, recs), RecordTooLargeError, what);
          return;
        }
        const startBefore = m.start;
        const { baseOffset } = await e.append(shard, recs);
        assert.equal(baseOffset, BigInt(m.end), `${what}: baseOffset`);
        m.append(recs);
        await syncBound(this.ctx, m, real, shard, startBefore, what);
        return;
      }
      case 'concurrentAppend': {
        const batches = op.batches.map((b) => materialize(this.ctx, model, b));
        if (!m) {
          for (const b of batches) await missing(e.append(shard, b));
          return;
        }
        if (batches.some((b) => this.tooLarge(b))) return; // covered by 'append'
        const startBefore = m.start;
        const results = await Promise.all(batches.map((b) => e.append(shard, b)));
        // Disjoint, dense ranges covering [end, end + total), in whatever order the engine chose.
        const order = batches.map((b, i) => ({ b, base: results[i]!.baseOffset })).sort((x, y) => (x.base < y.base ? -1 : x.base > y.base ? 1 : 0));
        let next = BigInt(m.end);
        for (const { b, base } of order) {
          assert.equal(base, next, `${what}: batches' baseOffsets ${results.map((r) => r.baseOffset).join(',')} are not dense from ${m.end}`);
          next += BigInt(b.length);
          m.append(b);
        }
        await syncBound(this.ctx, m, real, shard, startBefore, what);
        return;
      }
      case 'read': {
        const from = pickOffset(m, op.from);
        const limits = { maxRecords: op.maxRecords, maxBytes: op.maxBytes };
        if (!m) return missing(e.read(shard, from, limits));
        if (from < BigInt(m.start) || from > BigInt(m.end)) {
          const err = await expectError(e.read(shard, from, limits), OffsetOutOfRangeError, `${what} at ${from} (valid ${m.start}..${m.end})`);
          assert.equal(err.startOffset, BigInt(m.start), `${what}: error's startOffset`);
          assert.equal(err.endOffset, BigInt(m.end), `${what}: error's endOffset`);
          return;
        }
        const got = await e.read(shard, from, limits);
        const want = m.read(Number(from), op.maxRecords, op.maxBytes, factory.recordBytes);
        assert.ok(Array.isArray(got), `${what}: not an array`);
        if (factory.recordBytes || op.maxBytes >= HUGE_BYTES) {
          assert.equal(got.length, want.length, `${what} at ${from}: record count`);
        } else {
          assert.ok(got.length <= want.length, `${what} at ${from}: ${got.length} records, at most ${want.length} expected`);
          if (want.length > 0) assert.ok(got.length >= 1, `${what} at ${from}: [] though records exist`);
        }
        got.forEach((r, i) => assertRecordEqual(r, want[i]!, what));
        return;
      }
      case 'waitForData': {
        const from = pickOffset(m, op.from);
        if (!m) return missing(e.waitForData(shard, from, op.timeoutMs));
        const hasData = from >= BigInt(m.start) && from < BigInt(m.end);
        // With data there, even a long timeout must resolve at once.
        const r = await within(e.waitForData(shard, from, hasData ? 30_000 : op.timeoutMs), hasData ? 2_000 : 5_000);
        assert.ok(r.ok, `${what} at ${from} (valid ${m.start}..${m.end}): did not resolve ${hasData ? 'at once though data exists' : 'after its timeout'}`);
        return;
      }
      case 'waitThenAppend': {
        const recs = materialize(this.ctx, model, op.records);
        if (!m || this.tooLarge(recs)) return;
        const startBefore = m.start;
        let woke = false;
        const waiting = e.waitForData(shard, BigInt(m.end), 30_000).then(() => {
          woke = true;
        });
        await new Promise((res) => setImmediate(res));
        assert.equal(woke, false, `${what}: waitForData at endOffset ${m.end} resolved before any append`);
        const { baseOffset } = await e.append(shard, recs);
        assert.equal(baseOffset, BigInt(m.end), `${what}: baseOffset`);
        m.append(recs);
        const r = await within(waiting, 2_000);
        assert.ok(r.ok, `${what}: waitForData was not woken by the append`);
        await syncBound(this.ctx, m, real, shard, startBefore, what);
        return;
      }
      case 'offsetForTime': {
        const t = pickTime(m, op.at);
        if (!m) return missing(e.offsetForTime(shard, t));
        const got = await e.offsetForTime(shard, t);
        assert.equal(got, BigInt(m.offsetForTime(t)), `${what} t=${t} (readable ${m.start}..${m.end})`);
        return;
      }
      case 'truncateBefore': {
        const to = pickOffset(m, op.to);
        if (!m) return missing(e.truncateBefore(shard, to));
        if (to > BigInt(m.end)) {
          await expectError(e.truncateBefore(shard, to), OffsetOutOfRangeError, `${what} to ${to} (end ${m.end})`);
        } else {
          await e.truncateBefore(shard, to);
          m.truncateBefore(Number(to));
        }
        await checkShard(this.ctx, model, real, shard, `${what} to ${to}`);
        return;
      }
      case 'shardInfo': {
        if (!m) return missing(e.shardInfo(shard));
        await checkShard(this.ctx, model, real, shard, what);
        return;
      }
    }
  }

  private tooLarge(recs: AppendRecord[]): boolean {
    const { recordBytes, boundBytes, unbounded } = this.ctx.factory;
    if (unbounded || !recordBytes || boundBytes === undefined) return false;
    return recs.reduce((n, r) => n + recordBytes(r), 0) > boundBytes;
  }
}

async function checkShard(ctx: Ctx, model: StorageModel, real: Real, shard: string, what: string): Promise<void> {
  const m = model.shards.get(shard);
  const e = real.engine;
  if (!m) {
    await expectError(e.shardInfo(shard), ShardNotFoundError, `${what}: shardInfo(${shard}) of a deleted shard`);
    return;
  }
  const info = await e.shardInfo(shard);
  assert.equal(info.shard, shard, `${what}: shardInfo.shard`);
  assert.equal(info.engine, e.name, `${what}: shardInfo.engine`);
  assert.equal(info.startOffset, BigInt(m.start), `${what}: shardInfo(${shard}).startOffset`);
  assert.equal(info.endOffset, BigInt(m.end), `${what}: shardInfo(${shard}).endOffset`);
  assert.ok(Number.isFinite(info.bytes) && info.bytes >= 0, `${what}: shardInfo.bytes ${info.bytes}`);
  if (ctx.factory.exactShardBytes && ctx.factory.recordBytes) {
    const rb = ctx.factory.recordBytes;
    assert.equal(info.bytes, m.live().reduce((n, r) => n + rb(r), 0), `${what}: shardInfo(${shard}).bytes`);
  }
}

async function checkAll(ctx: Ctx, model: StorageModel, real: Real, what: string): Promise<void> {
  assert.deepEqual([...real.engine.listShards()].sort(), [...model.shards.keys()].sort(), `${what}: listShards`);
  for (const shard of model.shards.keys()) {
    await checkShard(ctx, model, real, shard, what);
    // Everything readable is still there, byte for byte.
    const m = model.shards.get(shard)!;
    let from = BigInt(m.start);
    const want = m.live();
    let i = 0;
    while (from < BigInt(m.end)) {
      const got = await real.engine.read(shard, from, { maxRecords: 1000, maxBytes: HUGE_BYTES });
      assert.ok(got.length > 0, `${what}: read(${shard}, ${from}) returned [] before endOffset ${m.end}`);
      for (const r of got) assertRecordEqual(r, want[i++]!, `${what}: ${shard}`);
      from += BigInt(got.length);
    }
  }
}

/**
 * After an append: check the engine's offsets against the model. Unbounded: exact.
 * Bounded: endOffset exact, startOffset only moved forward (exactly as predicted
 * when boundBytes is known); the model adopts it.
 */
async function syncBound(ctx: Ctx, m: ModelShard, real: Real, shard: string, startBefore: number, what: string): Promise<void> {
  const { factory } = ctx;
  const info = await real.engine.shardInfo(shard);
  assert.equal(info.endOffset, BigInt(m.end), `${what}: endOffset after append`);
  if (factory.unbounded) {
    assert.equal(info.startOffset, BigInt(m.start), `${what}: startOffset after append (nothing may be dropped)`);
    return;
  }
  assert.ok(info.startOffset >= BigInt(startBefore), `${what}: startOffset went back from ${startBefore} to ${info.startOffset}`);
  assert.ok(info.startOffset <= BigInt(m.end), `${what}: startOffset ${info.startOffset} past endOffset ${m.end}`);
  if (factory.recordBytes && factory.boundBytes !== undefined) {
    const rb = factory.recordBytes;
    let held = m.records.slice(startBefore).reduce((n, r) => n + rb(r), 0);
    let start = startBefore;
    while (start < m.end && held > factory.boundBytes) held -= rb(m.records[start++]!);
    assert.equal(info.startOffset, BigInt(start), `${what}: startOffset after the byte bound (${factory.boundBytes}) dropped the oldest`);
    if (factory.exactShardBytes) assert.equal(info.bytes, held, `${what}: bytes held`);
    assert.ok(info.bytes <= factory.boundBytes, `${what}: ${info.bytes} bytes held exceed the bound ${factory.boundBytes}`);
  }
  m.start = Number(info.startOffset);
}

// ---------------------------------------------------------------------------
// Arbitraries

function bytesArb(maxLarge: number, allowNull: boolean, largeWeight = 1): fc.Arbitrary<Uint8Array | null> {
  const patterned = (n: number, seed: number) => {
    const u = new Uint8Array(n);
    for (let i = 0; i < n; i++) u[i] = (seed + i * 31) & 0xff;
    return u;
  };
  const options: Array<fc.WeightedArbitrary<Uint8Array | null>> = [
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  ];
  if (allowNull) options.push({ weight: 1, arbitrary: fc.constant(null) });
  if (maxLarge > 256 && largeWeight > 0) options.push({ weight: largeWeight, arbitrary: fc.tuple(fc.integer({ min: 256, max: maxLarge }), fc.nat(255)).map(([n, s]) => patterned(n, s)) });
  return fc.oneof(...options);
}

function recordArb(maxValueBytes: number, largeValueWeight: number): fc.Arbitrary<RecordTemplate> {
  return fc.record({
    tsDelta: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 20 }) }, { weight: 1, arbitrary: fc.integer({ min: -50, max: 50 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    key: bytesArb(0, true),
    value: bytesArb(maxValueBytes, true, largeValueWeight),
    headers: fc.array(fc.record({ key: fc.string({ maxLength: 6, unit: 'grapheme' }), value: bytesArb(0, false) as fc.Arbitrary<Uint8Array> }), { maxLength: 3 }),
    tag: fc.option(fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }), { nil: undefined, freq: 2 }),
  });
}

const offsetPickArb: fc.Arbitrary<OffsetPick> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('in' as const), frac: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'end' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('below' as const), delta: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('above' as const), delta: fc.integer({ min: 1, max: 3 }) }) },
);

const timePickArb: fc.Arbitrary<TimePick> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('existing' as const), frac: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), delta: fc.constantFrom(-1 as const, 0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'min' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'max' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), t: fc.integer({ min: -100, max: 2000 }) }) },
);

function commandArbs(ctx: Ctx): Array<fc.Arbitrary<fc.AsyncCommand<StorageModel, Real>>> {
  const shardArb = fc.constantFrom(...MODEL_SHARDS);
  const rec = recordArb(ctx.factory.maxValueBytes ?? 3000, ctx.factory.largeValueWeight ?? 1);
  const batch = fc.array(rec, { minLength: 1, maxLength: 20 });
  const cmd = (a: fc.Arbitrary<Op>, weight = 1) => Array.from({ length: weight }, () => a.map((op) => new StorageCommand(ctx, op)));
  const arbs = [
    ...cmd(fc.record({ op: fc.constant('createShard' as const), shard: shardArb }), 2),
    ...cmd(fc.record({ op: fc.constant('append' as const), shard: shardArb, records: batch }), 5),
    ...cmd(fc.record({ op: fc.constant('concurrentAppend' as const), shard: shardArb, batches: fc.array(fc.array(rec, { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 3 }) })),
    ...cmd(
      fc.record({
        op: fc.constant('read' as const),
        shard: shardArb,
        from: offsetPickArb,
        maxRecords: fc.integer({ min: 1, max: 25 }),
        maxBytes: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4096 }), fc.constant(HUGE_BYTES)),
      }),
      5,
    ),
    ...cmd(fc.record({ op: fc.constant('waitForData' as const), shard: shardArb, from: offsetPickArb, timeoutMs: fc.constantFrom(0, 1, 3) }), 2),
    ...cmd(fc.record({ op: fc.constant('waitThenAppend' as const), shard: shardArb, records: fc.array(rec, { minLength: 1, maxLength: 3 }) })),
    ...cmd(fc.record({ op: fc.constant('offsetForTime' as const), shard: shardArb, at: timePickArb }), 2),
    ...cmd(fc.record({ op: fc.constant('truncateBefore' as const), shard: shardArb, to: offsetPickArb })),
    ...cmd(fc.record({ op: fc.constant('shardInfo' as const), shard: shardArb })),
    ...cmd(fc.record({ op: fc.constant('deleteShard' as const), shard: shardArb })),
  ];
  if (ctx.factory.reopen) arbs.push(...cmd(fc.constant({ op: 'reopen' as const })));
  if (ctx.factory.maintenance) arbs.push(...cmd(fc.constant({ op: 'maintenance' as const })));
  return arbs;
}

/** Every run starts with the first INITIAL_SHARDS of MODEL_SHARDS created (the others, and deleted ones, exercise ShardNotFoundError). */
export const INITIAL_SHARDS = 2;

async function initialState(engine: StorageEngine): Promise<StorageModel> {
  const model = new StorageModel();
  for (const shard of MODEL_SHARDS.slice(0, INITIAL_SHARDS)) {
    await engine.createShard({ shard, topic: shard.replace(/-\d+$/, ''), engine: engine.name });
    model.shards.set(shard, new ModelShard());
  }
  return model;
}

/** STORAGE_PROPERTY_RUNS, else `fallback`. */
export function propertyRuns(fallback: number): number {
  const env = Number(process.env['STORAGE_PROPERTY_RUNS']);
  return Number.isInteger(env) && env > 0 ? env : fallback;
}

/**
 * Runs `runs` random command sequences against fresh engines from `factory` and
 * the reference model; throws (with fast-check's seed, path and shrunk command
 * list) at the first difference.
 */
export async function checkEngineAgainstModel(name: string, factory: EngineFactory, runs = propertyRuns(100)): Promise<void> {
  const ctx: Ctx = { name, factory };
  const replayPath = process.env['STORAGE_PROPERTY_REPLAY_PATH'];
  const seedEnv = process.env['STORAGE_PROPERTY_SEED'];
  const pathEnv = process.env['STORAGE_PROPERTY_PATH'];
  const arb = fc.commands(commandArbs(ctx), { maxCommands: factory.maxCommands ?? 80, size: 'max', ...(replayPath ? { replayPath } : {}) });
  const details = await fc.check(
    fc.asyncProperty(arb, async (cmds) => {
      const real: Real = { engine: await factory.makeEngine() };
      try {
        await fc.asyncModelRun(async () => ({ model: await initialState(real.engine), real }), cmds);
      } finally {
        await real.engine.close().catch(() => undefined);
        await factory.destroy?.(real.engine);
      }
    }),
    {
      numRuns: runs,
      ...(seedEnv !== undefined ? { seed: Number(seedEnv) } : {}),
      ...(pathEnv !== undefined ? { path: pathEnv, endOnFailure: true } : {}),
    },
  );
  if (!details.failed) return;
  const cause = details.errorInstance as Error | undefined;
  const report = fc.defaultReportMessage(details) ?? '';
  const replayPathFound = /replayPath="([^"]*)"/.exec(report)?.[1];
  const replay =
    `STORAGE_PROPERTY_SEED=${details.seed} STORAGE_PROPERTY_PATH='${details.counterexamplePath ?? ''}'` +
    (replayPathFound !== undefined ? ` STORAGE_PROPERTY_REPLAY_PATH='${replayPathFound}'` : '');
  throw new Error(
    `${name}: the engine disagrees with the model\n` +
      `${cause?.message ?? String(cause)}\n` +
      `${report}\n` +
      `Replay: ${replay} node --test --test-name-pattern=<this test> <this test file>`,
    { cause },
  );
}
