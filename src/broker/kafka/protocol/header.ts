/**
 * Request and response headers. Request header v1 (api key, version,
 * correlation id, client id) for classic versions, v2 (plus tagged fields) for
 * flexible ones; response header v0 (correlation id) or v1 (plus tagged
 * fields) — except ApiVersions, whose response header is always v0.
 */
import type { KafkaReader } from './reader.js';
import type { KafkaWriter } from './writer.js';

export const API_VERSIONS_KEY = 18;

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** The fixed first part, readable before we know whether the API version is flexible. */
export function readHeaderStart(r: KafkaReader): RequestHeader {
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  // Client id stays a classic nullable string even in header v2.
  const clientId = r.nullableString();
  return { apiKey, apiVersion, correlationId, clientId };
}

/** Header v2's tagged fields (none are defined that a broker must read). */
export function readHeaderTags(r: KafkaReader, flexible: boolean): void {
  if (flexible) r.taggedFields();
}

export function writeResponseHeader(w: KafkaWriter, correlationId: number, apiKey: number, flexible: boolean): void {
  w.int32(correlationId);
  if (flexible && apiKey !== API_VERSIONS_KEY) w.uvarint(0);
}
