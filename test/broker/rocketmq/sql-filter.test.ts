/**
 * RocketMQ's SQL92 filter subset: what it accepts and how it evaluates (SQL's
 * three-valued logic over string properties), the errors for what it does not
 * accept, and property tests: any text parses or fails with
 * ILLEGAL_FILTER_EXPRESSION (never another exception), and the identities of
 * the logic (De Morgan, BETWEEN as two comparisons, <> as NOT =, IN as ORs)
 * hold over random conditions and messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RocketmqError } from '../../../src/broker/rocketmq/errors.js';
import { filterMatcher } from '../../../src/broker/rocketmq/filter.js';
import { evaluate } from '../../../src/broker/rocketmq/sql/evaluate.js';
import { SqlFilterError, compileSql } from '../../../src/broker/rocketmq/sql/index.js';
import { MAX_DEPTH, parseSql } from '../../../src/broker/rocketmq/sql/parser.js';

type Props = Record<string, string>;

const lookupOf = (props: Props) => (name: string) => (Object.hasOwn(props, name) ? props[name] : undefined);
const matches = (expr: string, props: Props) => compileSql(expr)(lookupOf(props));
const truth = (expr: string, props: Props) => evaluate(parseSql(expr), lookupOf(props));

function failure(expr: string): SqlFilterError {
  try {
    compileSql(expr);
  } catch (err) {
    assert.ok(err instanceof SqlFilterError, `${expr}: ${String(err)}`);
    return err;
  }
  assert.fail(`"${expr}" was accepted`);
}

describe('rocketmq SQL92 filter: evaluation', () => {
  it('compares numbers, strings and booleans', () => {
    const m = { a: '5', s: 'abc', f: 'TRUE', d: '2.5' };
    for (const [expr, want] of [
      ['a = 5', true],
      ['a > 4', true],
      ['a >= 5', true],
      ['a < 5', false],
      ['a <= 5.0', true],
      ['a <> 5', false],
      ['d > 2', true],
      ['d < -1', false],
      ['a > -1e3', true],
      ["s = 'abc'", true],
      ["s <> 'abd'", true],
      ["'abc' = s", true],
      ["a = '5'", true],
      ['5 = a', true],
      ['f = TRUE', true],
      ['f = FALSE', false],
      ['s = 5', false],
      ['s <> 5', true],
      ['TRUE', true],
      ['FALSE', false],
      ['1 = 1', true],
    ] as const) {
      assert.equal(matches(expr, m), want, expr);
    }
  });

  it('BETWEEN, IN, IS NULL and the text operators', () => {
    const m = { a: '3', t: 'hello world', TAGS: 'ignored: TAGS is the tag, see filterMatcher' };
    for (const [expr, want] of [
      ['a BETWEEN 1 AND 3', true],
      ['a BETWEEN 4 AND 9', false],
      ['a NOT BETWEEN 4 AND 9', true],
      ['a BETWEEN -3 AND +3', true],
      ["a IN ('1', '3')", true],
      ['a IN (1, 2)', false],
      ['a IN (3)', true],
      ["a NOT IN ('1', '2')", true],
      ['b IS NULL', true],
      ['a IS NULL', false],
      ['a IS NOT NULL', true],
      ["t CONTAINS 'lo w'", true],
      ["t STARTSWITH 'hello'", true],
      ["t ENDSWITH 'hello'", false],
      ["t NOT CONTAINS 'xyz'", true],
    ] as const) {
      assert.equal(matches(expr, m), want, expr);
    }
  });

  it('keywords are case-insensitive, property names are not', () => {
    assert.ok(matches("a = 1 and b is not null or c in ('x')", { a: '1', b: '' }));
    assert.ok(matches('a between 0 and 2', { a: '1' }));
    assert.ok(!matches('A = 1', { a: '1' }));
  });

  it('a missing property is NULL: comparisons with it are UNKNOWN, and NOT UNKNOWN does not match either', () => {
    assert.equal(truth('a = 1', {}), null);
    assert.equal(truth('NOT (a = 1)', {}), null);
    assert.equal(matches('a <> 1', {}), false);
    assert.equal(matches('NOT (a = 1)', {}), false);
    assert.equal(matches('a = 1 OR TRUE', {}), true, 'UNKNOWN OR TRUE is TRUE');
    assert.equal(truth('a = 1 AND FALSE', {}), false, 'UNKNOWN AND FALSE is FALSE');
    assert.equal(truth('a = 1 OR FALSE', {}), null);
    assert.equal(matches("a NOT IN ('x')", {}), false);
    assert.equal(matches('a NOT BETWEEN 1 AND 2', {}), false);
  });

  it('ordering a value that is not a number is UNKNOWN, whichever way it is written', () => {
    assert.equal(truth('a > 1', { a: 'abc' }), null);
    assert.equal(truth('a BETWEEN 1 AND 2', { a: '' }), null);
    assert.equal(truth('a < b', { a: '1', b: 'x' }), null);
    assert.equal(truth('a < b', { a: '1', b: '2' }), true, 'two properties compare as numbers');
  });

  it('filterMatcher: SQL sees user properties and the tag as TAGS, never the broker\'s own rmq.* headers', () => {
    const f = filterMatcher({ type: 'SQL', expression: "TAGS = 'TagA' AND region = 'eu'" });
    const msg = (tag: string | undefined, headers: Record<string, string>) => ({ ...(tag !== undefined ? { tag } : {}), headers: Object.entries(headers).map(([key, v]) => ({ key, value: Buffer.from(v) })) });
    assert.ok(f(msg('TagA', { region: 'eu' })));
    assert.ok(!f(msg('TagB', { region: 'eu' })));
    assert.ok(!f(msg(undefined, { region: 'eu' })));
    assert.ok(!filterMatcher({ type: 'SQL', expression: "'rmq.type' = 'NORMAL' OR rmq.type IS NOT NULL" })(msg('x', { 'rmq.type': 'NORMAL' })));
  });
});

describe('rocketmq SQL92 filter: errors', () => {
  it('names the problem and its column, with the ILLEGAL_FILTER_EXPRESSION code', () => {
    for (const [expr, column, pattern] of [
      ['a >', 4, /expected a value after ">"/],
      ['a = NULL', 5, /IS NULL/],
      ["a > 'x'", 3, /compares numbers/],
      ['a != 1', 3, /write <>/],
      ["a = 'open", 5, /not closed/],
      ['a', 2, /needs a comparison/],
      ['a b', 3, /needs a comparison/],
      ['(a = 1', 7, /close the parenthesis/],
      ['a = 1)', 6, /after a complete condition/],
      ['a = 1 AND', 10, /expected a condition/],
      ['a BETWEEN 1 OR 2', 13, /expected AND/],
      ["a BETWEEN 'x' AND 2", 11, /takes numbers/],
      ['a IN ()', 7, /IN takes a list/],
      ['a IN (b)', 7, /IN takes a list/],
      ['a IS 1', 6, /expected NULL/],
      ['a NOT = 1', 7, /after NOT/],
      ["a CONTAINS 1", 12, /quoted string/],
      ['a = 1 # b', 7, /unexpected character "#"/],
      ['1abc = 1', 1, /neither a number nor a property/],
      ['TRUE > 1', 6, /compares numbers/],
      ['', 1, /empty/],
      ['   ', 1, /empty/],
    ] as const) {
      const err = failure(expr);
      assert.equal(err.status, 'ILLEGAL_FILTER_EXPRESSION');
      assert.equal(err.position + 1, column, `${expr}: ${err.message}`);
      assert.match(err.message, pattern, expr);
      assert.match(err.message, /column \d+/);
    }
  });

  it('refuses nesting deeper than the limit and expressions longer than 4096 characters', () => {
    const deep = (n: number) => `${'('.repeat(n)}a = 1${')'.repeat(n)}`;
    assert.ok(matches(deep(MAX_DEPTH), { a: '1' }));
    assert.match(failure(deep(MAX_DEPTH + 1)).message, /nest deeper/);
    assert.match(failure(`${'NOT '.repeat(MAX_DEPTH + 1)}TRUE`).message, /nest deeper/);
    assert.match(failure(`a = '${'x'.repeat(5000)}'`).message, /longer than 4096/);
  });

  it('a request with a bad SQL filter fails as a RocketmqError the server answers in-band', () => {
    try {
      filterMatcher({ type: 'SQL', expression: 'a >>' });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof RocketmqError);
      assert.equal(err.status, 'ILLEGAL_FILTER_EXPRESSION');
    }
  });
});

// ------------------------------------------------------------------ property tests

const runs = (n: number) => Number(process.env['FC_RUNS'] ?? n);

const PROPS = ['a', 'b', 'c'];
const arbValue = fc.constantFrom('0', '1', '2', '3', '-1', '1.5', '10', 'x', 'abc', 'true', 'FALSE', '');
const arbProps: fc.Arbitrary<Props> = fc.dictionary(fc.constantFrom(...PROPS), arbValue);
const arbProp = fc.constantFrom(...PROPS);
const arbNum = fc.constantFrom('0', '1', '2', '-1', '1.5', '3', '10');
const arbStr = fc.constantFrom("'x'", "'abc'", "'1'", "''", "'it''s'");
const arbCmp = fc.constantFrom('=', '<>', '>', '>=', '<', '<=');

const arbLeaf: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(arbProp, arbCmp, arbNum).map(([p, op, n]) => `${p} ${op} ${n}`),
  fc.tuple(arbProp, fc.constantFrom('=', '<>'), fc.oneof(arbStr, fc.constantFrom('TRUE', 'FALSE'))).map(([p, op, v]) => `${p} ${op} ${v}`),
  fc.tuple(arbProp, fc.boolean(), arbNum, arbNum).map(([p, not, lo, hi]) => `${p}${not ? ' NOT' : ''} BETWEEN ${lo} AND ${hi}`),
  fc.tuple(arbProp, fc.boolean(), fc.array(fc.oneof(arbStr, arbNum), { minLength: 1, maxLength: 3 })).map(([p, not, xs]) => `${p}${not ? ' NOT' : ''} IN (${xs.join(', ')})`),
  fc.tuple(arbProp, fc.boolean()).map(([p, not]) => `${p} IS${not ? ' NOT' : ''} NULL`),
  fc.constantFrom('TRUE', 'FALSE'),
);

const arbCondition: fc.Arbitrary<string> = fc.letrec<{ cond: string }>((tie) => ({
  cond: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    arbLeaf,
    fc.tuple(tie('cond'), fc.constantFrom('AND', 'OR'), tie('cond')).map(([l, op, r]) => `(${l}) ${op} (${r})`),
    tie('cond').map((c) => `NOT (${c})`),
  ),
})).cond;

describe('rocketmq SQL92 filter: properties', () => {
  it('any text parses or fails with ILLEGAL_FILTER_EXPRESSION at a position inside it', () => {
    const tokenSoup = fc
      .array(fc.constantFrom('a', 'b.c', '(', ')', 'AND', 'OR', 'NOT', '=', '<>', '>', '<=', '1', '-', '2.5', "'x'", "'", 'BETWEEN', 'IN', ',', 'IS', 'NULL', 'TRUE', 'CONTAINS', '!', ''), { maxLength: 30 })
      .map((xs) => xs.join(' '));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), tokenSoup), arbProps, (text, props) => {
        let test: ((lookup: (n: string) => string | undefined) => boolean) | undefined;
        try {
          test = compileSql(text);
        } catch (err) {
          if (!(err instanceof SqlFilterError)) throw err;
          assert.equal(err.status, 'ILLEGAL_FILTER_EXPRESSION');
          assert.ok(err.position >= 0 && err.position <= text.length, `position ${err.position} in ${JSON.stringify(text)}`);
          return;
        }
        assert.equal(typeof test(lookupOf(props)), 'boolean');
      }),
      { numRuns: runs(5000) },
    );
  });

  it('every generated condition parses', () => {
    fc.assert(
      fc.property(arbCondition, (c) => void parseSql(c)),
      { numRuns: runs(1000) },
    );
  });

  it('De Morgan and double negation hold in three-valued logic', () => {
    fc.assert(
      fc.property(arbCondition, arbCondition, arbProps, (p, q, props) => {
        assert.equal(truth(`NOT ((${p}) AND (${q}))`, props), truth(`(NOT (${p})) OR (NOT (${q}))`, props));
        assert.equal(truth(`NOT ((${p}) OR (${q}))`, props), truth(`(NOT (${p})) AND (NOT (${q}))`, props));
        assert.equal(truth(`NOT (NOT (${p}))`, props), truth(p, props));
      }),
      { numRuns: runs(1000) },
    );
  });

  it('BETWEEN is two comparisons, <> is NOT =, IN is a chain of =, IS NOT NULL is NOT IS NULL', () => {
    fc.assert(
      fc.property(arbProp, arbNum, arbNum, fc.array(fc.oneof(arbStr, arbNum), { minLength: 1, maxLength: 4 }), fc.oneof(arbStr, arbNum), arbProps, (p, lo, hi, list, v, props) => {
        assert.equal(truth(`${p} BETWEEN ${lo} AND ${hi}`, props), truth(`${p} >= ${lo} AND ${p} <= ${hi}`, props));
        assert.equal(truth(`${p} NOT BETWEEN ${lo} AND ${hi}`, props), truth(`NOT (${p} BETWEEN ${lo} AND ${hi})`, props));
        assert.equal(truth(`${p} <> ${v}`, props), truth(`NOT (${p} = ${v})`, props));
        assert.equal(truth(`${p} IN (${list.join(', ')})`, props), truth(list.map((x) => `${p} = ${x}`).join(' OR '), props));
        assert.equal(truth(`${p} NOT IN (${list.join(', ')})`, props), truth(`NOT (${p} IN (${list.join(', ')}))`, props));
        assert.equal(truth(`${p} IS NOT NULL`, props), truth(`NOT (${p} IS NULL)`, props));
      }),
      { numRuns: runs(2000) },
    );
  });

  it('numeric comparisons of numeric properties agree with arithmetic', () => {
    const ops: Record<string, (x: number, y: number) => boolean> = { '=': (x, y) => x === y, '<>': (x, y) => x !== y, '>': (x, y) => x > y, '>=': (x, y) => x >= y, '<': (x, y) => x < y, '<=': (x, y) => x <= y };
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.constantFrom(...Object.keys(ops)), (x, y, op) => {
        assert.equal(matches(`a ${op} ${y < 0 ? `-${-y}` : y}`, { a: String(x) }), ops[op]!(x, y));
      }),
      { numRuns: runs(2000) },
    );
  });
});
