/**
 * A recursive-descent parser for RocketMQ's SQL92 filter subset:
 *
 *   expr      := and (OR and)*
 *   and       := not (AND not)*
 *   not       := NOT not | predicate
 *   predicate := '(' expr ')' | TRUE | FALSE
 *              | operand cmp operand
 *              | operand [NOT] BETWEEN number AND number
 *              | operand [NOT] IN '(' literal (',' literal)* ')'
 *              | operand IS [NOT] NULL
 *              | operand [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
 *   operand   := property | string | ['-'|'+'] number | TRUE | FALSE
 *
 * Mistakes RocketMQ's grammar also refuses are caught here rather than left to
 * evaluate to "no match" forever: ordering a string (`a > 'x'`), comparing with
 * NULL (`a = NULL`, which is never true in SQL), a bare property as a condition.
 */
import { SqlFilterError } from './errors.js';
import { tokenize, type ComparisonOp, type Keyword, type Token } from './lexer.js';

export type Literal = string | number | boolean;

export type Operand = { kind: 'property'; name: string } | { kind: 'literal'; value: Literal };

export type Condition =
  | { kind: 'and' | 'or'; left: Condition; right: Condition }
  | { kind: 'not'; operand: Condition }
  | { kind: 'constant'; value: boolean }
  | { kind: 'compare'; op: ComparisonOp; left: Operand; right: Operand }
  | { kind: 'between'; negated: boolean; value: Operand; low: number; high: number }
  | { kind: 'in'; negated: boolean; value: Operand; list: Literal[] }
  | { kind: 'isNull'; negated: boolean; value: Operand }
  | { kind: 'text'; op: 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH'; negated: boolean; value: Operand; argument: string };

/** Parentheses and NOTs nest at most this deep: the parser recurses, and no real filter needs more. */
export const MAX_DEPTH = 64;
export const MAX_EXPRESSION_LENGTH = 4096;

const TEXT_OPS = ['CONTAINS', 'STARTSWITH', 'ENDSWITH'] as const;

export function parseSql(expression: string): Condition {
  if (expression.length > MAX_EXPRESSION_LENGTH) throw new SqlFilterError(expression, MAX_EXPRESSION_LENGTH, `the expression is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  if (expression.trim() === '') throw new SqlFilterError(expression, 0, 'the expression is empty');
  return new Parser(expression, tokenize(expression)).parse();
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
  ) {}

  parse(): Condition {
    const c = this.or();
    const t = this.peek();
    if (t.kind !== 'end') this.fail(t, `unexpected ${describe(t)} after a complete condition`);
    return c;
  }

  private or(): Condition {
    let left = this.and();
    while (this.takeKeyword('OR')) left = { kind: 'or', left, right: this.and() };
    return left;
  }

  private and(): Condition {
    let left = this.not();
    while (this.takeKeyword('AND')) left = { kind: 'and', left, right: this.not() };
    return left;
  }

  private not(): Condition {
    const t = this.peek();
    if (this.takeKeyword('NOT')) return { kind: 'not', operand: this.nested(t, () => this.not()) };
    return this.predicate();
  }

  private predicate(): Condition {
    const t = this.peek();
    if (t.kind === 'punct' && t.char === '(') {
      this.pos++;
      const inner = this.nested(t, () => this.or());
      this.expectPunct(')', 'to close the parenthesis');
      return inner;
    }
    const left = this.operand('a condition');
    const next = this.peek();
    if (left.kind === 'literal' && typeof left.value === 'boolean' && isConditionEnd(next)) return { kind: 'constant', value: left.value };
    if (next.kind === 'op') {
      this.pos++;
      return this.comparison(next, left, this.operand(`a value after "${next.op}"`));
    }
    if (next.kind === 'keyword' && next.word === 'IS') {
      this.pos++;
      const negated = this.takeKeyword('NOT');
      if (!this.takeKeyword('NULL')) this.fail(this.peek(), `expected NULL after IS${negated ? ' NOT' : ''}`);
      return { kind: 'isNull', negated, value: left };
    }
    const negated = this.takeKeyword('NOT');
    const op = this.peek();
    if (op.kind === 'keyword' && op.word === 'BETWEEN') {
      this.pos++;
      const low = this.number('BETWEEN');
      if (!this.takeKeyword('AND')) this.fail(this.peek(), 'expected AND between the bounds of BETWEEN');
      const high = this.number('BETWEEN ... AND');
      this.expectNumeric(left, 'BETWEEN', op);
      return { kind: 'between', negated, value: left, low, high };
    }
    if (op.kind === 'keyword' && op.word === 'IN') {
      this.pos++;
      return { kind: 'in', negated, value: left, list: this.list() };
    }
    if (op.kind === 'keyword' && (TEXT_OPS as readonly Keyword[]).includes(op.word)) {
      this.pos++;
      const arg = this.peek();
      if (arg.kind !== 'string') this.fail(arg, `${op.word} takes a quoted string, got ${describe(arg)}`);
      this.pos++;
      return { kind: 'text', op: op.word as (typeof TEXT_OPS)[number], negated, value: left, argument: arg.value };
    }
    if (negated) this.fail(op, `expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, got ${describe(op)}`);
    if (left.kind === 'property') this.fail(next, `property "${left.name}" needs a comparison (=, <>, >, IN, IS NULL, ...), got ${describe(next)}`);
    return this.fail(next, `a value alone is not a condition; expected a comparison, got ${describe(next)}`);
  }

  private comparison(at: Token, left: Operand, right: Operand): Condition {
    if (at.kind !== 'op') return this.fail(at, 'expected a comparison');
    const op = at.op;
    if (op !== '=' && op !== '<>') {
      for (const side of [left, right]) {
        if (side.kind === 'literal' && typeof side.value !== 'number') this.fail(at, `"${op}" compares numbers; ${JSON.stringify(side.value)} is not one (strings and booleans take =, <> and IN)`);
      }
    }
    return { kind: 'compare', op, left, right };
  }

  private operand(what: string): Operand {
    const t = this.peek();
    switch (t.kind) {
      case 'ident':
        this.pos++;
        return { kind: 'property', name: t.name };
      case 'string':
        this.pos++;
        return { kind: 'literal', value: t.value };
      case 'number':
        this.pos++;
        return { kind: 'literal', value: t.value };
      case 'punct':
        if (t.char === '-' || t.char === '+') return { kind: 'literal', value: this.signedNumber() };
        break;
      case 'keyword':
        if (t.word === 'TRUE' || t.word === 'FALSE') {
          this.pos++;
          return { kind: 'literal', value: t.word === 'TRUE' };
        }
        if (t.word === 'NULL') this.fail(t, 'NULL is tested with IS NULL or IS NOT NULL, not compared');
        break;
    }
    return this.fail(t, `expected ${what}, got ${describe(t)}`);
  }

  private signedNumber(): number {
    const sign = this.peek();
    let negative = false;
    if (sign.kind === 'punct' && (sign.char === '-' || sign.char === '+')) {
      negative = sign.char === '-';
      this.pos++;
    }
    const t = this.peek();
    if (t.kind !== 'number') return this.fail(t, `expected a number${sign.kind === 'punct' ? ` after "${sign.char}"` : ''}, got ${describe(t)}`);
    this.pos++;
    return negative ? -t.value : t.value;
  }

  private number(after: string): number {
    const t = this.peek();
    if (t.kind !== 'number' && !(t.kind === 'punct' && (t.char === '-' || t.char === '+'))) this.fail(t, `${after} takes numbers, got ${describe(t)}`);
    return this.signedNumber();
  }

  private list(): Literal[] {
    this.expectPunct('(', 'after IN');
    const out: Literal[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === 'string') {
        this.pos++;
        out.push(t.value);
      } else if (t.kind === 'number' || (t.kind === 'punct' && (t.char === '-' || t.char === '+'))) {
        out.push(this.signedNumber());
      } else {
        this.fail(t, `IN takes a list of quoted strings or numbers, got ${describe(t)}`);
      }
      const sep = this.peek();
      if (sep.kind === 'punct' && sep.char === ',') {
        this.pos++;
        continue;
      }
      if (sep.kind === 'punct' && sep.char === ')') {
        this.pos++;
        return out;
      }
      this.fail(sep, `expected "," or ")" in the IN list, got ${describe(sep)}`);
    }
  }

  private expectNumeric(value: Operand, what: string, at: Token): void {
    if (value.kind === 'literal' && typeof value.value !== 'number') this.fail(at, `${what} compares numbers; ${JSON.stringify(value.value)} is not one`);
  }

  private nested<T>(at: Token, fn: () => T): T {
    if (++this.depth > MAX_DEPTH) this.fail(at, `parentheses and NOTs nest deeper than ${MAX_DEPTH}`);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private takeKeyword(word: Keyword): boolean {
    const t = this.peek();
    if (t.kind === 'keyword' && t.word === word) {
      this.pos++;
      return true;
    }
    return false;
  }

  private expectPunct(char: '(' | ')', why: string): void {
    const t = this.peek();
    if (t.kind === 'punct' && t.char === char) {
      this.pos++;
      return;
    }
    this.fail(t, `expected "${char}" ${why}, got ${describe(t)}`);
  }

  private fail(at: Token, detail: string): never {
    throw new SqlFilterError(this.text, at.at, detail);
  }
}

/** Whether a condition may end before this token (a lone TRUE / FALSE is one). */
function isConditionEnd(t: Token): boolean {
  return t.kind === 'end' || (t.kind === 'punct' && t.char === ')') || (t.kind === 'keyword' && (t.word === 'AND' || t.word === 'OR'));
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'end':
      return 'the end of the expression';
    case 'keyword':
      return t.word;
    case 'ident':
      return `property "${t.name}"`;
    case 'string':
      return `string '${t.value}'`;
    case 'number':
      return `number ${t.text}`;
    case 'op':
      return `"${t.op}"`;
    case 'punct':
      return `"${t.char}"`;
  }
}
