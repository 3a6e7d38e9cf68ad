/**
 * The wire form of a command in a Raft entry: UTF-8 JSON of `{ kind, ...fields }`.
 * JSON because entries are small, debuggable with any log dump tool, and a new
 * record type needs no schema registration; the envelope only promises `kind`,
 * the owning record type validates the rest.
 */
import { isPlainObject } from './fields.js';
import type { CommandBase } from './registry.js';
import { fail, type ApplyResult } from './result.js';

const encoder = new TextEncoder();
// fatal: bytes that are not UTF-8 are rejected rather than silently replaced with U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Generic so a record type outside the default list encodes its own typed commands. */
export function encodeEnvelope<C extends CommandBase>(cmd: C): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export type DecodedEnvelope = { ok: true; kind: string; raw: Readonly<Record<string, unknown>> } | { ok: false; error: ApplyResult };

/** Never throws: any bytes yield either an envelope or an 'invalid' result. */
export function decodeEnvelope(data: Uint8Array): DecodedEnvelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, error: fail('invalid', `undecodable command (${data.length} bytes): ${why}`) };
  }
  if (!isPlainObject(parsed)) return { ok: false, error: fail('invalid', 'command must be a JSON object') };
  const kind = parsed['kind'];
  if (typeof kind !== 'string' || kind === '') return { ok: false, error: fail('invalid', "command has no 'kind' string") };
  return { ok: true, kind, raw: parsed };
}
