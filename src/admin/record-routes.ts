import { RobustError } from '../common/errors.js';
import { HttpError, type HttpServer } from './http-server.js';
import { readJsonBody } from './meta-routes.js';

/** A record as the admin API shows it: text fields are UTF-8, offsets decimal strings. */
export interface RecordView {
  offset: bigint;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  tag?: string;
}

export interface RecordInput {
  key?: string | null;
  value: string | null;
  headers?: Record<string, string>;
  tag?: string;
}

/** Produce and read records by hand (like RocketMQ's mqadmin sendMessage / queryMsgByOffset). */
export interface RecordsAdmin {
  append(topic: string, shard: number, records: RecordInput[]): Promise<{ baseOffset: bigint }>;
  read(topic: string, shard: number, from: bigint, max: number): Promise<RecordView[]>;
}

const STATUS_BY_CODE: Record<string, number> = {
  shard_not_found: 404,
  not_found: 404,
  offset_out_of_range: 416,
  record_too_large: 413,
  storage_full: 507,
  storage_io: 500,
  engine_unavailable: 503,
  storage_closed: 503,
};

async function storageCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RobustError && !(err instanceof HttpError) && err.code in STATUS_BY_CODE) throw new HttpError(STATUS_BY_CODE[err.code]!, err.code, err.message);
    throw err;
  }
}

function shardParam(raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, 'invalid', `shard must be an integer >= 0, got "${raw}"`);
  return n;
}

function parseRecords(body: Record<string, unknown>): RecordInput[] {
  const raw = body['records'];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 10_000) throw new HttpError(400, 'invalid', '"records" must be an array of 1..10000 records');
  return raw.map((r: unknown, i): RecordInput => {
    if (r === null || typeof r !== 'object') throw new HttpError(400, 'invalid', `records[${i}] must be an object`);
    const o = r as Record<string, unknown>;
    const str = (k: string, nullable: boolean) => {
      const v = o[k];
      if (v === undefined || (nullable && v === null) || typeof v === 'string') return v as string | null | undefined;
      throw new HttpError(400, 'invalid', `records[${i}].${k} must be a string${nullable ? ' or null' : ''}`);
    };
    const headers = o['headers'];
    if (headers !== undefined && (headers === null || typeof headers !== 'object' || Object.values(headers).some((v) => typeof v !== 'string'))) {
      throw new HttpError(400, 'invalid', `records[${i}].headers must be an object of strings`);
    }
    const value = str('value', true);
    return {
      value: value ?? null,
      ...(o['key'] !== undefined ? { key: str('key', true) ?? null } : {}),
      ...(headers !== undefined ? { headers: headers as Record<string, string> } : {}),
      ...(o['tag'] !== undefined ? { tag: str('tag', false) as string } : {}),
    };
  });
}

export function addRecordRoutes(http: HttpServer, admin: RecordsAdmin): void {
  http.route('POST', '/api/v1/topics/:name/shards/:shard/records', async ({ req, params }) => {
    const records = parseRecords(await readJsonBody(req));
    const { baseOffset } = await storageCall(() => admin.append(params['name'] ?? '', shardParam(params['shard']), records));
    return { status: 201, body: { base_offset: baseOffset, count: records.length } };
  });

  http.route('GET', '/api/v1/topics/:name/shards/:shard/records', async ({ params, query }) => {
    const fromRaw = query.get('from') ?? '0';
    if (!/^\d+$/.test(fromRaw)) throw new HttpError(400, 'invalid', `"from" must be an offset (a non-negative integer), got "${fromRaw}"`);
    const max = Number(query.get('max') ?? '100');
    if (!Number.isInteger(max) || max < 1 || max > 10_000) throw new HttpError(400, 'invalid', '"max" must be 1..10000');
    const records = await storageCall(() => admin.read(params['name'] ?? '', shardParam(params['shard']), BigInt(fromRaw), max));
    return { body: { records } };
  });
}
