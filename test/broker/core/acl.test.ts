import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MqttAclRuleError, aclDecision, compileAclRules, type MqttAclRequest, type MqttAclRule } from '../../../src/broker/core/acl.js';
import { mqttFilterMatches } from '../../../src/meta/state/records/mqtt-topic.js';

const allow = (topic: string, action: MqttAclRule['action'] = 'all', extra: Partial<MqttAclRule> = {}): MqttAclRule => ({ permission: 'allow', action, topic, ...extra });
const deny = (topic: string, action: MqttAclRule['action'] = 'all', extra: Partial<MqttAclRule> = {}): MqttAclRule => ({ permission: 'deny', action, topic, ...extra });

const pub = (topic: string, who: Partial<MqttAclRequest> = {}): MqttAclRequest => ({ action: 'publish', topic, clientId: 'c1', username: 'alice', ...who });
const sub = (topic: string, who: Partial<MqttAclRequest> = {}): MqttAclRequest => ({ action: 'subscribe', topic, clientId: 'c1', username: 'alice', ...who });

describe('MQTT ACL', () => {
  it('evaluates in order: the first matching rule decides; none matching is undefined', () => {
    const rules = compileAclRules([deny('secret/#'), allow('#'), deny('anything')]);
    assert.equal(rules.decide(pub('secret/x')), 'deny');
    assert.equal(rules.decide(pub('secret')), 'deny', "'secret/#' covers its parent");
    assert.equal(rules.decide(pub('anything')), 'allow', 'a later rule never overrides an earlier match');
    assert.equal(rules.firstMatch(pub('open/x')), 1);
    const reversed = compileAclRules([allow('#'), deny('secret/#')]);
    assert.equal(reversed.decide(pub('secret/x')), 'allow');
    assert.equal(aclDecision([allow('a/b')], pub('a/c')), undefined);
    assert.equal(aclDecision([], pub('a')), undefined);
    assert.equal(aclDecision(rules, pub('secret/y')), 'deny', 'aclDecision takes a compiled list too');
  });

  it('separates publish and subscribe rules', () => {
    const rules = compileAclRules([allow('sensors/#', 'publish'), deny('sensors/#', 'subscribe'), allow('cmd/#', 'subscribe'), deny('#', 'publish')]);
    assert.equal(rules.decide(pub('sensors/t1')), 'allow');
    assert.equal(rules.decide(sub('sensors/t1')), 'deny');
    assert.equal(rules.decide(sub('cmd/x')), 'allow');
    assert.equal(rules.decide(pub('cmd/x')), 'deny');
    assert.equal(rules.decide(sub('other')), undefined);
  });

  it('restricts rules to a user or a client id', () => {
    const rules = compileAclRules([allow('admin/#', 'all', { user: 'root' }), allow('dev/#', 'all', { clientId: 'dev-1' }), deny('#')]);
    assert.equal(rules.decide(pub('admin/reboot', { username: 'root' })), 'allow');
    assert.equal(rules.decide(pub('admin/reboot', { username: 'alice' })), 'deny');
    assert.equal(rules.decide(pub('admin/reboot', { username: undefined })), 'deny');
    assert.equal(rules.decide(pub('dev/x', { clientId: 'dev-1' })), 'allow');
    assert.equal(rules.decide(pub('dev/x', { clientId: 'dev-2' })), 'deny');
  });

  it('expands %u and %c; a %u rule never matches a client without a username', () => {
    const rules = compileAclRules([allow('users/%u/#'), allow('clients/%c/+', 'publish'), allow('mix/%u-%c'), deny('#')]);
    assert.equal(rules.decide(pub('users/alice/inbox')), 'allow');
    assert.equal(rules.decide(pub('users/bob/inbox')), 'deny');
    assert.equal(rules.decide(sub('users/alice/#')), 'allow');
    assert.equal(rules.decide(pub('users//inbox', { username: undefined })), 'deny');
    assert.equal(rules.decide(pub('users//inbox', { username: '' })), 'deny', 'an empty username is no username');
    assert.equal(rules.decide(pub('users/%u/inbox', { username: undefined })), 'deny', 'the placeholder is never literal');
    assert.equal(rules.decide(pub('clients/c1/status')), 'allow');
    assert.equal(rules.decide(pub('clients/c2/status')), 'deny');
    assert.equal(rules.decide(pub('mix/alice-c1')), 'allow');
    assert.equal(rules.decide(pub('users/org/alice/x', { username: 'org/alice' })), 'allow', "a '/' in a name adds levels");
  });

  it('never lets a name inject wildcards into a rule', () => {
    const rules = compileAclRules([allow('users/%u/#'), allow('box/%c'), deny('#')]);
    assert.equal(rules.decide(sub('users/#', { username: '#' })), 'deny');
    assert.equal(rules.decide(sub('users/+/#', { username: '+' })), 'deny');
    assert.equal(rules.decide(pub('users/x/y', { username: '+' })), 'deny');
    assert.equal(rules.decide(sub('box/+', { clientId: '+' })), 'deny');
    assert.equal(rules.decide(pub('users/%c/x', { username: '%c', clientId: 'zz' })), 'allow', 'substitution is a single pass');
  });

  it('publish: MQTT wildcard matching, $-topics not matched by a leading wildcard', () => {
    const rules = compileAclRules([allow('a/+/c', 'publish'), allow('$SYS/broker/#', 'publish'), deny('#', 'publish')]);
    assert.equal(rules.decide(pub('a/b/c')), 'allow');
    assert.equal(rules.decide(pub('a/b/c/d')), 'deny');
    assert.equal(rules.decide(pub('a//c')), 'allow', "'+' matches an empty level");
    assert.equal(rules.decide(pub('$SYS/broker/load')), 'allow');
    assert.equal(rules.decide(pub('$SYS/other')), undefined, "'#' does not cover '$SYS/...'");
    assert.equal(aclDecision([deny('+/x')], pub('$foo/x')), undefined);
    assert.equal(aclDecision([deny('$foo/+')], pub('$foo/x')), 'deny');
  });

  it('subscribe: a requested wildcard level is only covered by a rule wildcard at least as wide', () => {
    const decide = (rule: string, filter: string): string | undefined => aclDecision([allow(rule, 'subscribe')], sub(filter));
    assert.equal(decide('a/b', 'a/b'), 'allow');
    assert.equal(decide('a/+', 'a/b'), 'allow');
    assert.equal(decide('a/+', 'a/+'), 'allow');
    assert.equal(decide('a/+', 'a/#'), undefined);
    assert.equal(decide('a/+', 'a/b/c'), undefined);
    assert.equal(decide('a/#', 'a/#'), 'allow');
    assert.equal(decide('a/#', 'a/+/c'), 'allow');
    assert.equal(decide('a/#', 'a'), 'allow');
    assert.equal(decide('a/b', 'a/+'), undefined, 'a literal rule does not cover a requested wildcard');
    assert.equal(decide('a/b', 'a/#'), undefined);
    assert.equal(decide('a/+/c', 'a/+/c'), 'allow');
    assert.equal(decide('a/+/c', 'a/+/+'), undefined);
    assert.equal(decide('#', '#'), 'allow');
    assert.equal(decide('#', '+/x'), 'allow');
    assert.equal(decide('+', '#'), undefined);
    assert.equal(decide('#', '$SYS/#'), undefined, 'a leading rule wildcard does not cover $-filters');
    assert.equal(decide('+/#', '$SYS/x'), undefined);
    assert.equal(decide('$SYS/#', '$SYS/#'), 'allow');
    assert.equal(decide('$SYS/+', '$SYS/+'), 'allow');
  });

  it('checks a shared subscription by its inner filter', () => {
    const rules = compileAclRules([allow('jobs/#', 'subscribe'), deny('#', 'subscribe')]);
    assert.equal(rules.decide(sub('$share/workers/jobs/+')), 'allow');
    assert.equal(rules.decide(sub('$share/workers/other/+')), 'deny');
    assert.equal(rules.decide(sub('$share/workers/$SYS/x')), undefined, "the inner filter's $ rule applies");
    assert.equal(rules.decide(sub('$share/nofilter')), undefined);
    assert.equal(rules.decide(pub('$share/workers/jobs/x')), undefined, 'publish topics are not unwrapped');
  });

  it('validates rules, naming the index of the bad one', () => {
    const bad: [unknown, RegExp][] = [
      [{ permission: 'maybe', action: 'all', topic: 'a' }, /permission/],
      [{ permission: 'allow', action: 'read', topic: 'a' }, /action/],
      [{ permission: 'allow', action: 'all' }, /topic/],
      [{ permission: 'allow', action: 'all', topic: '' }, /empty/],
      [{ permission: 'allow', action: 'all', topic: 'a/#/b' }, /'#'/],
      [{ permission: 'allow', action: 'all', topic: 'a/b+' }, /'\+'/],
      [{ permission: 'allow', action: 'all', topic: '$share/g/a' }, /shared/],
      [{ permission: 'allow', action: 'all', topic: 'a', user: '' }, /user/],
      [{ permission: 'allow', action: 'all', topic: 'a', clientId: 5 }, /clientId/],
      ['rule', /object/],
    ];
    for (const [rule, re] of bad) {
      assert.throws(
        () => compileAclRules([allow('ok'), rule as MqttAclRule]),
        (e: unknown) => e instanceof MqttAclRuleError && e.index === 1 && re.test(e.message) && /^ACL rule 1: /.test(e.message),
        JSON.stringify(rule),
      );
    }
    assert.throws(() => aclDecision([deny('a/#/b')], pub('a')), MqttAclRuleError);
  });

  it('keeps a frozen copy of the rules', () => {
    const src = [allow('a')];
    const acl = compileAclRules(src);
    (src[0] as MqttAclRule).topic = 'b';
    assert.equal(acl.decide(pub('a')), 'allow');
    assert.equal(acl.rules[0]?.topic, 'a');
    assert.ok(Object.isFrozen(acl.rules));
    assert.equal(acl.size, 1);
  });

  it('publish decisions agree with the MQTT matcher (property)', () => {
    const level = fc.constantFrom('a', 'b', '$x', '', 'c');
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '+', '', '$x'), { minLength: 0, maxLength: 3 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, '#'] : l.length ? l : ['a']).join('/'))
      .filter((f) => f !== ''); // not a valid filter
    const rule = fc.record({ permission: fc.constantFrom('allow' as const, 'deny' as const), action: fc.constantFrom('publish' as const, 'all' as const), topic: filter });
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 6 }), topic, (rules, t) => {
        const expected = rules.find((r) => mqttFilterMatches(r.topic, t))?.permission;
        assert.equal(aclDecision(rules, pub(t)), expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('a subscribe allowed by a rule only yields topics that rule would allow publishing to (property)', () => {
    // Soundness: if rule R covers requested filter F, every topic F matches is matched by R.
    const level = fc.constantFrom('a', 'b', '$x', '');
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
    const filter = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '+', '$x'), { minLength: 0, maxLength: 3 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, '#'] : l.length ? l : ['a']).join('/'));
    fc.assert(
      fc.property(filter, filter, topic, (ruleTopic, requested, t) => {
        const covered = aclDecision([allow(ruleTopic, 'subscribe')], sub(requested)) === 'allow';
        if (covered && mqttFilterMatches(requested, t)) assert.ok(mqttFilterMatches(ruleTopic, t), `${ruleTopic} covers ${requested} but not ${t}`);
      }),
      { numRuns: 3000 },
    );
  });
});
