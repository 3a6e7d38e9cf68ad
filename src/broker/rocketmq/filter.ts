/**
 * The filter a consumer subscribes with, as one test over a stored message:
 * a tag expression (`*`, `TagA || TagB`) or a SQL92 expression over the
 * message's user properties, where `TAGS` names its tag. Both run on the
 * broker, so a group never receives what it did not subscribe to.
 */
import type { StoredRecord } from '../../storage/types.js';
import { RocketmqError } from './errors.js';
import type { FilterExpression } from './proto.js';
import { SYSTEM_HEADER_PREFIX } from './records.js';
import { compileSql, type PropertyLookup } from './sql/index.js';
import { parseTagExpression } from './tag-filter.js';

/** What a filter sees of a message. */
export type FilterSubject = Pick<StoredRecord, 'tag' | 'headers'>;
export type MessageFilter = (message: FilterSubject) => boolean;

/** The SQL name of the message tag, as RocketMQ exposes it to SQL filters. */
export const TAGS_PROPERTY = 'TAGS';

const MATCH_ALL: MessageFilter = () => true;

/** A message's user properties by name: headers outside the broker's reserved prefix, plus TAGS. */
export function propertyLookup(message: FilterSubject): PropertyLookup {
  return (name) => {
    if (name === TAGS_PROPERTY) return message.tag;
    for (const h of message.headers) if (h.key === name && !h.key.startsWith(SYSTEM_HEADER_PREFIX)) return h.value.toString('utf8');
    return undefined;
  };
}

/** The filter of a request's filter expression (absent = everything); ILLEGAL_FILTER_EXPRESSION when it does not parse. */
export function filterMatcher(filter: FilterExpression | undefined): MessageFilter {
  if (!filter) return MATCH_ALL;
  const type = filter.type ?? 'FILTER_TYPE_UNSPECIFIED';
  if (type === 'SQL') {
    const test = compileSql(filter.expression ?? '');
    return (message) => test(propertyLookup(message));
  }
  if (type !== 'TAG' && type !== 'FILTER_TYPE_UNSPECIFIED') throw new RocketmqError('ILLEGAL_FILTER_EXPRESSION', `unknown filter type ${String(type)}`);
  const matches = parseTagExpression(filter.expression ?? '');
  return (message) => matches(message.tag);
}
