/**
 * Kafka message schemas and their compiler. Each API's request and response is
 * written down once (requests/<api>.ts), field by field with the versions that
 * carry it, in the shape of Kafka's own message specs; `compileMessage(spec, v)`
 * turns that into one decoder/encoder pair per version, with the version's
 * choices (which fields exist, nullable or not, classic or compact "flexible"
 * encoding, tagged fields) made once at compile time, not per message.
 *
 * JS objects use the spec's field names in camelCase; int64 fields are bigint.
 */
import { KafkaDecodeError } from './errors.js';
import type { KafkaReader } from './reader.js';
import { KafkaWriter } from './writer.js';

export type Primitive = 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'float64' | 'bool' | 'string' | 'bytes' | 'records' | 'uuid';

export interface FieldSpec {
  /** camelCase key of the field in JS objects. */
  name: string;
  /** A primitive, `[]<primitive>` for arrays of it, `[]` for an array of structs, `{}` for a struct (both with `fields`). */
  type: Primitive | `[]${Primitive}` | '[]' | '{}';
  /** Versions carrying the field: '0+', '3-5', '7', 'none'. */
  versions: string;
  nullableVersions?: string;
  /** In flexible versions a field may travel in the tagged-field section instead. */
  tag?: number;
  taggedVersions?: string;
  /** Value when the field is absent from a version (and what a tagged field is left out for). */
  default?: string | number | boolean | null;
  fields?: FieldSpec[];
}

export interface MessageSpec {
  name: string;
  apiKey: number;
  type: 'request' | 'response';
  validVersions: string;
  flexibleVersions: string;
  fields: FieldSpec[];
}

export interface MessageCodec<T> {
  readonly version: number;
  readonly flexible: boolean;
  decode(r: KafkaReader): T;
  encode(w: KafkaWriter, value: T): void;
}

export interface VersionRange {
  min: number;
  max: number;
}

/** Parses '0+', '3-5', '7' or 'none'. */
export function parseVersions(spec: string): VersionRange | null {
  if (spec === 'none' || spec === '') return null;
  if (spec.endsWith('+')) return { min: Number(spec.slice(0, -1)), max: Number.MAX_SAFE_INTEGER };
  const dash = spec.indexOf('-');
  if (dash > 0) return { min: Number(spec.slice(0, dash)), max: Number(spec.slice(dash + 1)) };
  const v = Number(spec);
  return { min: v, max: v };
}

export function inVersions(spec: string | undefined, version: number): boolean {
  if (spec === undefined) return false;
  const r = parseVersions(spec);
  return r !== null && version >= r.min && version <= r.max;
}

interface Op {
  key: string;
  read(r: KafkaReader): unknown;
  write(w: KafkaWriter, v: unknown): void;
  defaultValue(): unknown;
}

type Obj = Record<string, unknown>;

function primitiveDefault(type: Primitive, nullable: boolean, def: FieldSpec['default']): unknown {
  if (def === null) return null;
  if (def === undefined && nullable && type !== 'string') return null;
  if (def === undefined) return zero(type);
  switch (type) {
    case 'int64':
      return BigInt(def as number | string);
    case 'bool':
      return def === true || def === 'true';
    case 'string':
      return String(def);
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'float64':
      return Number(def);
    default:
      return zero(type);
  }
}

function zero(type: Primitive): unknown {
  switch (type) {
    case 'int64':
      return 0n;
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'records':
      return null;
    case 'uuid':
      return Buffer.alloc(16);
    default:
      return 0;
  }
}

