/**
 * The effective configuration as the admin API shows it: every key with its value
 * after defaults, files and ROBUST_* variables, except secrets, which are replaced by
 * a marker (their presence still shows). Paths to key files are not secrets.
 */
import type { Config } from './schema.js';

export const REDACTED = '<redacted>';

/** Keys whose values are secrets wherever they appear. */
const SECRET_KEY = /(^|_)(secret|password|token)$/;

export function redactConfig(config: Config): Record<string, unknown> {
  return redact(config) as Record<string, unknown>;
}

function redact(v: unknown, key = ''): unknown {
  if (SECRET_KEY.test(key) && v !== undefined && v !== null && v !== '') return REDACTED;
  if (Array.isArray(v)) return v.map((x) => redact(x));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = redact(x, k);
    return out;
  }
  return v;
}
