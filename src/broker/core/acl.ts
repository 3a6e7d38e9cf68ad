/**
 * MQTT ACL: an ordered list of rules, evaluated top to bottom, the first rule
 * that matches decides (EMQX / mosquitto style). No matching rule gives
 * `undefined`, and the caller applies its configured default (allow or deny).
 *
 * A rule matches a request when:
 *  - its `action` is the request's or 'all';
 *  - its `user` / `clientId`, when set, equal the client's exactly;
 *  - its `topic` (an MQTT filter) covers the request's topic, after '%u' and
 *    '%c' are replaced by the username and client id. A rule using '%u' never
 *    matches a client without a username (or with an empty one), nor one whose
 *    substituted value contains '+', '#' or U+0000: a name must not smuggle a
 *    wildcard into a rule. A '/' in a name does add levels.
 *
 * Covering:
 *  - publish: the rule filter matches the topic name per MQTT (a leading '+'
 *    or '#' does not match a topic starting with '$').
 *  - subscribe: the requested filter is covered when it equals the expanded
 *    rule topic, or when the rule filter matches it taking its levels as
 *    literal text, except that a requested '+' level is only covered by a rule
 *    '+' or '#' and a requested '#' only by a rule '#' (so 'a/+' allows
 *    subscribing to 'a/x' and 'a/+' but not 'a/#'). A requested filter whose
 *    first level starts with '$' is not covered by a leading rule wildcard.
 *    '$share/<group>/<filter>' is checked by its inner filter.
 *
 * compileAclRules validates a rule list once and prepares it for the per-message
 * path (filter levels pre-split, placeholder rules marked); aclDecision accepts
 * either form.
 */
import { checkMqttFilter } from '../../meta/state/records/mqtt-topic.js';

export const MQTT_ACL_PERMISSIONS = ['allow', 'deny'] as const;
export const MQTT_ACL_ACTIONS = ['publish', 'subscribe', 'all'] as const;

export type MqttAclPermission = (typeof MQTT_ACL_PERMISSIONS)[number];
export type MqttAclAction = (typeof MQTT_ACL_ACTIONS)[number];

export interface MqttAclRule {
  permission: MqttAclPermission;
  action: MqttAclAction;
  topic: string;
  user?: string;
  clientId?: string;
}

export interface MqttAclRequest {
  action: 'publish' | 'subscribe';
  /** A topic name for publish, a topic filter (possibly '$share/...') for subscribe. */
  topic: string;
  username?: string;
  clientId: string;
}

export type MqttAclDecision = 'allow' | 'deny' | undefined;

/** A rule list failed validation; `index` is the position of the offending rule. */
export class MqttAclRuleError extends Error {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(`ACL rule ${index}: ${message}`);
    this.name = 'MqttAclRuleError';
  }
}

const PUBLISH = 1;
const SUBSCRIBE = 2;
const SHARE_PREFIX = '$share/';

interface CompiledRule {
  readonly allow: boolean;
  /** bit set of PUBLISH | SUBSCRIBE */
  readonly actions: number;
  readonly user: string | undefined;
  readonly clientId: string | undefined;
  /** The rule topic, unexpanded. */
  readonly topic: string;
  /** Pre-split levels when the topic has no placeholder. */
  readonly levels: readonly string[] | undefined;
  readonly usesUser: boolean;
  readonly usesClient: boolean;
}

/** A validated, prepared rule list. Immutable; compile a new one when rules change. */
export class CompiledMqttAcl {
  /** @internal use compileAclRules */
  constructor(
    readonly rules: readonly MqttAclRule[],
    private readonly compiled: readonly CompiledRule[],
  ) {}

  get size(): number {
    return this.compiled.length;
  }

  /** First matching rule's permission, or undefined when no rule matches. */
  decide(req: MqttAclRequest): MqttAclDecision {
    const i = this.firstMatch(req);
    return i < 0 ? undefined : (this.compiled[i] as CompiledRule).allow ? 'allow' : 'deny';
  }

  /** Index of the first matching rule, -1 if none (for logs and audit). */
  firstMatch(req: MqttAclRequest): number {
    const action = req.action === 'publish' ? PUBLISH : req.action === 'subscribe' ? SUBSCRIBE : 0;
    if (action === 0) return -1;
    let topic = req.topic;
    if (action === SUBSCRIBE && topic.startsWith(SHARE_PREFIX)) {
      const rest = topic.slice(SHARE_PREFIX.length);
      const slash = rest.indexOf('/');
      if (slash < 0) return -1;
      topic = rest.slice(slash + 1);
    }
    const reqLevels = topic.split('/');
    const dollar = topic.startsWith('$');
    const username = req.username === '' ? undefined : req.username;
    const clientId = req.clientId === '' ? undefined : req.clientId;
    const userOk = username !== undefined && safeSubstitute(username);
    const clientOk = clientId !== undefined && safeSubstitute(clientId);

    for (let i = 0; i < this.compiled.length; i++) {
      const r = this.compiled[i] as CompiledRule;
      if ((r.actions & action) === 0) continue;
      if (r.user !== undefined && r.user !== req.username) continue;
      if (r.clientId !== undefined && r.clientId !== req.clientId) continue;
      let levels = r.levels;
      let expanded = r.topic;
      if (levels === undefined) {
        if ((r.usesUser && !userOk) || (r.usesClient && !clientOk)) continue;
        expanded = expand(r.topic, username ?? '', clientId ?? '');
        levels = expanded.split('/');
      }
      const hit = action === PUBLISH ? publishMatches(levels, reqLevels, dollar) : expanded === topic || subscribeMatches(levels, reqLevels, dollar);
      if (hit) return i;
    }
    return -1;
  }
}

