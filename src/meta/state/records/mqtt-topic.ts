/**
 * MQTT topic-name and topic-filter rules (MQTT 5.0 §4.7), shared by the
 * session and retained-message record types.
 */
import { checkStr, invalid } from '../fields.js';

const MAX_BYTES = 65_535;
const SHARE_PREFIX = '$share/';

function checkUtf8(raw: unknown, where: string): string {
  const s = checkStr(raw, where, { max: MAX_BYTES });
  if (Buffer.byteLength(s, 'utf8') > MAX_BYTES) invalid(`${where}: must be at most ${MAX_BYTES} bytes`);
  if (s.includes('\u0000')) invalid(`${where}: must not contain U+0000`);
  return s;
}

/** A topic name as published: no wildcards. */
export function checkMqttTopic(raw: unknown, where: string): string {
  const s = checkUtf8(raw, where);
  if (s.includes('+') || s.includes('#')) invalid(`${where}: a topic name must not contain '+' or '#'`);
  return s;
}

/** A subscription filter, including shared subscriptions ($share/<name>/<filter>). */
export function checkMqttFilter(raw: unknown, where: string): string {
  const s = checkUtf8(raw, where);
  let filter = s;
  if (s.startsWith(SHARE_PREFIX)) {
    const rest = s.slice(SHARE_PREFIX.length);
    const slash = rest.indexOf('/');
    const share = slash < 0 ? rest : rest.slice(0, slash);
    if (slash < 0 || share === '' || share.includes('+') || share.includes('#')) {
      invalid(`${where}: a shared subscription is $share/<name>/<filter> with a name free of '/', '+', '#'`);
    }
    filter = rest.slice(slash + 1);
    if (filter === '') invalid(`${where}: a shared subscription needs a filter after the share name`);
  }
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) invalid(`${where}: '#' must be a whole level and the last one`);
    if (level.includes('+') && level !== '+') invalid(`${where}: '+' must be a whole level`);
  });
  return s;
}

/** Does a (non-shared or shared) filter match a topic name? */
export function mqttFilterMatches(filter: string, topic: string): boolean {
  if (filter.startsWith(SHARE_PREFIX)) {
    const rest = filter.slice(SHARE_PREFIX.length);
    filter = rest.slice(rest.indexOf('/') + 1);
  }
  const f = filter.split('/');
  const t = topic.split('/');
  // Wildcards at the first level do not match '$SYS/...' and other '$' topics.
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true; // also matches the parent level: 'a/#' matches 'a'
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
