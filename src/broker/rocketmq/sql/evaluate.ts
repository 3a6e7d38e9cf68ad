/**
 * Evaluates a parsed SQL filter against one message, with SQL's three-valued
 * logic: a missing property is NULL, anything compared with NULL is UNKNOWN,
 * NOT UNKNOWN is UNKNOWN, and only TRUE lets the message through. So
 * `a <> 'x'` does not match messages without `a` — as with RocketMQ's broker.
 *
 * Property values are strings on the wire. Compared with a number, a value is
 * read as a decimal number; one that is not a number is unequal to every
 * number, and an ordering comparison with it (>, BETWEEN, ...) is UNKNOWN.
 * Compared with TRUE or FALSE, the values "true" and "false" (any case) count.
 */
import type { Condition, Literal, Operand } from './parser.js';

/** TRUE, FALSE, or UNKNOWN (null). */
type Truth = boolean | null;
type Value = Literal | null;

/** A property's value, or undefined when the message does not have it. */
export type PropertyLookup = (name: string) => string | undefined;

const DECIMAL = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

export function evaluate(c: Condition, lookup: PropertyLookup): Truth {
  switch (c.kind) {
    case 'constant':
      return c.value;
    case 'and': {
      const l = evaluate(c.left, lookup);
      if (l === false) return false;
      const r = evaluate(c.right, lookup);
      if (r === false) return false;
      return l === null || r === null ? null : true;
    }
    case 'or': {
      const l = evaluate(c.left, lookup);
      if (l === true) return true;
      const r = evaluate(c.right, lookup);
      if (r === true) return true;
      return l === null || r === null ? null : false;
    }
    case 'not': {
      const v = evaluate(c.operand, lookup);
      return v === null ? null : !v;
    }
    case 'compare':
      return compare(c.op, valueOf(c.left, lookup), valueOf(c.right, lookup));
    case 'between': {
      const v = valueOf(c.value, lookup);
      const n = v === null ? undefined : toNumber(v);
      if (n === undefined) return null;
      const inside = c.low <= n && n <= c.high;
      return c.negated ? !inside : inside;
    }
    case 'in': {
      const v = valueOf(c.value, lookup);
      if (v === null) return null;
      const found = c.list.some((x) => equals(v, x));
      return c.negated ? !found : found;
    }
    case 'isNull': {
      const isNull = valueOf(c.value, lookup) === null;
      return c.negated ? !isNull : isNull;
    }
    case 'text': {
      const v = valueOf(c.value, lookup);
      if (v === null) return null;
      const s = String(v);
      const hit = c.op === 'CONTAINS' ? s.includes(c.argument) : c.op === 'STARTSWITH' ? s.startsWith(c.argument) : s.endsWith(c.argument);
      return c.negated ? !hit : hit;
    }
  }
}

function valueOf(o: Operand, lookup: PropertyLookup): Value {
  if (o.kind === 'literal') return o.value;
  return lookup(o.name) ?? null;
}

function compare(op: '=' | '<>' | '>' | '>=' | '<' | '<=', a: Value, b: Value): Truth {
  if (a === null || b === null) return null;
  if (op === '=') return equals(a, b);
  if (op === '<>') return !equals(a, b);
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === undefined || y === undefined) return null;
  switch (op) {
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
  }
}

function equals(a: Literal, b: Literal): boolean {
  if (typeof a === typeof b) return a === b;
  if (typeof a === 'boolean' || typeof b === 'boolean') {
    const [flag, other] = typeof a === 'boolean' ? [a, b] : [b as boolean, a];
    return typeof other === 'string' && other.toLowerCase() === String(flag);
  }
  const x = toNumber(a);
  const y = toNumber(b);
  return x !== undefined && y !== undefined && x === y;
}

function toNumber(v: Literal): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean' || !DECIMAL.test(v)) return undefined;
  return Number(v);
}
