/**
 * SQL92 property filters (FilterExpression type SQL): parsed once per
 * request, evaluated per message over its user properties and TAGS.
 */
import { evaluate, type PropertyLookup } from './evaluate.js';
import { parseSql } from './parser.js';

export { SqlFilterError } from './errors.js';
export type { PropertyLookup } from './evaluate.js';

/** Compiles the expression (throwing SqlFilterError when it is not valid) into a test that passes only on TRUE. */
export function compileSql(expression: string): (lookup: PropertyLookup) => boolean {
  const condition = parseSql(expression);
  return (lookup) => evaluate(condition, lookup) === true;
}
