/**
 * Kafka against a real robust-server with Debian's kcat (librdkafka): metadata
 * (-L, -L -J), produce (-P: keys, headers, every compression codec, acks=all,
 * idempotence) and consume (-C) round trips, offsets (-o, -Q), SASL (PLAIN,
 * SCRAM-SHA-256), and balanced consumer groups (-G, eager and cooperative)
 * rebalancing between two kcat processes.
 *
 * librdkafka negotiates with ApiVersions v3 (flexible) and then uses its own
 * newest versions (Metadata v4, Produce v7, Fetch v11, ListOffsets v2, the
 * group APIs...). kcat is installed in CI, so a missing kcat fails the tests
 * rather than skipping them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { kafkaClient, startKafkaNode, type KafkaNode } from '../support/kafka.js';
import { freePort } from '../support/server.js';

const KCAT = 'kcat';
const HAVE_KCAT = spawnSync(KCAT, ['-V'], { stdio: 'ignore' }).error === undefined;
const PARTITIONS = 4;

/** One consumed record, from the format string FORMAT. */
interface Rec {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: string;
}
const FORMAT = '%p\\t%o\\t%k\\t%s\\t%h\\n';

/** The complete lines of `stdout` (a running consumer may have printed part of the next one). */
function parseRecords(stdout: string): Rec[] {
  return stdout
    .split('\n')
    .slice(0, -1)
    .map((l) => {
      const f = l.split('\t');
      assert.equal(f.length, 5, `unexpected kcat output line: ${JSON.stringify(l)}`);
      return { partition: Number(f[0]), offset: Number(f[1]), key: f[2]!, value: f[3]!, headers: f[4]! };
    });
}

/** A kcat process started by a test; stopped (by pid) at the end of the test. */
class Kcat {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listeners: Array<() => void> = [];

  constructor(
    readonly args: string[],
    stdin?: string,
  ) {
    this.child = spawn(KCAT, args, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const notify = () => {
      for (const l of [...this.listeners]) l();
    };
    // Decoded as a stream: a multi-byte character may straddle two chunks.
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.stdout += d;
      notify();
    });
    this.child.stderr!.on('data', (d: string) => {
      this.stderr += d;
      notify();
    });
    this.exited = new Promise((res) =>
      this.child.on('close', (code, signal) => {
        res({ code, signal });
        notify();
      }),
    );
    if (stdin !== undefined) this.child.stdin!.end(stdin);
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  describe(): string {
    return `kcat ${this.args.join(' ')}\nstdout (tail): ${this.stdout.slice(-2000)}\nstderr (tail): ${this.stderr.slice(-4000)}`;
  }

  /**
   * Waits until `cond` holds: checked on each output of this process, and every 50 ms (the
   * condition may depend on other processes too).
   */
  waitUntil(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          done();
          resolve();
        } else if (!this.running) {
          done();
          reject(new Error(`exited (code ${this.child.exitCode}) before ${what}\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}\n${this.describe()}`));
      }, timeoutMs);
      const poll = setInterval(check, 50);
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners = this.listeners.filter((l) => l !== check);
      };
      this.listeners.push(check);
    });
  }

  async exit(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error(`still running after ${timeoutMs} ms\n${this.describe()}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) {
      process.kill(this.child.pid!, signal);
      await this.exited;
    }
  }

  /**
   * The partitions of `topic` assigned now in balanced consumer (-G) mode (undefined before the
   * first assignment), from kcat's rebalance notices: eager ("assigned: ..." replaces,
   * "revoked: ..." clears) and cooperative ("incremental assignment of n partition(s) ...: ..."
   * adds, "incremental revoke ..." removes).
   */
  assignment(topic: string): number[] | undefined {
    return this.rebalances(topic).at(-1)?.after;
  }

  /** Every rebalance notice so far: what it did and the assignment after it. */
  rebalances(topic: string): Array<{ kind: 'assigned' | 'revoked' | 'incremental-assign' | 'incremental-revoke'; partitions: number[]; after: number[] }> {
    const esc = topic.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const out: Array<{ kind: 'assigned' | 'revoked' | 'incremental-assign' | 'incremental-revoke'; partitions: number[]; after: number[] }> = [];
    let current = new Set<number>();
    for (const line of this.stderr.split('\n').slice(0, -1)) {
      if (!line.startsWith('% Group ')) continue;
      const kind = /: assigned:/.test(line) ? 'assigned' : /: revoked:/.test(line) ? 'revoked' : /incremental assignment of/.test(line) ? 'incremental-assign' : /incremental revoke of/.test(line) ? 'incremental-revoke' : undefined;
      if (kind === undefined) continue;
      const partitions = [...line.matchAll(new RegExp(`${esc} \\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1])).sort((a, b) => a - b);
      if (kind === 'assigned') current = new Set(partitions);
      else if (kind === 'revoked') current = new Set();
      else if (kind === 'incremental-assign') for (const p of partitions) current.add(p);
      else for (const p of partitions) current.delete(p);
      out.push({ kind, partitions, after: [...current].sort((a, b) => a - b) });
    }
    return out;
  }
}

