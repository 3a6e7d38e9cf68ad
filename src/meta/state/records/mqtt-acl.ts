/**
 * MQTT ACL rules: one ordered list, evaluated top to bottom by brokers (first
 * match wins; see src/broker/core/acl.ts for the semantics). Order is the
 * point of this record, so rules live in a list, not a keyed map.
 *
 * Every rule gets an id from a counter kept in state (`nextId`), so ids are the
 * same on every replica and survive snapshots; an id is never reused.
 *
 *   mqtt.acl.add      { permission, action, topic, user?, clientId?, position? }
 *                     inserts at `position` (0-based; default: append); the
 *                     result value is the stored rule, with its `id`.
 *   mqtt.acl.remove   { id }
 *   mqtt.acl.replace  { rules }   the whole list (config sync); fresh ids. A
 *                     replace with the rules already in place changes nothing
 *                     and emits no event, so syncing from config at every start
 *                     is cheap and keeps ids stable.
 *
 * Field checks mirror the broker's compileAclRules (meta must not import the
 * broker), using the meta field readers.
 */
import { Fields, checkList, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok } from '../result.js';
import { checkMqttFilter } from './mqtt-topic.js';

export const MQTT_ACL_PERMISSIONS = ['allow', 'deny'] as const;
export const MQTT_ACL_ACTIONS = ['publish', 'subscribe', 'all'] as const;
/** Upper bound on the list; rules are evaluated per publish. */
export const MAX_MQTT_ACL_RULES = 10_000;

const USER: StrOpts = { max: 65_535 };
const CLIENT_ID: StrOpts = { max: 65_535 };

/** A rule as stored: the broker's MqttAclRule plus its id. Optional fields are absent, never undefined. */
export interface MqttAclEntry {
  readonly id: number;
  readonly permission: (typeof MQTT_ACL_PERMISSIONS)[number];
  readonly action: (typeof MQTT_ACL_ACTIONS)[number];
  readonly topic: string;
  readonly user?: string;
  readonly clientId?: string;
}

export type MqttAclRuleFields = Omit<MqttAclEntry, 'id'>;

export type MqttAclAddCommand = { readonly kind: 'mqtt.acl.add'; readonly position?: number } & MqttAclRuleFields;

export interface MqttAclRemoveCommand {
  readonly kind: 'mqtt.acl.remove';
  readonly id: number;
}

export interface MqttAclReplaceCommand {
  readonly kind: 'mqtt.acl.replace';
  readonly rules: readonly MqttAclRuleFields[];
}

export type MqttAclCommand = MqttAclAddCommand | MqttAclRemoveCommand | MqttAclReplaceCommand;

export type MqttAclEvent =
  | { readonly type: 'mqtt.acl.added'; readonly rule: MqttAclEntry; readonly position: number }
  | { readonly type: 'mqtt.acl.removed'; readonly rule: MqttAclEntry; readonly position: number }
  | { readonly type: 'mqtt.acl.replaced'; readonly rules: readonly MqttAclEntry[]; readonly previous: readonly MqttAclEntry[] };

export interface MqttAclState {
  /** The id the next added rule gets. */
  nextId: number;
  /** In evaluation order. */
  rules: MqttAclEntry[];
}

export interface MqttAclQuery {
  /** Rules in evaluation order. */
  list(): MqttAclEntry[];
  get(id: number): MqttAclEntry | undefined;
  count(): number;
}

const KINDS = ['mqtt.acl.add', 'mqtt.acl.remove', 'mqtt.acl.replace'] as const;

/** Reads the rule fields (command or snapshot entry); drops unknown keys. */
export function checkMqttAclRule(raw: unknown, where: string): MqttAclRuleFields {
  const f = Fields.of(raw, where);
  const permission = f.oneOf('permission', MQTT_ACL_PERMISSIONS);
  const action = f.oneOf('action', MQTT_ACL_ACTIONS);
  const topic = checkMqttFilter(f.raw('topic'), `${where}: 'topic'`);
  if (topic.startsWith('$share/')) invalid(`${where}: 'topic': must not be a shared subscription; rules apply to the inner filter`);
  const user = f.optStr('user', USER);
  const clientId = f.optStr('clientId', CLIENT_ID);
  return {
    permission,
    action,
    topic,
    ...(user !== undefined ? { user } : {}),
    ...(clientId !== undefined ? { clientId } : {}),
  };
}