function primitiveOp(type: Primitive, nullable: boolean, flexible: boolean): Pick<Op, 'read' | 'write'> {
  switch (type) {
    case 'int8':
      return { read: (r) => r.int8(), write: (w, v) => w.int8(v as number) };
    case 'int16':
      return { read: (r) => r.int16(), write: (w, v) => w.int16(v as number) };
    case 'uint16':
      return { read: (r) => r.uint16(), write: (w, v) => w.uint16(v as number) };
    case 'int32':
      return { read: (r) => r.int32(), write: (w, v) => w.int32(v as number) };
    case 'uint32':
      return { read: (r) => r.uint32(), write: (w, v) => w.uint32(v as number) };
    case 'int64':
      return { read: (r) => r.int64(), write: (w, v) => w.int64(typeof v === 'bigint' ? v : BigInt(v as number)) };
    case 'float64':
      return { read: (r) => r.float64(), write: (w, v) => w.float64(v as number) };
    case 'bool':
      return { read: (r) => r.bool(), write: (w, v) => w.bool(v as boolean) };
    case 'uuid':
      return { read: (r) => r.uuid(), write: (w, v) => w.uuid(v as Buffer | null) };
    case 'string':
      if (flexible) return nullable ? { read: (r) => r.compactNullableString(), write: (w, v) => w.compactNullableString(v as string | null) } : { read: (r) => r.compactString(), write: (w, v) => w.compactString((v as string | undefined) ?? '') };
      return nullable ? { read: (r) => r.nullableString(), write: (w, v) => w.nullableString(v as string | null) } : { read: (r) => r.string(), write: (w, v) => w.string((v as string | undefined) ?? '') };
    case 'bytes':
    case 'records': {
      const isNullable = nullable || type === 'records';
      if (flexible) return isNullable ? { read: (r) => r.compactNullableBytes(), write: (w, v) => w.compactNullableBytes(v as Buffer | null) } : { read: (r) => r.compactBytes(), write: (w, v) => w.compactBytes((v as Buffer | undefined) ?? Buffer.alloc(0)) };
      return isNullable ? { read: (r) => r.nullableBytes(), write: (w, v) => w.nullableBytes(v as Buffer | null) } : { read: (r) => r.bytes(), write: (w, v) => w.bytes((v as Buffer | undefined) ?? Buffer.alloc(0)) };
    }
  }
}

function arrayOp(element: Pick<Op, 'read' | 'write'>, nullable: boolean, flexible: boolean, what: string): Pick<Op, 'read' | 'write'> {
  return {
    read(r) {
      const n = r.arrayLength(flexible);
      if (n < 0) {
        if (!nullable) throw new KafkaDecodeError(`${what}: null array where one is required`);
        return null;
      }
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = element.read(r);
      return out;
    },
    write(w, v) {
      const arr = v as unknown[] | null | undefined;
      if (arr === null || arr === undefined) {
        w.arrayLength(nullable ? null : 0, flexible);
        return;
      }
      w.arrayLength(arr.length, flexible);
      for (const x of arr) element.write(w, x);
    },
  };
}

interface CompiledStruct {
  read(r: KafkaReader): Obj;
  write(w: KafkaWriter, v: Obj): void;
}

