import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeRules, type AclRule } from '../../../src/meta/state/records/acl.js';
import { Harness } from './support.js';

const rule = (r: Partial<AclRule>): AclRule => ({
  principal: 'alice',
  resourceType: 'topic',
  pattern: 'orders',
  patternType: 'literal',
  operation: 'read',
  permission: 'allow',
  ...r,
});

describe('users', () => {
  it('creates and deletes users, storing the hash as given', () => {
    const h = new Harness();
    h.ok({ kind: 'user.create', username: 'alice', passwordHash: '$argon2id$v=19$abc' });
    h.ok({ kind: 'user.create', username: 'root', passwordHash: 'h', superuser: true });
    assert.deepEqual(h.view.users.get('alice'), { username: 'alice', passwordHash: '$argon2id$v=19$abc', superuser: false });
    assert.deepEqual(h.view.users.list().map((u) => u.username), ['alice', 'root']);
    h.fails({ kind: 'user.create', username: 'alice', passwordHash: 'x' }, 'already_exists');
    h.ok({ kind: 'user.delete', username: 'alice' });
    h.fails({ kind: 'user.delete', username: 'alice' }, 'not_found');
    assert.deepEqual(h.eventTypes(), ['user.created', 'user.created', 'user.deleted']);
  });

  it('validates user fields', () => {
    const h = new Harness();
    h.fails({ kind: 'user.create', username: '', passwordHash: 'x' }, 'invalid');
    h.fails({ kind: 'user.create', username: '*', passwordHash: 'x' }, 'invalid');
    h.fails({ kind: 'user.create', username: 'a b', passwordHash: 'x' }, 'invalid');
    h.fails({ kind: 'user.create', username: 'a', passwordHash: '' }, 'invalid');
    h.fails({ kind: 'user.create', username: 'a', passwordHash: 'x', superuser: 'yes' }, 'invalid');
  });
});

describe('ACL rules', () => {
  it('adds, lists and removes rules; duplicates and unknown rules are errors', () => {
    const h = new Harness();
    h.ok({ kind: 'acl.add', ...rule({}) });
    h.ok({ kind: 'acl.add', ...rule({ principal: 'bob', resourceType: 'group', pattern: 'g', operation: 'all' }) });
    h.fails({ kind: 'acl.add', ...rule({}) }, 'already_exists');
    assert.equal(h.view.users.acls().length, 2);
    assert.deepEqual(h.view.users.acls({ principal: 'bob' }).map((r) => r.resourceType), ['group']);
    assert.deepEqual(h.view.users.acls({ resourceType: 'topic' }).map((r) => r.principal), ['alice']);
    h.fails({ kind: 'acl.remove', ...rule({ permission: 'deny' }) }, 'not_found');
    h.ok({ kind: 'acl.remove', ...rule({}) });
    assert.equal(h.view.users.acls().length, 1);
    assert.deepEqual(h.eventTypes(), ['acl.added', 'acl.added', 'acl.removed']);
    h.fails({ kind: 'acl.add', ...rule({}), operation: 'publish' }, 'invalid');
    h.fails({ kind: 'acl.add', ...rule({}), patternType: 'regex' }, 'invalid');
    h.fails({ kind: 'acl.add', ...rule({}), resourceType: 'queue' }, 'invalid');
    h.fails({ kind: 'acl.add', ...rule({}), permission: undefined }, 'invalid');
  });

  it('authorizes: literal, wildcard, prefix, deny over allow, default deny', () => {
    const rules = [
      rule({ pattern: 'orders', operation: 'write' }),
      rule({ patternType: 'prefix', pattern: 'logs.', operation: 'all' }),
      rule({ patternType: 'prefix', pattern: 'logs.secret', operation: 'read', permission: 'deny' }),
      rule({ principal: '*', pattern: '*', operation: 'describe' }),
      rule({ principal: 'bob', pattern: '*', operation: 'all' }),
      rule({ principal: 'bob', pattern: 'payroll', operation: 'all', permission: 'deny' }),
    ];
    const can = (p: string, name: string, op: 'read' | 'write' | 'create' | 'delete' | 'describe'): boolean => authorizeRules(rules, p, 'topic', name, op);
    assert.equal(can('alice', 'orders', 'write'), true);
    assert.equal(can('alice', 'orders', 'read'), false, 'write does not imply read');
    assert.equal(can('alice', 'orders2', 'write'), false, 'literal is exact');
    assert.equal(can('alice', 'logs.app', 'delete'), true, "prefix with 'all'");
    assert.equal(can('alice', 'logs.secret.keys', 'read'), false, 'deny wins over a matching allow');
    assert.equal(can('alice', 'logs.secret.keys', 'write'), true, 'deny only covers its operation');
    assert.equal(can('carol', 'anything', 'describe'), true, "'*' principal and '*' literal pattern");
    assert.equal(can('carol', 'anything', 'read'), false, 'default deny');
    assert.equal(can('bob', 'x', 'create'), true);
    assert.equal(can('bob', 'payroll', 'describe'), false, "deny 'all' covers describe");
    assert.equal(authorizeRules(rules, 'bob', 'group', 'x', 'read'), false, 'resource types do not mix');
    assert.equal(authorizeRules([], 'alice', 'cluster', 'kafka-cluster', 'describe'), false);
  });

  it('lets an allow on read/write/create/delete imply describe, but never widens a deny', () => {
    const allowRead = [rule({ operation: 'read' })];
    assert.equal(authorizeRules(allowRead, 'alice', 'topic', 'orders', 'describe'), true);
    const denyRead = [rule({ principal: '*', pattern: '*', operation: 'describe' }), rule({ operation: 'read', permission: 'deny' })];
    assert.equal(authorizeRules(denyRead, 'alice', 'topic', 'orders', 'describe'), true);
  });

  it('authorizes through the view, superusers bypassing the rules', () => {
    const h = new Harness();
    h.ok({ kind: 'user.create', username: 'root', passwordHash: 'h', superuser: true });
    h.ok({ kind: 'acl.add', ...rule({ principal: '*', pattern: '*', operation: 'all', permission: 'deny' }) });
    h.ok({ kind: 'acl.add', ...rule({ operation: 'read' }) });
    assert.equal(h.view.users.authorize('root', 'cluster', 'kafka-cluster', 'create'), true);
    assert.equal(h.view.users.authorize('alice', 'topic', 'orders', 'read'), false, 'the catch-all deny wins');
    h.ok({ kind: 'acl.remove', ...rule({ principal: '*', pattern: '*', operation: 'all', permission: 'deny' }) });
    assert.equal(h.view.users.authorize('alice', 'topic', 'orders', 'read'), true);
  });
});
