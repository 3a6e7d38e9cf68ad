import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError, errorMessage } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { boundPorts } from './listeners.js';

export interface LoadedConfig {
  config: Config;
  /** The file read, or undefined when running on defaults. */
  file: string | undefined;
  /** Things worth a log line that are not errors (e.g. an unknown ROBUST_* variable). */
  warnings: string[];
}

type Kind = 'string' | 'number' | 'boolean' | 'string[]' | 'record';

interface EnvBinding {
  name: string;
  path: string[];
  kind: Kind;
}

/** Environment variables read by tools around the server, not by the config. */
const FOREIGN_ENV = new Set(['ROBUST_ADMIN']);

/** Peel defaults, optionals and refinements off a schema to find the type it holds. */
function baseType(schema: z.ZodType): z.ZodType {
  let s = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } };
  for (;;) {
    const def = s.def;
    if (def.innerType && (def.type === 'default' || def.type === 'prefault' || def.type === 'optional' || def.type === 'nullable')) {
      s = def.innerType as typeof s;
    } else if (def.type === 'pipe' && def.in) {
      s = def.in as typeof s;
    } else {
      return s;
    }
  }
}

function kindOf(schema: z.ZodType): Kind {
  const t = (baseType(schema) as z.ZodType & { def: { type: string } }).def.type;
  switch (t) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return 'string[]';
    case 'record':
      return 'record';
    default:
      return 'string';
  }
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  return (baseType(schema) as z.ZodType & { shape?: Record<string, z.ZodType> }).shape;
}

/** ROBUST_{KEY} for top-level keys, ROBUST_{SECTION}_{KEY} for keys of a section. */
function envBindings(): EnvBinding[] {
  const out: EnvBinding[] = [];
  const top = shapeOf(configSchema)!;
  for (const [key, schema] of Object.entries(top)) {
    const section = shapeOf(schema);
    if (section) {
      for (const [sub, subSchema] of Object.entries(section)) {
        out.push({ name: `ROBUST_${key}_${sub}`.toUpperCase(), path: [key, sub], kind: kindOf(subSchema) });
      }
    } else {
      out.push({ name: `ROBUST_${key}`.toUpperCase(), path: [key], kind: kindOf(schema) });
    }
  }
  return out;
}

const ENV_BINDINGS = envBindings();

/** Every configuration key as "section.key", for docs and the template test. */
export function allConfigKeys(): string[] {
  return ENV_BINDINGS.map((b) => b.path.join('.'));
}

function coerceEnv(binding: EnvBinding, raw: string): unknown {
  const text = raw.trim();
  switch (binding.kind) {
    case 'number':
      // Leave a non-number as the string so validation reports it with the key.
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return text;
    case 'string[]':
      if (text.startsWith('[')) return parseTomlValue(binding, text);
      return text === '' ? [] : text.split(',').map((s) => s.trim());
    case 'record':
      if (text.startsWith('{')) return parseTomlValue(binding, text);
      // "1=host:port,2=host:port"
      return Object.fromEntries(
        text
          .split(',')
          .filter((p) => p.trim() !== '')
          .map((pair) => {
            const eq = pair.indexOf('=');
            if (eq < 0) throw new ConfigError(`env ${binding.name}`, binding.path.join('.'), `expected "id=host:port,..." or a TOML inline table, got "${pair.trim()}"`);
            return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
          }),
      );
    default:
      return raw;
  }
}

function parseTomlValue(binding: EnvBinding, text: string): unknown {
  try {
    return parseToml(`v = ${text}`)['v'];
  } catch (err) {
    throw new ConfigError(`env ${binding.name}`, binding.path.join('.'), `not a valid TOML value: ${errorMessage(err).split('\n')[0]}`);
  }
}

function readTomlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(err);
    throw new ConfigError(file, undefined, `cannot read config file: ${why}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(`${file}:${err.line}:${err.column}`, undefined, `TOML syntax error: ${err.message.split('\n')[0]}`);
    }
    throw new ConfigError(file, undefined, `TOML syntax error: ${errorMessage(err)}`);
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_type': {
      const expected = issue.expected === 'int' ? 'an integer' : issue.expected === 'object' ? 'a table' : `a ${issue.expected}`;
      const got = issue.input === undefined ? '' : `, got ${JSON.stringify(issue.input)}`;
      return `expected ${expected}${got}`;
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
    case 'too_small':
      return issue.origin === 'array' ? issue.message : `must be >= ${issue.minimum}, got ${JSON.stringify(issue.input)}`;
    case 'too_big':
      return `must be <= ${issue.maximum}, got ${JSON.stringify(issue.input)}`;
    default:
      return issue.message;
  }
}

function issueToError(issue: z.core.$ZodIssue, source: string, envPaths: Map<string, string>): ConfigError {
  const path = [...issue.path];
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]!);
  const key = formatPath(path);
  // Name the environment variable when that is where the bad value came from.
  const dotted = path.filter((p) => typeof p === 'string').join('.');
  for (const [envPath, envName] of envPaths) {
    if (dotted === envPath || dotted.startsWith(`${envPath}.`)) {
      return new ConfigError(`env ${envName}`, key, describeIssue(issue));
    }
  }
  return new ConfigError(source, key, describeIssue(issue));
}

/**
 * Build the node's configuration: defaults, overlaid by the file (if any), overlaid
 * by ROBUST_* environment variables. Throws ConfigError naming the file (or env
 * variable) and the key on the first problem found.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const source = file ?? '(defaults)';
  const raw: Record<string, unknown> = file ? readTomlFile(file) : {};
  const warnings: string[] = [];
  const envPaths = new Map<string, string>();

  const known = new Set(ENV_BINDINGS.map((b) => b.name));
  for (const name of Object.keys(env)) {
    if (name.startsWith('ROBUST_') && !known.has(name) && !FOREIGN_ENV.has(name)) {
      warnings.push(`environment variable ${name} is not a configuration key and was ignored`);
    }
  }
  for (const binding of ENV_BINDINGS) {
    const value = env[binding.name];
    if (value === undefined) continue;
    let target = raw;
    for (const part of binding.path.slice(0, -1)) {
      const next = target[part];
      if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) target[part] = {};
      target = target[part] as Record<string, unknown>;
    }
    target[binding.path.at(-1)!] = coerceEnv(binding, value);
    envPaths.set(binding.path.join('.'), binding.name);
  }

  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const first = issueToError(issues[0]!, source, envPaths);
    if (issues.length > 1) {
      throw new ConfigError(first.source, first.key, `${first.detail} (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})`);
    }
    throw first;
  }
  const config = parsed.data;
  checkPortClashes(config, source, envPaths);
  return { config, file, warnings };
}

function checkPortClashes(config: Config, source: string, envPaths: Map<string, string>): void {
  const seen = new Map<number, string>();
  for (const l of boundPorts(config)) {
    const other = seen.get(l.port);
    if (other !== undefined) {
      const envName = envPaths.get(l.key);
      throw new ConfigError(envName ? `env ${envName}` : source, l.key, `port ${l.port} is also used by ${other}`);
    }
    seen.set(l.port, l.key);
  }
}
