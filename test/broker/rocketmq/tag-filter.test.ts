import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RocketmqError } from '../../../src/broker/rocketmq/errors.js';
import { filterMatcher } from '../../../src/broker/rocketmq/filter.js';
import { parseTagExpression } from '../../../src/broker/rocketmq/tag-filter.js';

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

  it('filter expressions: TAG or unspecified type filter by tag, SQL by properties, absent takes all', () => {
    const msg = (tag: string | undefined, props: Record<string, string> = {}) => ({ ...(tag !== undefined ? { tag } : {}), headers: Object.entries(props).map(([key, v]) => ({ key, value: Buffer.from(v) })) });
    assert.ok(filterMatcher(undefined)(msg('x')));
    assert.ok(filterMatcher({ type: 'TAG', expression: 'A' })(msg('A')));
    assert.ok(!filterMatcher({ expression: 'A' })(msg('B')));
    assert.ok(filterMatcher({ type: 'SQL', expression: 'a > 1' })(msg(undefined, { a: '2' })));
    assert.ok(!filterMatcher({ type: 'SQL', expression: 'a > 1' })(msg(undefined, { a: '1' })));
    assert.equal(code(() => filterMatcher({ type: 'SQL', expression: 'a >' })), 'ILLEGAL_FILTER_EXPRESSION');
  });
});
