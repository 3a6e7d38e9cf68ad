/**
 * ACL rules and the pure authorization decision, separate from the record type
 * that stores them so brokers can run the same `authorize` over a cached rule
 * list without a state machine.
 *
 * Semantics (Kafka's, simplified):
 *  - principal: a username, or '*' for every principal.
 *  - pattern: 'literal' matches the name exactly ('*' as a literal matches every
 *    name); 'prefix' matches names that start with it.
 *  - operation 'all' in a rule covers every operation; a rule allowing read,
 *    write, create or delete also allows 'describe' (a client that may use a
 *    resource may see it). Implication only widens allows, never denies.
 *  - any matching deny wins over any allow; no matching allow means deny.
 *  - superusers are allowed everything (decided by the caller, which knows them).
 */
import { Fields, type StrOpts } from '../fields.js';

export const RESOURCE_TYPES = ['topic', 'group', 'cluster'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];
export const PATTERN_TYPES = ['literal', 'prefix'] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];
export const OPERATIONS = ['read', 'write', 'create', 'delete', 'describe', 'all'] as const;
export type AclOperation = (typeof OPERATIONS)[number];
/** What a request asks to do: any operation except the rule-only wildcard 'all'. */
export type RequestOperation = Exclude<AclOperation, 'all'>;
export const PERMISSIONS = ['allow', 'deny'] as const;
export type AclPermission = (typeof PERMISSIONS)[number];

export const WILDCARD = '*';

export interface AclRule {
  readonly principal: string;
  readonly resourceType: ResourceType;
  readonly pattern: string;
  readonly patternType: PatternType;
  readonly operation: AclOperation;
  readonly permission: AclPermission;
}

export const PRINCIPAL: StrOpts = { max: 255 };
const PATTERN: StrOpts = { max: 255 };

/** Reads the six rule fields; used for commands and for snapshot entries alike. */
export function checkAclRule(raw: unknown, where: string): AclRule {
  const f = Fields.of(raw, where);
  return {
    principal: f.str('principal', PRINCIPAL),
    resourceType: f.oneOf('resourceType', RESOURCE_TYPES),
    pattern: f.str('pattern', PATTERN),
    patternType: f.oneOf('patternType', PATTERN_TYPES),
    operation: f.oneOf('operation', OPERATIONS),
    permission: f.oneOf('permission', PERMISSIONS),
  };
}

/** Identity of a rule: two rules with equal fields are the same rule. */
export function aclKey(rule: AclRule): string {
  return JSON.stringify([rule.principal, rule.resourceType, rule.patternType, rule.pattern, rule.operation, rule.permission]);
}

const IMPLIES_DESCRIBE: ReadonlySet<AclOperation> = new Set<AclOperation>(['read', 'write', 'create', 'delete']);

function operationMatches(rule: AclRule, operation: RequestOperation): boolean {
  if (rule.operation === 'all' || rule.operation === operation) return true;
  return rule.permission === 'allow' && operation === 'describe' && IMPLIES_DESCRIBE.has(rule.operation);
}

function resourceMatches(rule: AclRule, name: string): boolean {
  if (rule.patternType === 'prefix') return name.startsWith(rule.pattern);
  return rule.pattern === WILDCARD || rule.pattern === name;
}

export function ruleMatches(rule: AclRule, principal: string, resourceType: ResourceType, name: string, operation: RequestOperation): boolean {
  return (
    (rule.principal === WILDCARD || rule.principal === principal) &&
    rule.resourceType === resourceType &&
    resourceMatches(rule, name) &&
    operationMatches(rule, operation)
  );
}

/** Deny over allow, default deny. */
export function authorizeRules(rules: Iterable<AclRule>, principal: string, resourceType: ResourceType, name: string, operation: RequestOperation): boolean {
  let allowed = false;
  for (const rule of rules) {
    if (!ruleMatches(rule, principal, resourceType, name, operation)) continue;
    if (rule.permission === 'deny') return false;
    allowed = true;
  }
  return allowed;
}
