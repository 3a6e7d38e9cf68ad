/**
 * Topic-name and topic-filter validation (MQTT 3.1.1 §4.7, 5.0 §4.7 and §4.8.2),
 * run by the broker on every PUBLISH and SUBSCRIBE. One pass over the UTF-16 code
 * units, no regex, no allocation on the valid path: it counts UTF-8 bytes and
 * levels as it goes.
 */

/** The largest UTF-8 encoded string an MQTT packet can carry. */
export const MAX_TOPIC_BYTES = 65_535;

/** The prefix of a shared subscription: `$share/<group>/<filter>`. */
export const SHARE_PREFIX = '$share/';

export interface TopicLimits {
  /** Most levels ('/'-separated parts) allowed; unlimited when absent. For a shared filter, counts the levels of the filter after the group. */
  maxLevels?: number;
  /** Most UTF-8 bytes allowed (of the whole string); 65535 when absent. */
  maxBytes?: number;
}

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const NUL = 0x00;

/** UTF-8 length of one UTF-16 code unit, or -1 for an unpaired surrogate (a pair counts 2 + 2). */
function unitBytes(s: string, i: number, c: number): number {
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c < 0xd800 || c > 0xdfff) return 3;
  if (c <= 0xdbff) {
    const next = s.charCodeAt(i + 1); // NaN past the end
    return next >= 0xdc00 && next <= 0xdfff ? 2 : -1;
  }
  const prev = s.charCodeAt(i - 1);
  return prev >= 0xd800 && prev <= 0xdbff ? 2 : -1;
}

function tooLong(what: string, bytes: number, max: number): string {
  return `${what} is ${bytes} UTF-8 bytes, longer than ${max}`;
}

function tooDeep(what: string, levels: number, max: number): string {
  return `${what} has ${levels} levels, more than ${max}`;
}

/**
 * Why `name` is not a valid topic name to publish to, or undefined when it is:
 * non-empty, no '+' or '#', no U+0000, well-formed UTF-16 (so it encodes as
 * valid UTF-8), at most `maxBytes` (65535) UTF-8 bytes and `maxLevels` levels.
 */
export function topicNameError(name: string, opts?: TopicLimits): string | undefined {
  const len = name.length;
  if (len === 0) return 'topic name is empty';
  let bytes = 0;
  let levels = 1;
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x80) {
      bytes++;
      if (c === SLASH) levels++;
      else if (c === PLUS || c === HASH) return `topic name contains '${c === PLUS ? '+' : '#'}' (wildcards are only for topic filters)`;
      else if (c === NUL) return 'topic name contains U+0000';
    } else {
      const b = unitBytes(name, i, c);
      if (b < 0) return `topic name contains an unpaired UTF-16 surrogate at index ${i} (not valid UTF-8)`;
      bytes += b;
    }
  }
  const maxBytes = opts?.maxBytes ?? MAX_TOPIC_BYTES;
  if (bytes > maxBytes) return tooLong('topic name', bytes, maxBytes);
  const maxLevels = opts?.maxLevels;
  if (maxLevels !== undefined && levels > maxLevels) return tooDeep('topic name', levels, maxLevels);
  return undefined;
}

/**
 * Why `filter` is not a valid subscription filter, or undefined when it is:
 * non-empty; '#' only as the whole last level; '+' only as a whole level; no
 * U+0000; well-formed UTF-16; at most `maxBytes` (65535) UTF-8 bytes and
 * `maxLevels` levels. A shared subscription `$share/<group>/<filter>` needs a
 * non-empty group free of '+', '#' (and, by construction, '/') and a valid
 * filter after it.
 */
export function topicFilterError(filter: string, opts?: TopicLimits): string | undefined {
  const len = filter.length;
  if (len === 0) return 'topic filter is empty';
  let bytes = 0;
  let start = 0; // where the filter proper begins (after `$share/<group>/`)
  if (filter.charCodeAt(0) === DOLLAR && filter.startsWith(SHARE_PREFIX)) {
    let i = SHARE_PREFIX.length;
    for (; i < len; i++) {
      const c = filter.charCodeAt(i);
      if (c === SLASH) break;
      if (c === PLUS || c === HASH) return `shared subscription group name contains '${c === PLUS ? '+' : '#'}'`;
    }
    if (i === SHARE_PREFIX.length) return 'shared subscription has an empty group name ($share/<group>/<filter>)';
    if (i === len) return 'shared subscription has no filter after the group name ($share/<group>/<filter>)';
    if (i + 1 === len) return 'shared subscription has an empty filter after the group name';
    // The prefix and group are checked for bytes and U+0000 below, with the rest.
    start = i + 1;
    for (let j = 0; j < start; j++) {
      const c = filter.charCodeAt(j);
      if (c < 0x80) {
        if (c === NUL) return 'topic filter contains U+0000';
        bytes++;
      } else {
        const b = unitBytes(filter, j, c);
        if (b < 0) return `topic filter contains an unpaired UTF-16 surrogate at index ${j} (not valid UTF-8)`;
        bytes += b;
      }
    }
  }
  let levels = 1;
  let levelStart = start;
  for (let i = start; i < len; i++) {
    const c = filter.charCodeAt(i);
    if (c < 0x80) {
      bytes++;
      if (c === SLASH) {
        levels++;
        levelStart = i + 1;
      } else if (c === PLUS) {
        if (i !== levelStart || (i + 1 < len && filter.charCodeAt(i + 1) !== SLASH)) return `'+' must be a whole level of the topic filter`;
      } else if (c === HASH) {
        if (i !== levelStart || i + 1 !== len) return `'#' must be the whole last level of the topic filter`;
      } else if (c === NUL) return 'topic filter contains U+0000';
    } else {
      const b = unitBytes(filter, i, c);
      if (b < 0) return `topic filter contains an unpaired UTF-16 surrogate at index ${i} (not valid UTF-8)`;
      bytes += b;
    }
  }
  const maxBytes = opts?.maxBytes ?? MAX_TOPIC_BYTES;
  if (bytes > maxBytes) return tooLong('topic filter', bytes, maxBytes);
  const maxLevels = opts?.maxLevels;
  if (maxLevels !== undefined && levels > maxLevels) return tooDeep('topic filter', levels, maxLevels);
  return undefined;
}

/** Is this a `$SYS` topic (the broker's own status topics): `$SYS` or `$SYS/...`. */
export function isSysTopic(name: string): boolean {
  return name.charCodeAt(0) === DOLLAR && name.startsWith('$SYS') && (name.length === 4 || name.charCodeAt(4) === SLASH);
}

/**
 * Does the topic start with '$' (MQTT §4.7.2: reserved for the server's use, e.g.
 * `$SYS/...`; not matched by a filter whose first level is '+' or '#')?
 */
export function isReservedTopic(name: string): boolean {
  return name.charCodeAt(0) === DOLLAR;
}
