/**
 * Dynamic cluster-wide configuration: string keys to string values, changed at
 * run time (robust-ctl, admin API) and seen by every node through the watch
 * stream. Values stay strings: each consumer parses the keys it owns, so a new
 * setting needs no change here.
 */
import { objectFromMap, sortedEntries } from '../canonical.js';
import { Fields, checkStrMap, type StrOpts } from '../fields.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok } from '../result.js';

export const CONFIG_KEY: StrOpts = { max: 255, pattern: /^[a-zA-Z0-9._-]+$/, patternText: 'made of [a-zA-Z0-9._-]' };
const CONFIG_VALUE: StrOpts = { min: 0, max: 65_536 };

export interface ConfigSetCommand {
  readonly kind: 'config.set';
  readonly key: string;
  readonly value: string;
}

export interface ConfigUnsetCommand {
  readonly kind: 'config.unset';
  readonly key: string;
}

export type ConfigCommand = ConfigSetCommand | ConfigUnsetCommand;

/** `value` undefined = the key was unset. */
export interface ConfigEvent {
  readonly type: 'config.changed';
  readonly key: string;
  readonly value?: string;
  readonly previous?: string;
}

export type ConfigState = Map<string, string>;

export interface ConfigQuery {
  get(key: string): string | undefined;
  /** All keys and values in key order. */
  entries(): [string, string][];
}

function validate(raw: unknown): ConfigCommand {
  const kind = Fields.of(raw, 'config command').oneOf('kind', ['config.set', 'config.unset'] as const);
  const f = Fields.of(raw, kind);
  const key = f.str('key', CONFIG_KEY);
  return kind === 'config.set' ? { kind, key, value: f.str('value', CONFIG_VALUE) } : { kind, key };
}

function apply(config: ConfigState, cmd: ConfigCommand): ApplyOutput<ConfigEvent> {
  const previous = config.get(cmd.key);
  const was = previous !== undefined ? { previous } : {};
  if (cmd.kind === 'config.unset') {
    if (previous === undefined) return { result: fail('not_found', `config key '${cmd.key}' is not set`), events: [] };
    config.delete(cmd.key);
    return { result: ok(), events: [{ type: 'config.changed', key: cmd.key, ...was }] };
  }
  if (previous === cmd.value) return { result: ok(), events: [] };
  config.set(cmd.key, cmd.value);
  return { result: ok(), events: [{ type: 'config.changed', key: cmd.key, value: cmd.value, ...was }] };
}

export const clusterConfigRecord = defineRecord({
  name: 'config',
  commands: ['config.set', 'config.unset'],
  initial: (): ConfigState => new Map(),
  validate,
  apply,
  snapshot: (config: ConfigState) => objectFromMap(config),
  restore: (json: unknown): ConfigState => new Map(sortedEntries(checkStrMap(json, 'config', { key: CONFIG_KEY, value: CONFIG_VALUE }))),
  query: (read: () => ConfigState): ConfigQuery => ({
    get: (key) => read().get(key),
    entries: () => sortedEntries(read()),
  }),
});