const running = new Set<Kcat>();

describe('Kafka with kcat (librdkafka) against robust-server', () => {
  let node: KafkaNode | undefined;
  let saslPort = 0;
  const broker = () => node!.broker;
  const SASL_USER = 'kcat-user';
  const SASL_PASSWORD = 'pässword,=1';

  /** Runs kcat to completion; asserts exit code 0 and returns its output. */
  async function kcat(args: string[], stdin?: string, timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    const k = new Kcat(['-b', broker(), ...args], stdin);
    try {
      const { code, signal } = await k.exit(timeoutMs);
      assert.equal(code, 0, `kcat exited with ${code ?? signal}\n${k.describe()}`);
    } finally {
      await k.kill();
    }
    return { stdout: k.stdout, stderr: k.stderr };
  }

  /** Produces `lines` (stdin, one message per line) with kcat -P and asserts no delivery failed. */
  async function produce(topic: string, lines: string[], args: string[] = []): Promise<string> {
    const { stderr } = await kcat(['-P', '-t', topic, ...args], lines.map((l) => `${l}\n`).join(''), 60_000);
    assert.doesNotMatch(stderr, /ERROR|[Ff]ailed/, `kcat -P reported errors:\n${stderr}`);
    return stderr;
  }

  /** Consumes a topic from the beginning to its end (-e) and returns the records. */
  async function consumeAll(topic: string, args: string[] = []): Promise<Rec[]> {
    const { stdout, stderr } = await kcat(['-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-X', 'check.crcs=true', '-f', FORMAT, ...args]);
    assert.doesNotMatch(stderr, /ERROR/, `kcat -C reported errors:\n${stderr}`);
    return parseRecords(stdout);
  }

  /** The end offsets (high watermarks) of the topic's partitions, via kcat -Q (ListOffsets latest). */
  async function endOffsets(topic: string): Promise<number[]> {
    const out: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) out.push(await queryOffset(topic, p, -1));
    return out;
  }

  async function queryOffset(topic: string, partition: number, ts: number): Promise<number> {
    const { stdout } = await kcat(['-Q', '-J', '-t', `${topic}:${partition}:${ts}`]);
    const j = JSON.parse(stdout) as Record<string, Record<string, { partition: number; offset: number; err?: string }>>;
    const r = j[topic]?.[String(partition)];
    assert.ok(r, `kcat -Q gave no answer for ${topic}:${partition}: ${stdout}`);
    assert.equal(r.err, undefined, `kcat -Q error for ${topic}:${partition}: ${stdout}`);
    return r.offset;
  }

  /** Records grouped by partition, in consumed order. */
  function byPartition(recs: Rec[]): Map<number, Rec[]> {
    const m = new Map<number, Rec[]>();
    for (const r of recs) {
      if (!m.has(r.partition)) m.set(r.partition, []);
      m.get(r.partition)!.push(r);
    }
    return m;
  }

  function assertDenseOffsets(recs: Rec[], what: string): void {
    for (const [p, rs] of byPartition(recs)) {
      assert.deepEqual(
        rs.map((r) => r.offset),
        rs.map((_, i) => i),
        `${what}: offsets of partition ${p} are not 0..${rs.length - 1}`,
      );
    }
  }

  before(async () => {
    assert.ok(HAVE_KCAT, 'kcat is not installed (Debian/Ubuntu: apt-get install kcat); these tests need it');
    saslPort = await freePort();
    node = await startKafkaNode({ kafka: `num_partitions = ${PARTITIONS}\nsasl_port = ${saslPort}` });
    const res = await fetch(`http://127.0.0.1:${node.ports.http}/api/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: SASL_USER, password: SASL_PASSWORD }),
    });
    assert.equal(res.status, 201, `creating the SASL user: ${await res.text()}`);
  });
  afterEach(async () => {
    await Promise.all([...running].map((k) => k.kill()));
  });
  after(async () => {
    await Promise.all([...running].map((k) => k.kill()));
    if (node) {
      const errors = node.proc.logLines().filter((l) => typeof l['level'] === 'number' && (l['level'] as number) >= 50);
      await node.destroy();
      assert.deepEqual(errors, [], 'the server logged errors');
    }
  });

  it('kcat -L and -L -J: broker 1 at the listener address, auto-created topics with their partitions led by 1', async () => {
    const topic = 'kcat-meta';
    await produce(topic, ['one', 'two', 'three']);

    const text = (await kcat(['-L'])).stdout;
    assert.match(text, new RegExp(`^ 1 brokers:\\n  broker 1 at ${broker().replace(/\./g, '\\.')}( \\(controller\\))?$`, 'm'), text);
    assert.match(text, new RegExp(`topic "${topic}" with ${PARTITIONS} partitions:`), text);
    for (let p = 0; p < PARTITIONS; p++) assert.match(text, new RegExp(`partition ${p}, leader 1, replicas: 1, isrs: 1`), text);

    const json = JSON.parse((await kcat(['-L', '-J'])).stdout) as {
      controllerid: number;
      brokers: Array<{ id: number; name: string }>;
      topics: Array<{ topic: string; error?: string; partitions: Array<{ partition: number; leader: number; replicas: Array<{ id: number }>; isrs: Array<{ id: number }> }> }>;
    };
    assert.deepEqual(json.brokers, [{ id: 1, name: broker() }]);
    assert.equal(json.controllerid, 1);
    const t = json.topics.find((x) => x.topic === topic);
    assert.ok(t, `topic ${topic} missing from ${JSON.stringify(json.topics.map((x) => x.topic))}`);
    assert.equal(t.error, undefined);
    assert.deepEqual(
      [...t.partitions].sort((a, b) => a.partition - b.partition),
      Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, leader: 1, replicas: [{ id: 1 }], isrs: [{ id: 1 }] })),
    );
    // The three records went somewhere.
    assert.equal((await endOffsets(topic)).reduce((a, b) => a + b, 0), 3);

    // -L -t: only that topic.
    const one = JSON.parse((await kcat(['-L', '-J', '-t', topic])).stdout) as { topics: Array<{ topic: string }> };
    assert.deepEqual(
      one.topics.map((x) => x.topic),
      [topic],
    );

    // A consumer does not auto-create (librdkafka asks Metadata with allow_auto_topic_creation=false).
    const missing = 'kcat-never-created';
    const c = new Kcat(['-b', broker(), '-C', '-t', missing, '-e', '-o', 'beginning']);
    await c.exit();
    assert.match(c.stderr, /Unknown topic or partition/, c.describe());
    const all = JSON.parse((await kcat(['-L', '-J'])).stdout) as { topics: Array<{ topic: string }> };
    assert.ok(!all.topics.some((x) => x.topic === missing), `${missing} was created by a consumer's Metadata request`);
  });

  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`kcat -P -z ${codec} -X acks=all, 5000 keyed records with headers, back exactly with kcat -C`, async () => {
      const topic = `kcat-codec-${codec}`;
      const n = 5000;
      // Values with the key delimiter, '|', '=' and non-ASCII (kcat splits key:value at the first ':').
      const sent = Array.from({ length: n }, (_, i) => ({ key: `user-${i % 97}`, value: `v${i}:${codec}|é✓=${'x'.repeat(i % 61)}` }));
      const log = await produce(
        topic,
        sent.map((r) => `${r.key}:${r.value}`),
        ['-K:', '-z', codec, '-X', 'acks=all', '-H', 'app=kcat', '-H', `codec=${codec}`, '-H', 'eq=a=b', '-d', 'msg'],
      );
      // The batches really went out compressed (librdkafka logs each Produce with its codec; ApiVersion >= 3 means record batches v2).
      const sentBatches = [...log.matchAll(/Produce MessageSet with (\d+) message\(s\) \(\d+ bytes, ApiVersion (\d+), MsgVersion (\d+),.*, (\w+)\)$/gm)];
      assert.ok(sentBatches.length >= PARTITIONS, `librdkafka's produce log:\n${log.slice(-3000)}`);
      assert.equal(sentBatches.reduce((n, m) => n + Number(m[1]), 0), n);
      for (const m of sentBatches) assert.ok(Number(m[2]) >= 3 && m[3] === '2', `Produce v${m[2]}, message format v${m[3]}`);
      if (codec !== 'none') {
        // librdkafka sends a batch uncompressed when compressing does not make it smaller (a batch of a few records).
        for (const m of sentBatches) assert.ok(m[4] === codec || m[4] === 'uncompressed', m[0]);
        const compressed = sentBatches.filter((m) => m[4] === codec).reduce((k, m) => k + Number(m[1]), 0);
        assert.ok(compressed >= 0.9 * n, `only ${compressed} of ${n} records went out ${codec}-compressed`);
      }

      const got = await consumeAll(topic);
      assert.equal(got.length, n, 'record count');
      assertDenseOffsets(got, codec);
      const parts = byPartition(got);
      assert.equal(parts.size, PARTITIONS, `records spread over all ${PARTITIONS} partitions (keys hash to partitions)`);
      // Every record back exactly once: same key, value and headers.
      for (const r of got) assert.equal(r.headers, `app=kcat,codec=${codec},eq=a=b`);
      const key = (r: { key: string; value: string }) => `${r.key}\u0000${r.value}`;
      assert.deepEqual(got.map(key).sort(), sent.map(key).sort());
      // One key, one partition; and within a partition the producer's order.
      const keyPartition = new Map<string, number>();
      for (const r of got) {
        const p = keyPartition.get(r.key);
        assert.ok(p === undefined || p === r.partition, `key ${r.key} in partitions ${p} and ${r.partition}`);
        keyPartition.set(r.key, r.partition);
      }
      for (const [p, rs] of parts) {
        const expected = sent.filter((s) => keyPartition.get(s.key) === p).map((s) => s.value);
        assert.deepEqual(
          rs.map((r) => r.value),
          expected,
          `partition ${p} order`,
        );
      }
      // The high watermarks agree with what was consumed.
      assert.deepEqual(
        await endOffsets(topic),
        Array.from({ length: PARTITIONS }, (_, p) => parts.get(p)?.length ?? 0),
      );
    });
  }

  it('null keys and values (-Z), and 900 KB records', async () => {
    const topic = 'kcat-null-big';
    await produce(topic, ['tomb:', ':no-key', 'k:v'], ['-K:', '-Z', '-p', '0']);
    const { stdout } = await kcat(['-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-Z', '-f', '%o|%k|%s|%K|%S\\n']);
    assert.equal(stdout, '0|tomb|NULL|4|-1\n1|NULL|no-key|-1|6\n2|k|v|1|1\n');

    const big = ['a', 'b', 'c'].map((ch) => ch.repeat(900_000));
    await produce(
      'kcat-big',
      big.map((v, i) => `big${i}:${v}`),
      ['-K:', '-p', '0', '-z', 'none'],
    );
    // fetch.message.max.bytes below the record size: the broker still returns a whole first batch.
    const got = await consumeAll('kcat-big', ['-X', 'fetch.message.max.bytes=100000']);
    assert.deepEqual(
      got.map((r) => [r.offset, r.key, r.value.length, r.value[0]]),
      [
        [0, 'big0', 900_000, 'a'],
        [1, 'big1', 900_000, 'b'],
        [2, 'big2', 900_000, 'c'],
      ],
    );
    assert.equal(got[1]!.value, big[1]);
  });

  it('offsets: -o -2 (last two), -o <n>, -o s@<ts>, and -Q by timestamp', async () => {
    const topic = 'kcat-offsets';
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => `a${i}`),
      ['-p', '0'],
    );
    await new Promise((r) => setTimeout(r, 50));
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => `b${i}`),
      ['-p', '0'],
    );
    await produce(
      topic,
      Array.from({ length: 5 }, (_, i) => `p1-${i}`),
      ['-p', '1'],
    );

    const withTs = await kcat(['-C', '-t', topic, '-p', '0', '-e', '-q', '-o', 'beginning', '-f', '%o %T %s\\n']);
    const rows = withTs.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([o, t, s]) => ({ offset: Number(o), ts: Number(t), value: s! }));
    assert.deepEqual(
      rows.map((r) => r.value),
      [...Array.from({ length: 10 }, (_, i) => `a${i}`), ...Array.from({ length: 10 }, (_, i) => `b${i}`)],
    );
    const lastA = rows[9]!.ts;
    const firstB = rows[10]!.ts;
    assert.ok(firstB > lastA, `the second batch is later (${firstB} > ${lastA})`);
    assert.ok(Math.abs(firstB - Date.now()) < 60_000, `record timestamps are the producer's clock (${firstB})`);

    // -o -2: the last two of each partition.
    const last2 = await kcat(['-C', '-t', topic, '-e', '-q', '-o', '-2', '-f', '%p %o %s\\n']);
    assert.deepEqual(last2.stdout.trim().split('\n').sort(), ['0 18 b8', '0 19 b9', '1 3 p1-3', '1 4 p1-4']);
    // -o <n> on one partition, with a count.
    const from = await kcat(['-C', '-t', topic, '-p', '0', '-o', '7', '-c', '4', '-q', '-f', '%o %s\\n']);
    assert.equal(from.stdout, '7 a7\n8 a8\n9 a9\n10 b0\n');
    // -o s@<ts>: from the first record at or after the timestamp.
    const fromTs = await kcat(['-C', '-t', topic, '-p', '0', '-e', '-q', '-o', `s@${firstB}`, '-f', '%o %s\\n']);
    assert.deepEqual(
      fromTs.stdout.trim().split('\n'),
      Array.from({ length: 10 }, (_, i) => `${10 + i} b${i}`),
    );

    // -Q: ListOffsets by timestamp, and the logical -1 (end) / -2 (beginning).
    assert.equal(await queryOffset(topic, 0, firstB), 10);
    assert.equal(await queryOffset(topic, 0, rows[0]!.ts), 0);
    assert.equal(await queryOffset(topic, 0, rows[0]!.ts - 3_600_000), 0);
    assert.equal(await queryOffset(topic, 0, rows[19]!.ts + 3_600_000), -1, 'no record that late');
    assert.equal(await queryOffset(topic, 0, -1), 20);
    assert.equal(await queryOffset(topic, 0, -2), 0);
    assert.equal(await queryOffset(topic, 1, -1), 5);
    assert.equal(await queryOffset(topic, 2, -1), 0);
    const text = await kcat(['-Q', '-t', `${topic}:0:${firstB}`]);
    assert.match(text.stdout, new RegExp(`${topic} \\[0\\] offset 10`));

    // -o end: a consumer at the end (a long-polling Fetch) gets records produced afterwards, promptly.
    const tail = new Kcat(['-b', broker(), '-C', '-t', topic, '-p', '1', '-o', 'end', '-c', '3', '-q', '-d', 'fetch', '-f', '%o %s\\n']);
    await tail.waitUntil('the consumer fetching at the end offset', () => new RegExp(`Fetch topic ${topic} \\[1\\] at offset 5`).test(tail.stderr));
    const producedAt = Date.now();
    await produce(topic, ['t0', 't1', 't2'], ['-p', '1']);
    assert.equal((await tail.exit()).code, 0, tail.describe());
    assert.equal(tail.stdout, '5 t0\n6 t1\n7 t2\n');
    assert.ok(Date.now() - producedAt < 3000, `the waiting fetch answered within ${Date.now() - producedAt} ms`);
  });

  it('idempotent producer (-X enable.idempotence=true): a producer id, many in-flight batches, no duplicates', async () => {
    const topic = 'kcat-idempotent';
    const n = 5000;
    const args = ['-K:', '-z', 'lz4', '-X', 'enable.idempotence=true', '-X', 'batch.num.messages=100', '-X', 'max.in.flight=5', '-X', 'linger.ms=2', '-d', 'eos'];
    const lines = (run: number) => Array.from({ length: n }, (_, i) => `k${i % 13}:r${run}-${i}`);
    // Two producer sessions: each gets its own producer id and starts its sequences at 0.
    const pids: string[] = [];
    for (const run of [1, 2]) {
      const stderr = await produce(topic, lines(run), args);
      const m = /Acquired PID\{Id:(\d+),Epoch:(\d+)\}/.exec(stderr);
      assert.ok(m, `no producer id acquired (InitProducerId):\n${stderr.slice(-3000)}`);
      pids.push(m[1]!);
      assert.doesNotMatch(stderr, /OUT_OF_ORDER|DUPLICATE_SEQ|fatal|Fatal/, stderr.slice(-3000));
    }
    assert.notEqual(pids[0], pids[1], 'each session has its own producer id');

    const got = await consumeAll(topic);
    assert.equal(got.length, 2 * n);
    assertDenseOffsets(got, 'idempotent');
    const values = got.map((r) => r.value);
    assert.equal(new Set(values).size, values.length, 'no duplicates');
    // Per key (one partition each), the producer's order.
    const perKey = new Map<string, string[]>();
    for (const r of got) perKey.set(r.key, [...(perKey.get(r.key) ?? []), r.value]);
    for (const [k, vs] of perKey) {
      const expected = [1, 2].flatMap((run) => lines(run).filter((l) => l.startsWith(`${k}:`)).map((l) => l.slice(k.length + 1)));
      assert.deepEqual(vs, expected, `order of key ${k}`);
    }
  });

  /** kcat against the SASL_PLAINTEXT listener. */
  function saslArgs(mechanism: string, password = SASL_PASSWORD): string[] {
    return ['-b', `127.0.0.1:${saslPort}`, '-X', 'security.protocol=SASL_PLAINTEXT', '-X', `sasl.mechanisms=${mechanism}`, '-X', `sasl.username=${SASL_USER}`, '-X', `sasl.password=${password}`];
  }

  async function saslRoundTrip(mechanism: string): Promise<void> {
    const topic = `kcat-sasl-${mechanism.toLowerCase()}`;
    const p = new Kcat([...saslArgs(mechanism), '-P', '-t', topic, '-K:', '-p', '0'], 'k1:v1\nk2:v2\n');
    assert.equal((await p.exit()).code, 0, p.describe());
    assert.doesNotMatch(p.stderr, /ERROR|[Ff]ail/, p.describe());
    const c = new Kcat([...saslArgs(mechanism), '-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-f', '%o %k %s\\n']);
    assert.equal((await c.exit()).code, 0, c.describe());
    assert.equal(c.stdout, '0 k1 v1\n1 k2 v2\n');
    // A wrong password is refused.
    const bad = new Kcat([...saslArgs(mechanism, 'wrong'), '-L', '-m', '1']);
    const { code } = await bad.exit();
    assert.notEqual(code, 0, bad.describe());
    assert.match(bad.stderr, /SASL authentication error/, bad.describe());
  }

  it('SASL_PLAINTEXT listener, PLAIN: a user from meta produces and consumes; a wrong password is refused', async () => {
    await saslRoundTrip('PLAIN');
  });

  // librdkafka before 2.10 (Debian: 2.0.2) echoes the nonce with its own nonce in front; Kafka (and we) accept a nonce ending with the server's.
  it('SASL_PLAINTEXT listener, SCRAM-SHA-256: a user from meta produces and consumes; a wrong password is refused', async () => {
    await saslRoundTrip('SCRAM-SHA-256');
  });

  for (const strategy of ['range,roundrobin', 'cooperative-sticky'] as const) {
    const cooperative = strategy === 'cooperative-sticky';
    it(`balanced consumer group (-G, ${strategy}): two members share 4 partitions, the survivor takes over, offsets are committed`, async () => {
      const topic = `kcat-group-${cooperative ? 'coop' : 'eager'}`;
      const group = `${topic}-g`;
      // Create the topic (4 partitions) before the consumers subscribe: a producer's Metadata request auto-creates it.
      assert.match((await kcat(['-L', '-t', topic])).stdout, new RegExp(`topic "${topic}" with ${PARTITIONS} partitions`));
      const member = () =>
        new Kcat([
          '-b',
          broker(),
          '-G',
          group,
          '-u',
          '-f',
          FORMAT,
          '-X',
          `partition.assignment.strategy=${strategy}`,
          '-X',
          'auto.offset.reset=earliest',
          '-X',
          'session.timeout.ms=6000',
          '-X',
          'heartbeat.interval.ms=300',
          '-X',
          'auto.commit.interval.ms=500',
          topic,
        ]);
      const all4 = Array.from({ length: PARTITIONS }, (_, p) => p);

      const c1 = member();
      await c1.waitUntil('c1 assigned all partitions', () => c1.assignment(topic)?.length === PARTITIONS);
      const c2 = member();
      const shared = () => {
        const a1 = c1.assignment(topic);
        const a2 = c2.assignment(topic);
        return a1 !== undefined && a2 !== undefined && a1.length > 0 && a2.length > 0 && [...a1, ...a2].sort().join() === all4.join();
      };
      await c2.waitUntil('both members assigned disjoint partitions', shared, 30_000);
      const a1 = c1.assignment(topic)!;
      const a2 = c2.assignment(topic)!;
      assert.equal(a1.length, 2, `c1 has half: ${a1}`);
      assert.equal(a2.length, 2, `c2 has half: ${a2}`);
      if (cooperative) {
        // Incremental: c1 gave up only the two partitions c2 got, never its whole assignment.
        const revoked = c1.rebalances(topic).filter((r) => r.kind === 'incremental-revoke');
        assert.deepEqual(
          revoked.flatMap((r) => r.partitions).sort(),
          a2,
          `c1 revoked only what c2 got: ${JSON.stringify(c1.rebalances(topic))}`,
        );
        assert.ok(
          c1.rebalances(topic).every((r) => r.kind.startsWith('incremental')),
          'COOPERATIVE rebalance protocol',
        );
      }

      // Records to every partition; together the members get each exactly once, each only from its own partitions.
      const batch1 = Array.from({ length: 2000 }, (_, i) => `key-${i % 50}:g1-${i}`);
      await produce(topic, batch1, ['-K:']);
      const seen = () => parseRecords(c1.stdout).length + parseRecords(c2.stdout).length;
      await c1.waitUntil('the members consumed batch 1', () => seen() >= batch1.length).catch((err: Error) => {
        throw new Error(`${err.message}\nother member: ${c2.describe()}`);
      });
      await new Promise((r) => setTimeout(r, 300));
      const r1 = parseRecords(c1.stdout);
      const r2 = parseRecords(c2.stdout);
      for (const r of r1) assert.ok(a1.includes(r.partition), `c1 got a record of partition ${r.partition}, assigned ${a1}`);
      for (const r of r2) assert.ok(a2.includes(r.partition), `c2 got a record of partition ${r.partition}, assigned ${a2}`);
      assert.deepEqual(
        [...r1, ...r2].map((r) => `${r.key}:${r.value}`).sort(),
        [...batch1].sort(),
      );

      // c1 leaves (SIGINT: kcat commits and sends LeaveGroup); c2 takes over all four partitions.
      const c2Before = r2.length;
      process.kill(c1.child.pid!, 'SIGINT');
      assert.equal((await c1.exit()).code, 0, c1.describe());
      await c2.waitUntil('c2 assigned all partitions', () => c2.assignment(topic)?.join() === all4.join(), 30_000);
      if (cooperative) assert.ok(!c2.rebalances(topic).some((r) => r.kind === 'incremental-revoke'), 'c2 kept its partitions throughout');
      const batch2 = Array.from({ length: 1000 }, (_, i) => `key-${i % 50}:g2-${i}`);
      await produce(topic, batch2, ['-K:']);
      await c2.waitUntil('c2 consumed batch 2', () => parseRecords(c2.stdout).length >= c2Before + batch2.length);
      await new Promise((r) => setTimeout(r, 300));
      const after2 = parseRecords(c2.stdout).slice(c2Before);
      // Only the new records: c1's partitions resume at c1's committed offsets.
      assert.deepEqual(
        after2.map((r) => `${r.key}:${r.value}`).sort(),
        [...batch2].sort(),
      );
      assert.deepEqual([...new Set(after2.map((r) => r.partition))].sort(), all4, 'c2 consumes from every partition');

      process.kill(c2.child.pid!, 'SIGINT');
      assert.equal((await c2.exit()).code, 0, c2.describe());

      // The committed offsets are the end offsets.
      const ends = await endOffsets(topic);
      assert.equal(
        ends.reduce((a, b) => a + b, 0),
        batch1.length + batch2.length,
      );
      const admin = kafkaClient(broker()).admin();
      await admin.connect();
      try {
        const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        assert.ok(committed);
        assert.deepEqual(
          committed.partitions.map((p) => [p.partition, Number(p.offset)]).sort((a, b) => a[0]! - b[0]!),
          ends.map((e, p) => [p, e]),
        );
        const groups = await admin.describeGroups([group]);
        assert.equal(groups.groups[0]?.state, 'Empty');
      } finally {
        await admin.disconnect();
      }

      // A new member of the group resumes at the committed offsets: nothing left to read.
      const again = await kcat(['-G', group, '-e', '-f', FORMAT, '-X', `partition.assignment.strategy=${strategy}`, '-X', 'auto.offset.reset=earliest', topic]);
      assert.deepEqual(parseRecords(again.stdout), []);
    });
  }
});
