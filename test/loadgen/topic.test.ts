import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandTopic, fanOut, filterProblem, isPerClient, parseShared, topicMatches } from '../../src/loadgen/topic.js';

describe('topic templates and matching', () => {
  it('expands %i to the client index', () => {
    assert.equal(expandTopic('bench/%i', 7), 'bench/7');
    assert.equal(expandTopic('a/%i/b/%i', 3), 'a/3/b/3');
    assert.equal(expandTopic('plain', 3), 'plain');
    assert.equal(expandTopic('100%%/%i', 2), '100%/2');
    assert.equal(isPerClient('bench/%i'), true);
    assert.equal(isPerClient('bench/%%i'), false);
    assert.equal(isPerClient('bench'), false);
  });

  it('matches filters by MQTT rules', () => {
    assert.ok(topicMatches('a/b', 'a/b'));
    assert.ok(!topicMatches('a/b', 'a/c'));
    assert.ok(topicMatches('a/+', 'a/b'));
    assert.ok(!topicMatches('a/+', 'a/b/c'));
    assert.ok(topicMatches('a/#', 'a'));
    assert.ok(topicMatches('a/#', 'a/b/c'));
    assert.ok(topicMatches('#', 'x/y'));
    assert.ok(topicMatches('+/+', '/x'));
    assert.ok(!topicMatches('#', '$SYS/x'));
    assert.ok(!topicMatches('+/x', '$SYS/x'));
    assert.ok(topicMatches('$SYS/#', '$SYS/x'));
    assert.ok(!topicMatches('a/b/c', 'a/b'));
  });

  it('validates filters and splits shared subscriptions', () => {
    assert.equal(filterProblem('a/+/#'), undefined);
    assert.match(filterProblem('a/#/b')!, /'#'/);
    assert.match(filterProblem('a/b+')!, /'\+'/);
    assert.match(filterProblem('')!, /empty/);
    assert.deepEqual(parseShared('$share/g/a/+'), { group: 'g', filter: 'a/+' });
    assert.deepEqual(parseShared('a/+'), { filter: 'a/+' });
  });

  it('counts deliveries per publisher', () => {
    // 1:1 on per-client topics.
    assert.deepEqual(fanOut(['b/0'], ['b/0']).perPublisher, [1]);
    // fan-in: 3 publishers, one wildcard subscriber.
    assert.deepEqual(fanOut(['b/0', 'b/1', 'b/2'], ['b/#']).perPublisher, [1, 1, 1]);
    // fan-out: one topic, 4 subscribers.
    assert.deepEqual(fanOut(['t'], ['t', 't', 't', 't']).perPublisher, [4]);
    // shared group: one delivery per group, plus a plain subscriber.
    assert.deepEqual(fanOut(['t/1'], ['$share/g/t/+', '$share/g/t/+', 't/#']).perPublisher, [2]);
    // mismatches are reported.
    const f = fanOut(['bench/0'], ['bench/0', 'bench/1']);
    assert.deepEqual(f.unmatchedSubscribers, [1]);
    assert.deepEqual(fanOut(['x', 'y'], ['x']).unmatchedPublishers, [1]);
  });

  it('stays fast for many per-client topics', () => {
    const pubs = Array.from({ length: 20_000 }, (_, i) => `bench/${i}`);
    const t = performance.now();
    const f = fanOut(pubs, pubs);
    assert.ok(performance.now() - t < 1000);
    assert.equal(f.perPublisher.reduce((a, b) => a + b, 0), 20_000);
    assert.equal(f.unmatchedSubscribers.length, 0);
  });
});