/** Validates and prepares rules; throws MqttAclRuleError naming the first bad rule. */
export function compileAclRules(rules: readonly MqttAclRule[]): CompiledMqttAcl {
  if (!Array.isArray(rules)) throw new MqttAclRuleError(-1, 'rules must be an array');
  const compiled: CompiledRule[] = [];
  const copies: MqttAclRule[] = [];
  rules.forEach((rule: unknown, index) => {
    const r = checkRule(rule, index);
    copies.push(Object.freeze(r));
    const usesUser = r.topic.includes('%u');
    const usesClient = r.topic.includes('%c');
    compiled.push({
      allow: r.permission === 'allow',
      actions: r.action === 'publish' ? PUBLISH : r.action === 'subscribe' ? SUBSCRIBE : PUBLISH | SUBSCRIBE,
      user: r.user,
      clientId: r.clientId,
      topic: r.topic,
      levels: usesUser || usesClient ? undefined : Object.freeze(r.topic.split('/')),
      usesUser,
      usesClient,
    });
  });
  return new CompiledMqttAcl(Object.freeze(copies), Object.freeze(compiled));
}

/**
 * The decision of an ordered rule list for one request. Pass a CompiledMqttAcl
 * on the hot path; a plain array is compiled on every call (and throws
 * MqttAclRuleError if invalid).
 */
export function aclDecision(rules: readonly MqttAclRule[] | CompiledMqttAcl, req: MqttAclRequest): MqttAclDecision {
  const acl = rules instanceof CompiledMqttAcl ? rules : compileAclRules(rules);
  return acl.decide(req);
}

function checkRule(raw: unknown, index: number): MqttAclRule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new MqttAclRuleError(index, 'must be an object');
  const o = raw as Record<string, unknown>;
  const permission = o['permission'];
  const action = o['action'];
  const topic = o['topic'];
  const user = o['user'];
  const clientId = o['clientId'];
  if (!MQTT_ACL_PERMISSIONS.includes(permission as MqttAclPermission)) {
    throw new MqttAclRuleError(index, `permission must be 'allow' or 'deny', got ${JSON.stringify(permission) ?? 'undefined'}`);
  }
  if (!MQTT_ACL_ACTIONS.includes(action as MqttAclAction)) {
    throw new MqttAclRuleError(index, `action must be 'publish', 'subscribe' or 'all', got ${JSON.stringify(action) ?? 'undefined'}`);
  }
  if (typeof topic !== 'string') throw new MqttAclRuleError(index, 'topic must be a string');
  if (topic.startsWith(SHARE_PREFIX)) throw new MqttAclRuleError(index, `topic must not be a shared subscription ('$share/...'); rules apply to the inner filter`);
  try {
    checkMqttFilter(topic, 'topic');
  } catch (err) {
    throw new MqttAclRuleError(index, err instanceof Error ? err.message : String(err));
  }
  const out: MqttAclRule = { permission: permission as MqttAclPermission, action: action as MqttAclAction, topic };
  if (user !== undefined && user !== null) {
    if (typeof user !== 'string' || user === '') throw new MqttAclRuleError(index, 'user must be a non-empty string');
    out.user = user;
  }
  if (clientId !== undefined && clientId !== null) {
    if (typeof clientId !== 'string' || clientId === '') throw new MqttAclRuleError(index, 'clientId must be a non-empty string');
    out.clientId = clientId;
  }
  return out;
}

/** A name substituted into a rule must not introduce wildcards. */
function safeSubstitute(value: string): boolean {
  return !value.includes('+') && !value.includes('#') && !value.includes('\u0000');
}

function expand(template: string, username: string, clientId: string): string {
  // One pass, so a username containing '%c' is not expanded again.
  return template.replace(/%[uc]/g, (m) => (m === '%u' ? username : clientId));
}

function publishMatches(rule: readonly string[], topic: readonly string[], dollar: boolean): boolean {
  if (dollar && (rule[0] === '+' || rule[0] === '#')) return false;
  for (let i = 0; i < rule.length; i++) {
    const level = rule[i];
    if (level === '#') return true; // 'a/#' also matches 'a'
    if (i >= topic.length) return false;
    if (level !== '+' && level !== topic[i]) return false;
  }
  return rule.length === topic.length;
}

function subscribeMatches(rule: readonly string[], filter: readonly string[], dollar: boolean): boolean {
  if (dollar && (rule[0] === '+' || rule[0] === '#')) return false;
  for (let i = 0; i < rule.length; i++) {
    const level = rule[i];
    if (level === '#') return true; // covers any remaining levels, including a requested '+' or '#'
    if (i >= filter.length) return false;
    const want = filter[i];
    if (want === '#') return false; // only a rule '#' covers a requested '#'
    if (level === '+') continue; // covers a literal level or a requested '+'
    if (want === '+' || level !== want) return false; // a literal covers only the same literal
  }
  return rule.length === filter.length;
}
