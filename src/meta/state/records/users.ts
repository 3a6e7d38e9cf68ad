/**
 * Users (credentials for MQTT CONNECT, Kafka SASL, RocketMQ ACL) and ACL rules.
 * One record type because authorization needs both: a superuser bypasses rules.
 * Password hashes are produced by the proposer (hashing is slow and salted, so
 * it must not run inside apply) and stored exactly as given.
 */
import { sortedValues } from '../canonical.js';
import { Fields, checkList, invalid, type StrOpts } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput, type EventBase } from '../registry.js';
import { fail, ok } from '../result.js';
import { aclKey, authorizeRules, checkAclRule, type AclRule, type RequestOperation, type ResourceType } from './acl.js';

export const USERNAME: StrOpts = { max: 255, pattern: /^[^\s*]+$/, patternText: "without whitespace or '*'" };
const PASSWORD_HASH: StrOpts = { max: 1024 };

export interface UserRecord {
  readonly username: string;
  readonly passwordHash: string;
  readonly superuser: boolean;
}

export interface UserCreateCommand {
  readonly kind: 'user.create';
  readonly username: string;
  readonly passwordHash: string;
  readonly superuser?: boolean;
}

export interface UserDeleteCommand {
  readonly kind: 'user.delete';
  readonly username: string;
}

export type AclAddCommand = { readonly kind: 'acl.add' } & AclRule;
export type AclRemoveCommand = { readonly kind: 'acl.remove' } & AclRule;

export type UserCommand = UserCreateCommand | UserDeleteCommand | AclAddCommand | AclRemoveCommand;

export type UserEvent =
  | { readonly type: 'user.created'; readonly user: UserRecord }
  | { readonly type: 'user.deleted'; readonly user: UserRecord }
  | { readonly type: 'acl.added'; readonly rule: AclRule }
  | { readonly type: 'acl.removed'; readonly rule: AclRule };

const USER_EVENT_TYPES: ReadonlySet<string> = new Set<UserEvent['type']>(['user.created', 'user.deleted', 'acl.added', 'acl.removed']);

/** For record types that react to user changes (e.g. per-user quotas). */
export function isUserEvent(event: EventBase): event is UserEvent {
  return USER_EVENT_TYPES.has(event.type);
}

export interface UsersState {
  readonly users: Map<string, UserRecord>;
  /** keyed by aclKey(rule) */
  readonly acls: Map<string, AclRule>;
}

export interface AclFilter {
  principal?: string;
  resourceType?: ResourceType;
}

export interface UsersQuery {
  get(username: string): UserRecord | undefined;
  /** Sorted by username. */
  list(): UserRecord[];
  /** Rules in a stable order, optionally only those naming a principal or resource type. */
  acls(filter?: AclFilter): AclRule[];
  /** May `principal` do `operation` on the named resource? Superusers may do anything. */
  authorize(principal: string, resourceType: ResourceType, name: string, operation: RequestOperation): boolean;
}

const KINDS = ['user.create', 'user.delete', 'acl.add', 'acl.remove'] as const;

function validate(raw: unknown): UserCommand {
  const kind = Fields.of(raw, 'user command').oneOf('kind', KINDS);
  const f = Fields.of(raw, kind);
  switch (kind) {
    case 'user.create':
      return { kind, username: f.str('username', USERNAME), passwordHash: f.str('passwordHash', PASSWORD_HASH), superuser: f.optBool('superuser') ?? false };
    case 'user.delete':
      return { kind, username: f.str('username', USERNAME) };
    case 'acl.add':
    case 'acl.remove':
      return { kind, ...checkAclRule(raw, kind) };
  }
}

function apply(state: UsersState, cmd: UserCommand): ApplyOutput<UserEvent> {
  switch (cmd.kind) {
    case 'user.create': {
      if (state.users.has(cmd.username)) return { result: fail('already_exists', `user '${cmd.username}' already exists`), events: [] };
      const user: UserRecord = deepFreeze({ username: cmd.username, passwordHash: cmd.passwordHash, superuser: cmd.superuser ?? false });
      state.users.set(user.username, user);
      return { result: ok(), events: [{ type: 'user.created', user }] };
    }
    case 'user.delete': {
      // The user's ACL rules stay (Kafka does the same): re-creating the user restores its access.
      const user = state.users.get(cmd.username);
      if (!user) return { result: fail('not_found', `user '${cmd.username}' does not exist`), events: [] };
      state.users.delete(cmd.username);
      return { result: ok(), events: [{ type: 'user.deleted', user }] };
    }
    case 'acl.add': {
      const { kind: _kind, ...fields } = cmd;
      const rule: AclRule = deepFreeze(fields);
      const key = aclKey(rule);
      if (state.acls.has(key)) return { result: fail('already_exists', 'this ACL rule already exists'), events: [] };
      state.acls.set(key, rule);
      return { result: ok(rule), events: [{ type: 'acl.added', rule }] };
    }
    case 'acl.remove': {
      const { kind: _kind, ...fields } = cmd;
      const key = aclKey(fields);
      const rule = state.acls.get(key);
      if (!rule) return { result: fail('not_found', 'no such ACL rule'), events: [] };
      state.acls.delete(key);
      return { result: ok(rule), events: [{ type: 'acl.removed', rule }] };
    }
  }
}

function parseUser(raw: unknown, where: string): UserRecord {
  const f = Fields.of(raw, where);
  return deepFreeze({ username: f.str('username', USERNAME), passwordHash: f.str('passwordHash', PASSWORD_HASH), superuser: f.bool('superuser') });
}

export const usersRecord = defineRecord({
  name: 'users',
  commands: KINDS,
  initial: (): UsersState => ({ users: new Map(), acls: new Map() }),
  validate,
  apply,
  snapshot: (state: UsersState) => ({
    users: sortedValues(state.users).map((u) => ({ ...u })),
    acls: sortedValues(state.acls).map((r) => ({ ...r })),
  }),
  restore(json: unknown): UsersState {
    const f = Fields.of(json, 'users');
    const state: UsersState = { users: new Map(), acls: new Map() };
    for (const u of checkList(f.raw('users'), 'users.users', parseUser)) {
      if (state.users.has(u.username)) invalid(`users: '${u.username}' appears twice`);
      state.users.set(u.username, u);
    }
    for (const r of checkList(f.raw('acls'), 'users.acls', checkAclRule)) state.acls.set(aclKey(r), deepFreeze(r));
    return state;
  },
  query: (read: () => UsersState): UsersQuery => ({
    get: (username) => read().users.get(username),
    list: () => sortedValues(read().users),
    acls: (filter = {}) =>
      sortedValues(read().acls).filter(
        (r) => (filter.principal === undefined || r.principal === filter.principal) && (filter.resourceType === undefined || r.resourceType === filter.resourceType),
      ),
    authorize(principal, resourceType, name, operation) {
      if (read().users.get(principal)?.superuser === true) return true;
      return authorizeRules(read().acls.values(), principal, resourceType, name, operation);
    },
  }),
});