function validate(raw: unknown): MqttAclCommand {
  const kind = Fields.of(raw, 'mqtt acl command').oneOf('kind', KINDS);
  const f = Fields.of(raw, kind);
  switch (kind) {
    case 'mqtt.acl.add': {
      const position = f.optInt('position', { min: 0, max: MAX_MQTT_ACL_RULES });
      return { kind, ...checkMqttAclRule(raw, kind), ...(position !== undefined ? { position } : {}) };
    }
    case 'mqtt.acl.remove':
      return { kind, id: f.int('id', { min: 1 }) };
    case 'mqtt.acl.replace':
      return { kind, rules: f.list('rules', checkMqttAclRule, { max: MAX_MQTT_ACL_RULES }) };
  }
}

function sameRule(a: MqttAclRuleFields, b: MqttAclRuleFields): boolean {
  return a.permission === b.permission && a.action === b.action && a.topic === b.topic && a.user === b.user && a.clientId === b.clientId;
}

function entry(id: number, fields: MqttAclRuleFields): MqttAclEntry {
  return deepFreeze({ id, ...fields });
}

function apply(state: MqttAclState, cmd: MqttAclCommand): ApplyOutput<MqttAclEvent> {
  switch (cmd.kind) {
    case 'mqtt.acl.add': {
      const { kind: _kind, position: requested, ...fields } = cmd;
      const position = requested ?? state.rules.length;
      if (position > state.rules.length) {
        return { result: fail('invalid', `mqtt.acl.add: 'position' ${position} is beyond the end of the list (${state.rules.length} rules)`), events: [] };
      }
      if (state.rules.length >= MAX_MQTT_ACL_RULES) return { result: fail('conflict', `the MQTT ACL already holds the maximum of ${MAX_MQTT_ACL_RULES} rules`), events: [] };
      const rule = entry(state.nextId, fields);
      state.nextId += 1;
      state.rules.splice(position, 0, rule);
      return { result: ok(rule), events: [{ type: 'mqtt.acl.added', rule, position }] };
    }
    case 'mqtt.acl.remove': {
      const position = state.rules.findIndex((r) => r.id === cmd.id);
      const rule = state.rules[position];
      if (!rule) return { result: fail('not_found', `no MQTT ACL rule with id ${cmd.id}`), events: [] };
      state.rules.splice(position, 1);
      return { result: ok(rule), events: [{ type: 'mqtt.acl.removed', rule, position }] };
    }
    case 'mqtt.acl.replace': {
      const previous = state.rules;
      if (previous.length === cmd.rules.length && previous.every((r, i) => sameRule(r, cmd.rules[i] as MqttAclRuleFields))) {
        return { result: ok(previous.slice()), events: [] };
      }
      const rules = cmd.rules.map((fields, i) => entry(state.nextId + i, fields));
      state.nextId += rules.length;
      state.rules = rules;
      return { result: ok(rules.slice()), events: [{ type: 'mqtt.acl.replaced', rules: Object.freeze(rules.slice()), previous: Object.freeze(previous) }] };
    }
  }
}

function parseEntry(raw: unknown, where: string): MqttAclEntry {
  const id = Fields.of(raw, where).int('id', { min: 1 });
  return entry(id, checkMqttAclRule(raw, where));
}

export const mqttAclRecord = defineRecord({
  name: 'mqttAcl',
  commands: KINDS,
  initial: (): MqttAclState => ({ nextId: 1, rules: [] }),
  validate,
  apply,
  snapshot: (state: MqttAclState) => ({ nextId: state.nextId, rules: state.rules.map((r) => ({ ...r })) }),
  restore(json: unknown): MqttAclState {
    const f = Fields.of(json, 'mqttAcl');
    const nextId = f.int('nextId', { min: 1 });
    const rules = checkList(f.raw('rules'), 'mqttAcl.rules', parseEntry, { max: MAX_MQTT_ACL_RULES });
    const seen = new Set<number>();
    for (const r of rules) {
      if (seen.has(r.id)) invalid(`mqttAcl: rule id ${r.id} appears twice`);
      if (r.id >= nextId) invalid(`mqttAcl: rule id ${r.id} is not below nextId ${nextId}`);
      seen.add(r.id);
    }
    return { nextId, rules };
  },
  query: (read: () => MqttAclState): MqttAclQuery => ({
    list: () => read().rules.slice(),
    get: (id) => read().rules.find((r) => r.id === id),
    count: () => read().rules.length,
  }),
});
