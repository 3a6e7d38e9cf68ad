/**
 * Typed readers for untrusted JSON: command envelopes from the log and record
 * state from snapshots. Every reader either returns a value of the promised type
 * or throws a MetaCommandError('invalid') naming the field, so record modules
 * validate a whole command before they touch state.
 */
import { MetaCommandError } from './result.js';

export interface StrOpts {
  /** Minimum length in UTF-16 code units (default 1: empty strings are rarely meant). */
  min?: number;
  max?: number;
  pattern?: RegExp;
  /** How to describe `pattern` in the error message. */
  patternText?: string;
}

export interface IntOpts {
  min?: number;
  max?: number;
}

export function invalid(message: string): never {
  throw new MetaCommandError('invalid', message);
}

export function isPlainObject(raw: unknown): raw is Readonly<Record<string, unknown>> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

export function checkStr(raw: unknown, where: string, opts: StrOpts = {}): string {
  const min = opts.min ?? 1;
  if (typeof raw !== 'string') return invalid(`${where}: must be a string`);
  if (raw.length < min) return invalid(min === 1 ? `${where}: must not be empty` : `${where}: must be at least ${min} characters`);
  if (opts.max !== undefined && raw.length > opts.max) return invalid(`${where}: must be at most ${opts.max} characters`);
  if (opts.pattern && !opts.pattern.test(raw)) return invalid(`${where}: must be ${opts.patternText ?? `match ${String(opts.pattern)}`}`);
  return raw;
}

export function checkInt(raw: unknown, where: string, opts: IntOpts = {}): number {
  // Only safe integers: a JSON number beyond 2^53 has already lost precision.
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw)) return invalid(`${where}: must be an integer`);
  const { min, max } = opts;
  if ((min !== undefined && raw < min) || (max !== undefined && raw > max)) {
    const range = min !== undefined && max !== undefined ? `in ${min}..${max}` : min !== undefined ? `>= ${min}` : `<= ${String(max)}`;
    return invalid(`${where}: must be an integer ${range}`);
  }
  return raw;
}

export function checkOneOf<T extends string | number>(raw: unknown, where: string, values: readonly T[]): T {
  const found = values.find((v) => v === raw);
  if (found === undefined) return invalid(`${where}: must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`);
  return found;
}

/** Node ids are positive integers (Raft's NONE = 0 means "no node"). */
export function checkNodeId(raw: unknown, where: string): number {
  return checkInt(raw, where, { min: 1 });
}

/** A list of distinct node ids, e.g. a replica set or a journal ensemble. */
export function checkNodeSet(raw: unknown, where: string, opts: { min?: number; max?: number } = {}): number[] {
  const ids = checkList(raw, where, checkNodeId, opts);
  if (new Set(ids).size !== ids.length) return invalid(`${where}: lists a node twice`);
  return ids;
}

export function checkList<T>(raw: unknown, where: string, item: (raw: unknown, where: string) => T, opts: { min?: number; max?: number } = {}): T[] {
  if (!Array.isArray(raw)) return invalid(`${where}: must be an array`);
  const items: readonly unknown[] = raw;
  if (opts.min !== undefined && items.length < opts.min) return invalid(`${where}: must have at least ${opts.min} item(s)`);
  if (opts.max !== undefined && items.length > opts.max) return invalid(`${where}: must have at most ${opts.max} items`);
  return items.map((v, i) => item(v, `${where}[${i}]`));
}

/**
 * A string-to-string map. Returned as a Map so a key such as "__proto__" is
 * plain data, never a prototype write.
 */
export function checkStrMap(raw: unknown, where: string, opts: { key?: StrOpts; value?: StrOpts; maxKeys?: number } = {}): Map<string, string> {
  if (!isPlainObject(raw)) return invalid(`${where}: must be an object of strings`);
  const entries = Object.entries(raw);
  if (opts.maxKeys !== undefined && entries.length > opts.maxKeys) return invalid(`${where}: must have at most ${opts.maxKeys} keys`);
  const out = new Map<string, string>();
  for (const [k, v] of entries) {
    checkStr(k, `${where} key ${JSON.stringify(k)}`, opts.key);
    out.set(k, checkStr(v, `${where}.${k}`, { min: 0, ...opts.value }));
  }
  return out;
}

/** Field access on an object that has already been checked to be a plain object. */
export class Fields {
  private constructor(
    private readonly o: Readonly<Record<string, unknown>>,
    readonly where: string,
  ) {}

  /** `where` prefixes every message, e.g. the command kind. */
  static of(raw: unknown, where: string): Fields {
    if (!isPlainObject(raw)) return invalid(`${where}: must be an object`);
    return new Fields(raw, where);
  }

  private at(key: string): string {
    return `${this.where}: '${key}'`;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.o, key) && this.o[key] !== undefined && this.o[key] !== null;
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.o, key) ? this.o[key] : undefined;
  }

  /** A nested object, read with the same helpers. */
  obj(key: string): Fields {
    return Fields.of(this.raw(key), this.at(key));
  }

  str(key: string, opts?: StrOpts): string {
    return checkStr(this.raw(key), this.at(key), opts);
  }

  optStr(key: string, opts?: StrOpts): string | undefined {
    return this.has(key) ? this.str(key, opts) : undefined;
  }

  int(key: string, opts?: IntOpts): number {
    return checkInt(this.raw(key), this.at(key), opts);
  }

  optInt(key: string, opts?: IntOpts): number | undefined {
    return this.has(key) ? this.int(key, opts) : undefined;
  }

  /** A proposer-stamped wall-clock time in milliseconds. */
  time(key: string): number {
    return this.int(key, { min: 0 });
  }

  bool(key: string): boolean {
    const v = this.raw(key);
    if (typeof v !== 'boolean') return invalid(`${this.at(key)}: must be true or false`);
    return v;
  }

  optBool(key: string): boolean | undefined {
    return this.has(key) ? this.bool(key) : undefined;
  }

  oneOf<T extends string | number>(key: string, values: readonly T[]): T {
    return checkOneOf(this.raw(key), this.at(key), values);
  }

  optOneOf<T extends string | number>(key: string, values: readonly T[]): T | undefined {
    return this.has(key) ? this.oneOf(key, values) : undefined;
  }

  nodeId(key: string): number {
    return checkNodeId(this.raw(key), this.at(key));
  }

  nodeSet(key: string, opts?: { min?: number; max?: number }): number[] {
    return checkNodeSet(this.raw(key), this.at(key), opts);
  }

  list<T>(key: string, item: (raw: unknown, where: string) => T, opts?: { min?: number; max?: number }): T[] {
    return checkList(this.raw(key), this.at(key), item, opts);
  }

  strList(key: string, opts?: { min?: number; max?: number; item?: StrOpts }): string[] {
    return this.list(key, (v, w) => checkStr(v, w, opts?.item), opts);
  }

  strMap(key: string, opts?: { key?: StrOpts; value?: StrOpts; maxKeys?: number }): Map<string, string> {
    return checkStrMap(this.raw(key), this.at(key), opts);
  }

  optStrMap(key: string, opts?: { key?: StrOpts; value?: StrOpts; maxKeys?: number }): Map<string, string> | undefined {
    return this.has(key) ? this.strMap(key, opts) : undefined;
  }
}
