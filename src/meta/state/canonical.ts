/**
 * One deterministic ordering for everything the state machine hands out.
 * Snapshots must be byte-identical on every node, and a machine restored from a
 * snapshot must list things in the same order as the one that wrote it, so keys
 * are ordered by code unit (never localeCompare: that depends on the host's ICU
 * and locale) and JSON object keys are sorted when serialising.
 */

/** JSON-safe values; `undefined` object members are allowed and dropped on output, like JSON.stringify. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json | undefined };

/** Code-unit order: the same on every host. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareNumbers(a: number, b: number): number {
  return a - b;
}

/** The values of a map in key order. */
export function sortedValues<K extends string | number, V>(map: ReadonlyMap<K, V>): V[] {
  return sortedEntries(map).map(([, v]) => v);
}

export function sortedEntries<K extends string | number, V>(map: ReadonlyMap<K, V>): [K, V][] {
  return [...map.entries()].sort(([a], [b]) => (typeof a === 'number' && typeof b === 'number' ? a - b : compareStrings(String(a), String(b))));
}

/** A plain object built from a map in key order; own data properties only, so "__proto__" stays data. */
export function objectFromMap(map: ReadonlyMap<string, string>): Record<string, string> {
  return Object.fromEntries(sortedEntries(map));
}

/** JSON with object keys sorted at every level; `undefined` members are dropped like JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v: unknown) => (v === undefined ? null : sortKeys(v)));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => compareStrings(a, b));
    // defineProperty, not assignment: a key named "__proto__" must stay a key.
    for (const [k, v] of entries) Object.defineProperty(out, k, { value: sortKeys(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}