function compileStruct(fields: FieldSpec[], version: number, flexible: boolean, path: string): CompiledStruct {
  const ops: Op[] = [];
  const tagged: Array<Op & { tag: number }> = [];
  const absent: Array<{ key: string; defaultValue(): unknown }> = [];
  for (const f of fields) {
    const where = `${path}.${f.name}`;
    const present = inVersions(f.versions, version);
    const nullable = inVersions(f.nullableVersions, version);
    let codec: Pick<Op, 'read' | 'write'>;
    let defaultValue: () => unknown;
    if (f.type === '[]' || f.type === '{}') {
      if (!f.fields) throw new Error(`schema ${where}: a ${f.type} field needs fields`);
      const inner = compileStruct(f.fields, version, flexible, where);
      const struct = { read: (r: KafkaReader) => inner.read(r), write: (w: KafkaWriter, v: unknown) => inner.write(w, (v as Obj | undefined) ?? {}) };
      if (f.type === '[]') {
        codec = arrayOp(struct, nullable, flexible, where);
        defaultValue = () => (nullable && f.default === null ? null : []);
      } else {
        codec = nullable
          ? {
              read: (r) => (r.int8() < 0 ? null : inner.read(r)),
              write: (w, v) => {
                if (v === null || v === undefined) w.int8(-1);
                else {
                  w.int8(1);
                  inner.write(w, v as Obj);
                }
              },
            }
          : struct;
        const fieldsOfStruct = f.fields;
        defaultValue = () => (nullable ? null : defaultsOf(fieldsOfStruct, version, flexible, where));
      }
    } else if (f.type.startsWith('[]')) {
      const elem = f.type.slice(2) as Primitive;
      codec = arrayOp(primitiveOp(elem, false, flexible), nullable, flexible, where);
      defaultValue = () => (nullable && f.default === null ? null : []);
    } else {
      const type = f.type as Primitive;
      codec = primitiveOp(type, nullable, flexible);
      const def = primitiveDefault(type, nullable, f.default);
      defaultValue = () => def;
    }
    if (!present) {
      absent.push({ key: f.name, defaultValue });
      continue;
    }
    const op: Op = { key: f.name, read: codec.read, write: codec.write, defaultValue };
    if (flexible && f.tag !== undefined && inVersions(f.taggedVersions, version)) tagged.push({ ...op, tag: f.tag });
    else ops.push(op);
  }
  tagged.sort((a, b) => a.tag - b.tag);
  const byTag = new Map(tagged.map((t) => [t.tag, t]));
  const scratch = new KafkaWriter(64);

  return {
    read(r) {
      const out: Obj = {};
      for (const op of ops) out[op.key] = op.read(r);
      for (const a of absent) out[a.key] = a.defaultValue();
      if (flexible) {
        for (const t of tagged) out[t.key] = t.defaultValue();
        r.taggedFields((tag, sub) => {
          const t = byTag.get(tag);
          if (t) out[t.key] = t.read(sub);
        });
      }
      return out;
    },
    write(w, v) {
      for (const op of ops) {
        const x = v[op.key];
        op.write(w, x === undefined ? op.defaultValue() : x);
      }
      if (!flexible) return;
      const present = tagged.filter((t) => v[t.key] !== undefined && !sameValue(v[t.key], t.defaultValue()));
      w.uvarint(present.length);
      for (const t of present) {
        scratch.reset();
        t.write(scratch, v[t.key]);
        w.uvarint(t.tag);
        w.uvarint(scratch.pos);
        w.raw(scratch.view());
      }
    },
  };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === 0 && b.length === 0;
  return a === b;
}

function defaultsOf(fields: FieldSpec[], version: number, flexible: boolean, path: string): Obj {
  const out: Obj = {};
  for (const f of fields) {
    if (f.type === '[]' || f.type.startsWith('[]')) out[f.name] = [];
    else if (f.type === '{}') out[f.name] = defaultsOf(f.fields ?? [], version, flexible, `${path}.${f.name}`);
    else out[f.name] = primitiveDefault(f.type as Primitive, inVersions(f.nullableVersions, version), f.default);
  }
  return out;
}

/** One version's decoder/encoder of a message. */
export function compileMessage<T>(spec: MessageSpec, version: number): MessageCodec<T> {
  if (!inVersions(spec.validVersions, version)) throw new Error(`${spec.name}: version ${version} is outside ${spec.validVersions}`);
  const flexible = inVersions(spec.flexibleVersions, version);
  const struct = compileStruct(spec.fields, version, flexible, spec.name);
  return {
    version,
    flexible,
    decode: (r) => struct.read(r) as T,
    encode: (w, value) => struct.write(w, value as Obj),
  };
}

/** Every version's codec of a message, indexed by version. */
export function compileAll<T>(spec: MessageSpec): Array<MessageCodec<T>> {
  const range = parseVersions(spec.validVersions);
  if (!range) throw new Error(`${spec.name}: no valid versions`);
  const out: Array<MessageCodec<T>> = [];
  for (let v = range.min; v <= range.max; v++) out[v] = compileMessage<T>(spec, v);
  return out;
}
