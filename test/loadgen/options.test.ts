import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/loadgen/errors.js';
import { parseCommand, parseNumber, workerCount, type BenchOptions } from '../../src/loadgen/options.js';

function run(...argv: string[]): BenchOptions {
  const c = parseCommand(argv);
  assert.equal(c.kind, 'run');
  return (c as { options: BenchOptions }).options;
}

function usage(argv: string[], pattern: RegExp): void {
  assert.throws(
    () => parseCommand(argv),
    (err: unknown) => err instanceof UsageError && pattern.test(err.message) && !err.message.includes('\n'),
    `expected a one-line UsageError matching ${pattern} for ${argv.join(' ')}`,
  );
}

describe('robust-bench option parsing', () => {
  it('has the documented defaults', () => {
    const o = run('mqtt', 'pubsub');
    assert.equal(o.workload, 'pubsub');
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 1883);
    assert.equal(o.publishers, 1);
    assert.equal(o.subscribers, 1);
    assert.equal(o.topic, 'bench/%i');
    assert.equal(o.subTopic, 'bench/%i');
    assert.equal(o.qos, 0);
    assert.equal(o.size, 100);
    assert.equal(o.rate, 0);
    assert.equal(o.durationS, 10);
    assert.equal(o.warmupS, 1);
    assert.equal(o.window, 64);
    assert.equal(o.mqttVersion, 4);
    assert.equal(o.output, 'table');
    assert.equal(o.connectRate, 1000);
    assert.equal(o.workers, undefined);
    assert.equal(o.brokerPid, undefined);
  });

  it('maps --clients per workload', () => {
    assert.deepEqual([run('mqtt', 'conn').clients, run('mqtt', 'conn').publishers], [1000, 0]);
    const pub = run('mqtt', 'pub', '--clients', '7');
    assert.deepEqual([pub.publishers, pub.subscribers], [7, 0]);
    const sub = run('mqtt', 'sub', '--clients', '5');
    assert.deepEqual([sub.publishers, sub.subscribers], [0, 5]);
    const ps = run('mqtt', 'pubsub', '--clients', '100', '--subscribers', '3', '--sub-topic', 'bench/#');
    assert.deepEqual([ps.publishers, ps.subscribers, ps.subTopic], [100, 3, 'bench/#']);
  });

  it('picks the port from the transport unless given', () => {
    assert.equal(run('mqtt', 'pub', '--tls').port, 8883);
    assert.equal(run('mqtt', 'pub', '--ws').port, 8083);
    assert.equal(run('mqtt', 'pub', '--ws', '--tls').port, 8084);
    assert.equal(run('mqtt', 'pub', '--ws', '--port', '9001').port, 9001);
    assert.equal(run('mqtt', 'pub', '--ws', '--ws-path', '/x').wsPath, '/x');
  });

  it('parses numbers, versions and flags', () => {
    const o = run('mqtt', 'pubsub', '--qos', '2', '--size', '1_000', '--rate', '2.5e3', '--duration', '0.5', '--warmup', '0', '--window', '1', '--mqtt-version', '5.0', '--workers', '3', '--output', 'json', '--broker-pid', '42', '--username', 'u', '--password', 'p');
    assert.deepEqual([o.qos, o.size, o.rate, o.durationS, o.warmupS, o.window, o.mqttVersion, o.workers, o.output, o.brokerPid, o.username, o.password], [2, 1000, 2500, 0.5, 0, 1, 5, 3, 'json', 42, 'u', 'p']);
    assert.equal(run('mqtt', 'pub', '--mqtt-version', '3').mqttVersion, 3);
    assert.equal(run('mqtt', 'pub', '--mqtt-version', '3.1.1').mqttVersion, 4);
    assert.equal(run('mqtt', 'pub', '--tls', '--insecure').insecure, true);
  });

  it('answers help and version', () => {
    assert.equal(parseCommand(['--help']).kind, 'help');
    assert.equal(parseCommand(['mqtt', 'pubsub', '-h']).kind, 'help');
    assert.equal(parseCommand(['--version']).kind, 'version');
  });

  it('rejects bad input with one line naming the problem', () => {
    usage([], /missing protocol/);
    usage(['mqtt'], /missing workload/);
    usage(['amqp', 'pub'], /unknown protocol "amqp"/);
    usage(['mqtt', 'fire'], /unknown workload "fire"/);
    usage(['mqtt', 'pub', 'extra'], /unexpected argument/);
    usage(['mqtt', 'pub', '--bogus'], /unknown option --bogus/);
    usage(['mqtt', 'pub', '--port'], /--port needs a value/);
    usage(['mqtt', 'pub', '--port', '70000'], /--port must be at most 65535/);
    usage(['mqtt', 'pub', '--clients', 'ten'], /--clients: "ten" is not a number/);
    usage(['mqtt', 'pub', '--clients', '0'], /--clients must be at least 1/);
    usage(['mqtt', 'pub', '--clients', '1.5'], /not a whole number/);
    usage(['mqtt', 'pub', '--qos', '3'], /--qos must be at most 2/);
    usage(['mqtt', 'pub', '--rate', '0x10'], /not a number/);
    usage(['mqtt', 'pub', '--duration', '0'], /--duration must be greater than 0/);
    usage(['mqtt', 'pub', '--size', '15'], /--size 15 is too small/);
    usage(['mqtt', 'pub', '--window', '70000'], /--window must be at most 65535/);
    usage(['mqtt', 'pub', '--mqtt-version', '6'], /--mqtt-version must be 3/);
    usage(['mqtt', 'pub', '--output', 'xml'], /--output must be table or json/);
    usage(['mqtt', 'pub', '--topic', 'a/#'], /has a wildcard/);
    usage(['mqtt', 'pub', '--sub-topic', 'a'], /--sub-topic applies to sub and pubsub/);
    usage(['mqtt', 'conn', '--subscribers', '2'], /--subscribers applies to sub and pubsub/);
    usage(['mqtt', 'sub', '--topic', 'a/#/b'], /'#' other than as the whole last level/);
    usage(['mqtt', 'pub', '--ca', 'x.pem'], /--ca needs --tls/);
    usage(['mqtt', 'pub', '--ws-path', '/x'], /--ws-path needs --ws/);
    usage(['mqtt', 'pub', '--ws', '--ws-path', 'mqtt'], /must start with "\/"/);
    usage(['mqtt', 'pub', '--clients', '70000'], /at most 65536 publishers/);
  });

  it('accepts a small payload where nothing is published', () => {
    assert.equal(run('mqtt', 'sub', '--size', '0').size, 0);
    assert.equal(run('mqtt', 'sub', '--topic', 'bench/#').subTopic, 'bench/#');
    assert.equal(run('mqtt', 'sub', '--topic', '$share/g/bench/+').subTopic, '$share/g/bench/+');
  });

  it('parseNumber checks ranges', () => {
    assert.equal(parseNumber('x', ' 12 ', { integer: true, min: 1 }), 12);
    assert.throws(() => parseNumber('x', '', {}), UsageError);
    assert.throws(() => parseNumber('x', 'Infinity', {}), UsageError);
    assert.throws(() => parseNumber('x', '-1', { min: 0 }), /at least 0/);
  });

  it('spreads the load over min(cores, needed) workers', () => {
    assert.equal(workerCount(run('mqtt', 'pubsub'), 8), 2);
    assert.equal(workerCount(run('mqtt', 'pubsub'), 1), 1);
    assert.equal(workerCount(run('mqtt', 'pubsub', '--clients', '100'), 4), 4);
    assert.equal(workerCount(run('mqtt', 'pub'), 8), 1);
    assert.equal(workerCount(run('mqtt', 'conn', '--clients', '200'), 8), 1);
    assert.equal(workerCount(run('mqtt', 'conn', '--clients', '20000'), 4), 4);
    assert.equal(workerCount(run('mqtt', 'pubsub', '--workers', '6'), 2), 2, 'never more workers than clients');
    assert.equal(workerCount(run('mqtt', 'pubsub', '--clients', '10', '--workers', '6'), 2), 6);
  });
});
