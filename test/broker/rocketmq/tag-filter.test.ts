import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RocketmqError } from '../../../src/broker/rocketmq/errors.js';
import { filterMatcher, parseTagExpression } from '../../../src/broker/rocketmq/tag-filter.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RocketmqError ? err.status : 'not a RocketmqError';
  }
  return undefined;
}

describe('rocketmq tag filter', () => {
  it('"*" and an empty expression take every message, tagged or not', () => {
    for (const expr of ['*', '', '  ', ' * ']) {
      const m = parseTagExpression(expr);
      assert.ok(m('TagA') && m('anything') && m(undefined), expr);
    }
  });

  it('"TagA || TagB" takes exactly those tags, spaces around them ignored', () => {
    const m = parseTagExpression('TagA || TagB');
    assert.ok(m('TagA'));
    assert.ok(m('TagB'));
    assert.ok(!m('TagC'));
    assert.ok(!m('taga'), 'tags are case-sensitive');
    assert.ok(!m(undefined), 'an untagged message only matches *');
    assert.ok(parseTagExpression('TagA||TagB')('TagB'));
    assert.ok(parseTagExpression(' TagA ')('TagA'));
  });

  it('an empty tag between "||" is ILLEGAL_FILTER_EXPRESSION', () => {
    assert.equal(code(() => parseTagExpression('TagA || ')), 'ILLEGAL_FILTER_EXPRESSION');
    assert.equal(code(() => parseTagExpression('||')), 'ILLEGAL_FILTER_EXPRESSION');
  });

  it('filter expressions: TAG or unspecified type parse, SQL92 is not implemented yet, absent takes all', () => {
    assert.ok(filterMatcher(undefined)('x'));
    assert.ok(filterMatcher({ type: 'TAG', expression: 'A' })('A'));
    assert.ok(!filterMatcher({ expression: 'A' })('B'));
    assert.equal(code(() => filterMatcher({ type: 'SQL', expression: 'a > 1' })), 'NOT_IMPLEMENTED');
  });
});
