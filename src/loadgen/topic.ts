/**
 * Topic templates and MQTT topic matching, as the load generator needs them: `%i` in a
 * template becomes the client index; a filter matches a topic name by MQTT's rules
 * (`+` one level, `#` the rest, `$`-topics not matched by a leading wildcard), and a
 * shared subscription `$share/<group>/<filter>` is reduced to its group and filter.
 */

/** `bench/%i` → `bench/7`. `%%` is a literal `%`. */
export function expandTopic(template: string, index: number): string {
  if (!template.includes('%')) return template;
  return template.replace(/%[i%]/g, (m) => (m === '%i' ? String(index) : '%'));
}

/** True when the template names a different topic per client. */
export function isPerClient(template: string): boolean {
  return /%i/.test(template.replace(/%%/g, ''));
}

export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#');
}

/** A problem with a topic filter, or undefined when it is valid (MQTT §4.7). */
export function filterProblem(filter: string): string | undefined {
  if (filter === '') return 'is empty';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return "uses '#' other than as the whole last level";
    if (l.includes('+') && l !== '+') return "uses '+' other than as a whole level";
  }
  return undefined;
}

/** `$share/g/a/+` → { group: 'g', filter: 'a/+' }; anything else → { filter }. */
export function parseShared(filter: string): { group?: string; filter: string } {
  if (filter.startsWith('$share/')) {
    const rest = filter.slice('$share/'.length);
    const slash = rest.indexOf('/');
    if (slash > 0) return { group: rest.slice(0, slash), filter: rest.slice(slash + 1) };
  }
  return { filter };
}

/** Does the (non-shared) filter match the topic name? */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const fl = f[i]!;
    if (fl === '#') return true; // also matches the parent level: "a/#" matches "a"
    if (i >= t.length) return false;
    if (fl !== '+' && fl !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Fan-out per publisher: how many deliveries one message of publisher p makes, given
 * the publishers' topics and the subscribers' filters. A shared-subscription group
 * receives each matching message once however many members it has; a plain subscriber
 * receives each matching message once. Exact filters are counted through a map, so
 * 10,000 publishers × 10,000 subscribers on per-client topics cost 20,000 lookups.
 */
export function fanOut(pubTopics: readonly string[], subFilters: readonly string[]): { perPublisher: number[]; unmatchedSubscribers: number[]; unmatchedPublishers: number[] } {
  const exact = new Map<string, number>(); // filter without wildcards -> receivers
  const wild = new Map<string, number>(); // wildcard filter -> receivers
  const seenGroups = new Set<string>();
  const effective: string[] = []; // per subscriber: the filter it matches with
  for (const raw of subFilters) {
    const s = parseShared(raw);
    effective.push(s.filter);
    if (s.group !== undefined) {
      const key = `${s.group}\0${s.filter}`;
      if (seenGroups.has(key)) continue; // one delivery per group
      seenGroups.add(key);
    }
    const m = hasWildcard(s.filter) ? wild : exact;
    m.set(s.filter, (m.get(s.filter) ?? 0) + 1);
  }
  const cache = new Map<string, number>();
  const perPublisher = pubTopics.map((topic) => {
    const hit = cache.get(topic);
    if (hit !== undefined) return hit;
    let n = exact.get(topic) ?? 0;
    for (const [f, k] of wild) if (topicMatches(f, topic)) n += k;
    cache.set(topic, n);
    return n;
  });
  const topics = new Set(pubTopics);
  const wildHit = new Map<string, boolean>();
  const unmatchedSubscribers: number[] = [];
  effective.forEach((f, i) => {
    let hit: boolean;
    if (!hasWildcard(f)) hit = topics.has(f);
    else {
      let h = wildHit.get(f);
      if (h === undefined) {
        h = false;
        for (const t of topics) {
          if (topicMatches(f, t)) {
            h = true;
            break;
          }
        }
        wildHit.set(f, h);
      }
      hit = h;
    }
    if (!hit) unmatchedSubscribers.push(i);
  });
  const unmatchedPublishers: number[] = [];
  perPublisher.forEach((n, i) => {
    if (n === 0) unmatchedPublishers.push(i);
  });
  return { perPublisher, unmatchedSubscribers, unmatchedPublishers };
}
