import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isReservedTopic, isSysTopic, MAX_TOPIC_BYTES, topicFilterError, topicNameError } from '../../../src/broker/core/topic-names.js';

const EMOJI = '\u{1F600}'; // 4 UTF-8 bytes, a surrogate pair in UTF-16

/** No unpaired surrogates (String.prototype.isWellFormed is ES2024). */
const wellFormed = (s: string): boolean => !/\p{Cs}/u.test(s);

describe('topicNameError', () => {
  it('accepts valid topic names', () => {
    for (const t of ['a', '/', '//', '/finance', 'sport/tennis/player1', 'a//b', '$SYS/broker/uptime', '$share/g/a', ' ', '温度/传感器', `e/${EMOJI}`, 'a\u0001b', 'a'.repeat(MAX_TOPIC_BYTES)]) {
      assert.equal(topicNameError(t), undefined, JSON.stringify(t.slice(0, 30)));
    }
  });

  it('rejects every malformed case with a reason', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['+', /'\+'/],
      ['#', /'#'/],
      ['a/+', /'\+'/],
      ['a/#', /'#'/],
      ['sport/tennis#', /'#'/],
      ['a+b', /'\+'/],
      ['a\u0000b', /U\+0000/],
      ['\u0000', /U\+0000/],
      ['a\uD800', /surrogate/],
      ['\uDC00a', /surrogate/],
      [`${EMOJI.slice(1)}${EMOJI.slice(0, 1)}`, /surrogate/],
      ['a'.repeat(MAX_TOPIC_BYTES + 1), /65536 UTF-8 bytes, longer than 65535/],
    ];
    for (const [t, re] of cases) {
      const err = topicNameError(t);
      assert.ok(err !== undefined && re.test(err), `${JSON.stringify(t.slice(0, 30))}: ${err}`);
    }
  });

  it('counts UTF-8 bytes, not UTF-16 code units', () => {
    // é: 2 bytes, €: 3 bytes, emoji: 4 bytes.
    assert.equal(topicNameError('é'.repeat(32767)), undefined);
    assert.match(topicNameError('é'.repeat(32768)) ?? '', /65536 UTF-8 bytes/);
    assert.equal(topicNameError('€'.repeat(21845)), undefined);
    assert.match(topicNameError('€'.repeat(21846)) ?? '', /65538 UTF-8 bytes/);
    assert.equal(topicNameError(EMOJI.repeat(16383)), undefined);
    assert.match(topicNameError(EMOJI.repeat(16384)) ?? '', /65536 UTF-8 bytes/);
  });

  it('applies maxBytes and maxLevels', () => {
    assert.equal(topicNameError('a/b/c', { maxLevels: 3 }), undefined);
    assert.match(topicNameError('a/b/c', { maxLevels: 2 }) ?? '', /3 levels, more than 2/);
    assert.match(topicNameError('/', { maxLevels: 1 }) ?? '', /2 levels/);
    assert.equal(topicNameError('abcd', { maxBytes: 4 }), undefined);
    assert.match(topicNameError('abcé', { maxBytes: 4 }) ?? '', /5 UTF-8 bytes, longer than 4/);
  });

  it('agrees with Buffer.byteLength and a naive checker on random strings', () => {
    const unit = fc.constantFrom('a', '/', '+', '#', '$', '\u0000', 'é', '€', EMOJI, '\uD800', '\uDFFF');
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 12 }).map((u) => u.join('')), fc.integer({ min: 1, max: 6 }), (t, maxLevels) => {
        const ok = wellFormed(t);
        const bytes = Buffer.byteLength(t);
        const naiveOk = t !== '' && !/[+#\u0000]/.test(t) && ok && bytes <= 20 && t.split('/').length <= maxLevels;
        assert.equal(topicNameError(t, { maxBytes: 20, maxLevels }) === undefined, naiveOk, JSON.stringify(t));
        if (t !== '' && !/[+#\u0000]/.test(t) && ok) {
          assert.equal(topicNameError(t, { maxBytes: bytes }), undefined);
          if (bytes > 0) assert.match(topicNameError(t, { maxBytes: bytes - 1 }) ?? '', new RegExp(`is ${bytes} UTF-8 bytes`));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** A naive, split-based reference for topicFilterError's verdict. */
function naiveFilterOk(f: string, maxBytes: number, maxLevels: number): boolean {
  if (f === '' || f.includes('\u0000') || !wellFormed(f) || Buffer.byteLength(f) > maxBytes) return false;
  let rest = f;
  if (f.startsWith('$share/')) {
    const parts = f.split('/');
    const group = parts[1]!;
    if (group === '' || group.includes('+') || group.includes('#') || parts.length < 3) return false;
    rest = parts.slice(2).join('/');
    if (rest === '') return false;
  }
  const levels = rest.split('/');
  if (levels.length > maxLevels) return false;
  return levels.every((l, i) => (!l.includes('#') || (l === '#' && i === levels.length - 1)) && (!l.includes('+') || l === '+'));
}

describe('topicFilterError', () => {
  it('accepts valid filters', () => {
    const ok = [
      '#',
      '+',
      '+/+',
      '/+',
      '+/',
      '/#',
      '//',
      'a',
      'sport/tennis/player1/#',
      'sport/tennis/+',
      'sport/+/player1',
      '+/tennis/#',
      '$SYS/#',
      '$SYS/monitor/+',
      '$share/g/a',
      '$share/g/#',
      '$share/g/+/x',
      '$share/g//',
      '$share/g/$SYS/#',
      '$share',
      '$shared/+',
      '温度/+',
      `${EMOJI}/#`,
      'a'.repeat(MAX_TOPIC_BYTES),
    ];
    for (const f of ok) assert.equal(topicFilterError(f), undefined, JSON.stringify(f.slice(0, 30)));
  });

  it('rejects every malformed case with a reason', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['a#', /'#' must be the whole last level/],
      ['#a', /'#' must be the whole last level/],
      ['a/#/b', /'#' must be the whole last level/],
      ['#/a', /'#' must be the whole last level/],
      ['#/', /'#' must be the whole last level/],
      ['##', /'#'/],
      ['sport/tennis#', /'#'/],
      ['a+', /'\+' must be a whole level/],
      ['+a', /'\+' must be a whole level/],
      ['a/+b/c', /'\+' must be a whole level/],
      ['++', /'\+'/],
      ['sport+', /'\+'/],
      ['a\u0000', /U\+0000/],
      ['\uD800/#', /surrogate/],
      ['a'.repeat(MAX_TOPIC_BYTES + 1), /longer than 65535/],
      ['$share/', /empty group/],
      ['$share//a', /empty group/],
      ['$share/g', /no filter after the group/],
      ['$share/g/', /empty filter/],
      ['$share/+/a', /group name contains '\+'/],
      ['$share/#/a', /group name contains '#'/],
      ['$share/g+/a', /group name contains '\+'/],
      ['$share/g#/a', /group name contains '#'/],
      ['$share/g/a#', /'#'/],
      ['$share/g/#/a', /'#'/],
      ['$share/g/+a', /'\+'/],
      ['$share/g\u0000/a', /U\+0000/],
      ['$share/g\uDC00/a', /surrogate/],
      [`$share/g/${'a'.repeat(MAX_TOPIC_BYTES - 8)}`, /65536 UTF-8 bytes/],
    ];
    for (const [f, re] of cases) {
      const err = topicFilterError(f);
      assert.ok(err !== undefined && re.test(err), `${JSON.stringify(f.slice(0, 30))}: ${err}`);
    }
  });

  it('applies maxLevels to the filter after $share/<group>/, maxBytes to the whole', () => {
    assert.equal(topicFilterError('a/+/#', { maxLevels: 3 }), undefined);
    assert.match(topicFilterError('a/+/#', { maxLevels: 2 }) ?? '', /3 levels, more than 2/);
    assert.equal(topicFilterError('$share/g/a/b', { maxLevels: 2 }), undefined);
    assert.match(topicFilterError('$share/g/a/b/c', { maxLevels: 2 }) ?? '', /3 levels/);
    assert.equal(topicFilterError('$share/g/ab', { maxBytes: 11 }), undefined);
    assert.match(topicFilterError('$share/g/abc', { maxBytes: 11 }) ?? '', /12 UTF-8 bytes, longer than 11/);
    assert.match(topicFilterError('$share/é/a', { maxBytes: 10 }) ?? '', /11 UTF-8 bytes/);
  });

  it('agrees with a naive split-based checker on random strings', () => {
    const unit = fc.constantFrom('a', 'b', '/', '/', '+', '#', '$', '\u0000', 'é', EMOJI, '\uD800');
    const str = fc.array(unit, { maxLength: 10 }).map((u) => u.join(''));
    const filter = fc.oneof(str, str.map((s) => `$share/${s}`), fc.tuple(str, str).map(([g, s]) => `$share/${g}/${s}`));
    fc.assert(
      fc.property(filter, fc.integer({ min: 1, max: 5 }), (f, maxLevels) => {
        assert.equal(topicFilterError(f, { maxBytes: 24, maxLevels }) === undefined, naiveFilterOk(f, 24, maxLevels), JSON.stringify(f));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('isSysTopic / isReservedTopic', () => {
  it('tells $SYS topics and $-topics', () => {
    for (const t of ['$SYS', '$SYS/', '$SYS/broker/uptime']) assert.equal(isSysTopic(t), true, t);
    for (const t of ['', '$SYSx', '$SYSTEM/a', '$sys/a', 'a/$SYS', '$', 'SYS/a']) assert.equal(isSysTopic(t), false, t);
    for (const t of ['$', '$SYS/a', '$x', '$share/g/a']) assert.equal(isReservedTopic(t), true, t);
    for (const t of ['', 'a/$b', ' $a']) assert.equal(isReservedTopic(t), false, t);
  });
});
