/**
 * Tag filter expressions, as RocketMQ consumers subscribe with them: `*` (or
 * an empty expression) takes every message, `TagA || TagB` the messages whose
 * tag is one of those. A message without a tag only matches `*`.
 */
import { RocketmqError } from './errors.js';
import type { FilterExpression } from './proto.js';

export type TagMatcher = (tag: string | undefined) => boolean;

const MATCH_ALL: TagMatcher = () => true;
const MAX_EXPRESSION_LENGTH = 4096;

export function parseTagExpression(expression: string): TagMatcher {
  const text = expression.trim();
  if (text === '' || text === '*') return MATCH_ALL;
  if (text.length > MAX_EXPRESSION_LENGTH) throw new RocketmqError('ILLEGAL_FILTER_EXPRESSION', `tag expression is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  const tags = new Set<string>();
  for (const part of text.split('||')) {
    const tag = part.trim();
    if (tag === '') throw new RocketmqError('ILLEGAL_FILTER_EXPRESSION', `tag expression "${expression}" has an empty tag between "||"`);
    tags.add(tag);
  }
  return (tag) => tag !== undefined && tags.has(tag);
}

/** The matcher for a request's filter expression (absent = everything). */
export function filterMatcher(filter: FilterExpression | undefined): TagMatcher {
  if (!filter) return MATCH_ALL;
  const type = filter.type ?? 'FILTER_TYPE_UNSPECIFIED';
  if (type === 'SQL') throw new RocketmqError('NOT_IMPLEMENTED', 'SQL92 filter expressions are not supported yet; subscribe with a tag expression');
  if (type !== 'TAG' && type !== 'FILTER_TYPE_UNSPECIFIED') throw new RocketmqError('ILLEGAL_FILTER_EXPRESSION', `unknown filter type ${String(type)}`);
  return parseTagExpression(filter.expression ?? '');
}
