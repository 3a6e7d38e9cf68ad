/**
 * Tag filter expressions, as RocketMQ consumers subscribe with them: `*` (or
 * an empty expression) takes every message, `TagA || TagB` the messages whose
 * tag is one of those. A message without a tag only matches `*`. (filter.ts
 * chooses between this and SQL92 for a request.)
 */
import { RocketmqError } from './errors.js';

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
