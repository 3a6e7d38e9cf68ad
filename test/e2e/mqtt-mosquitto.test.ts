/**
 * MQTT against a real robust-server with Debian's mosquitto clients (mosquitto_pub,
 * mosquitto_sub), MQTT 3.1.1 and 5.0: QoS 0/1/2 round trips, retained messages,
 * wills, persistent sessions. Skipped when mosquitto_pub is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { ServerProcess, removeDir, writeTestConfig } from '../support/server.js';

const HAVE_MOSQUITTO = spawnSync('mosquitto_pub', ['--help'], { stdio: 'ignore' }).error === undefined && spawnSync('stdbuf', ['--version'], { stdio: 'ignore' }).error === undefined;
const VERSIONS = ['mqttv311', 'mqttv5'] as const;
type Version = (typeof VERSIONS)[number];

/** mosquitto_sub output format of one message (debug lines never start with it). */
const FORMAT = 'MSG|%t|%q|%r|%p';

interface SubMessage {
  topic: string;
  qos: number;
  retain: boolean;
  payload: string;
}

/** A mosquitto_pub / mosquitto_sub process started by a test. */
class Mosquitto {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listeners: Array<() => void> = [];

  constructor(
    readonly cmd: 'mosquitto_pub' | 'mosquitto_sub',
    readonly args: string[],
    stdin?: string,
  ) {
    // stdbuf -oL: line-buffered stdout (a pipe would otherwise hold the debug and message lines until exit).
    // stdbuf execs the client, so the child's pid is the client's.
    this.child = spawn('stdbuf', ['-oL', cmd, ...args], { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      for (const l of this.listeners) l();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) =>
      this.child.on('exit', (code, signal) => {
        res({ code, signal });
        for (const l of this.listeners) l();
      }),
    );
    if (stdin !== undefined) this.child.stdin!.end(stdin);
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  messages(): SubMessage[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('MSG|'))
      .map((l) => {
        const [, topic, qos, retain, ...rest] = l.split('|');
        return { topic: topic!, qos: Number(qos), retain: retain === '1', payload: rest.join('|') };
      });
  }

  /** Waits until `cond` holds over the output so far. */
  waitUntil(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          done();
          resolve();
        } else if (!this.running && !cond()) {
          done();
          reject(new Error(`${this.cmd} exited (code ${this.child.exitCode}) before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.cmd} ${this.args.join(' ')}: timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
      };
      this.listeners.push(check);
    });
  }

  /** The broker answered SUBSCRIBE (needs -d). Resolves with the granted QoS values. */
  async subscribed(): Promise<number[]> {
    await this.waitUntil('SUBACK', () => /^Subscribed \(mid: \d+\): .*$/m.test(this.stdout));
    const m = /^Subscribed \(mid: \d+\): (.*)$/m.exec(this.stdout)!;
    return m[1]!.split(', ').map(Number);
  }

  async waitMessages(n: number, timeoutMs = 5000): Promise<SubMessage[]> {
    await this.waitUntil(`${n} messages`, () => this.messages().length >= n, timeoutMs);
    return this.messages();
  }

  async exit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error(`${this.cmd} ${this.args.join(' ')} still running after ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      await this.exited;
    }
  }
}

const running = new Set<Mosquitto>();

describe('MQTT with the mosquitto clients against robust-server', { skip: HAVE_MOSQUITTO ? false : 'mosquitto_pub/mosquitto_sub (Debian mosquitto-clients) or stdbuf not installed' }, () => {
  let cfg: Awaited<ReturnType<typeof writeTestConfig>> | undefined;
  let server: ServerProcess | undefined;
  const base = () => ['-h', '127.0.0.1', '-p', String(cfg!.ports.mqtt)];

  before(async () => {
    // writeTestConfig picks ports that were free a moment ago; if one was taken meanwhile (or
    // two picks collide), try again with new ones.
    for (let attempt = 1; ; attempt++) {
      cfg = await writeTestConfig('', undefined, { mqtt: '' });
      server = new ServerProcess(['start', cfg.file]);
      try {
        await server.waitReady(cfg.ports.http);
        break;
      } catch (err) {
        await server.kill();
        removeDir(cfg.dir);
        if (attempt >= 3 || !/also used by|address (already )?in use|EADDRINUSE/i.test(String(err))) throw err;
      }
    }
  });
  afterEach(async () => {
    await Promise.all([...running].map((m) => m.kill()));
  });
  after(async () => {
    await Promise.all([...running].map((m) => m.kill()));
    await server?.kill();
    if (cfg) removeDir(cfg.dir);
  });

  /** A subscriber that prints messages in FORMAT and debug lines (for SUBACK). */
  function sub(version: Version, args: string[]): Mosquitto {
    return new Mosquitto('mosquitto_sub', [...base(), '-V', version, '-d', '-F', FORMAT, ...args]);
  }

  /** Publishes each line of `lines` as one message (-l), over one connection; resolves when mosquitto_pub exits 0. */
  async function pub(version: Version, args: string[], lines?: string[]): Promise<void> {
    const p = new Mosquitto('mosquitto_pub', [...base(), '-V', version, ...(lines ? ['-l'] : []), ...args], lines ? lines.map((l) => `${l}\n`).join('') : undefined);
    const { code } = await p.exit();
    assert.equal(code, 0, `mosquitto_pub ${args.join(' ')} failed\nstdout: ${p.stdout}\nstderr: ${p.stderr}`);
  }

  for (const version of VERSIONS) {
    describe(version, () => {
      for (const qos of [0, 1, 2]) {
        it(`round trip at QoS ${qos}: in order, at the subscribed QoS`, async () => {
          const topic = `rt/${version}/q${qos}`;
          const s = sub(version, ['-t', topic, '-q', String(qos), '-C', '5']);
          assert.deepEqual(await s.subscribed(), [qos], 'granted QoS');
          const payloads = ['one', 'two', 'three', 'four', 'five'].map((p) => `${p}-${version}-${qos}`);
          await pub(version, ['-t', topic, '-q', String(qos)], payloads);
          const got = await s.waitMessages(5);
          assert.deepEqual(got, payloads.map((payload) => ({ topic, qos, retain: false, payload })));
          assert.equal((await s.exit()).code, 0);
          if (qos === 2) {
            assert.match(s.stdout, /received PUBREL/, 'the broker released the QoS 2 messages');
            assert.match(s.stdout, /sending PUBCOMP/);
          }
        });
      }

      it('delivers at the lower of the publish and subscription QoS', async () => {
        const s = sub(version, ['-t', `down/${version}/#`, '-q', '1', '-C', '2']);
        await s.subscribed();
        await pub(version, ['-t', `down/${version}/a`, '-q', '2', '-m', 'q2-to-q1']);
        await pub(version, ['-t', `down/${version}/b`, '-q', '0', '-m', 'q0-stays-q0']);
        const got = await s.waitMessages(2);
        assert.deepEqual(
          got.map((m) => [m.topic, m.qos, m.payload]),
          [
            [`down/${version}/a`, 1, 'q2-to-q1'],
            [`down/${version}/b`, 0, 'q0-stays-q0'],
          ],
        );
      });

      it('retained message: kept for later subscribers (retain flag set), cleared by an empty retained publish', async () => {
        const topic = `ret/${version}/state`;
        // A subscriber already there gets the live message without the retain flag.
        const live = sub(version, ['-t', topic, '-q', '1', '-C', '1']);
        await live.subscribed();
        await pub(version, ['-t', topic, '-q', '1', '-r', '-m', 'kept-value']);
        assert.deepEqual(await live.waitMessages(1), [{ topic, qos: 1, retain: false, payload: 'kept-value' }]);

        // A later subscriber (no -R) gets it at once, flagged retained.
        const later = sub(version, ['-t', topic, '-q', '1', '-C', '1']);
        assert.deepEqual(await later.waitMessages(1), [{ topic, qos: 1, retain: true, payload: 'kept-value' }]);
        assert.equal((await later.exit()).code, 0);

        // Replaced by a newer retained message.
        await pub(version, ['-t', topic, '-q', '1', '-r', '-m', 'newer-value']);
        const third = sub(version, ['-t', `ret/${version}/#`, '-q', '1', '-C', '1']);
        assert.deepEqual(await third.waitMessages(1), [{ topic, qos: 1, retain: true, payload: 'newer-value' }]);

        // Cleared (-r -n): a new subscriber gets nothing before a live marker message.
        await pub(version, ['-t', topic, '-r', '-n']);
        const afterClear = sub(version, ['-t', `ret/${version}/#`, '-q', '1', '-C', '1']);
        await afterClear.subscribed();
        await pub(version, ['-t', `ret/${version}/marker`, '-q', '1', '-m', 'marker']);
        assert.deepEqual(await afterClear.waitMessages(1), [{ topic: `ret/${version}/marker`, qos: 1, retain: false, payload: 'marker' }]);
      });

      it('will message: published when the client dies (SIGKILL), not after a normal disconnect', async () => {
        const willTopic = `will/${version}/status`;
        const watcher = sub(version, ['-t', willTopic, '-q', '1']);
        await watcher.subscribed();

        // Normal exit (-C 1 sends DISCONNECT): no will.
        const polite = sub(version, ['-t', `will/${version}/poke`, '-i', `polite-${version}`, '--will-topic', willTopic, '--will-payload', 'polite-gone', '--will-qos', '1', '-C', '1']);
        await polite.subscribed();
        await pub(version, ['-t', `will/${version}/poke`, '-m', 'bye']);
        assert.equal((await polite.exit()).code, 0);

        const victim = sub(version, ['-t', `will/${version}/other`, '-i', `victim-${version}`, '--will-topic', willTopic, '--will-payload', 'victim-gone', '--will-qos', '1']);
        await victim.subscribed();
        await victim.kill('SIGKILL');
        const got = await watcher.waitMessages(1);
        assert.deepEqual(got, [{ topic: willTopic, qos: 1, retain: false, payload: 'victim-gone' }], 'only the killed client’s will');
        // Nothing else arrives afterwards (the polite client's will was discarded, not delayed).
        await pub(version, ['-t', willTopic, '-q', '1', '-m', 'marker']);
        await watcher.waitMessages(2);
        assert.deepEqual(
          watcher.messages().map((m) => m.payload),
          ['victim-gone', 'marker'],
        );
      });

      it('persistent session (-c): QoS 1 messages published while offline arrive in order on return; a clean start drops them', async () => {
        const id = `persist-${version}`;
        const topic = `ps/${version}/jobs`;
        const first = sub(version, ['-c', '-i', id, '-q', '1', '-t', topic]);
        assert.deepEqual(await first.subscribed(), [1]);
        await first.kill('SIGTERM');

        const payloads = Array.from({ length: 10 }, (_, i) => `job-${i}`);
        await pub(version, ['-t', topic, '-q', '1'], payloads);

        // Back with -c and the same id, no new SUBSCRIBE needed: -C stops after the queued ones.
        const back = new Mosquitto('mosquitto_sub', [...base(), '-V', version, '-d', '-F', FORMAT, '-c', '-i', id, '-q', '1', '-t', topic, '-C', '10']);
        const got = await back.waitMessages(10);
        assert.deepEqual(got, payloads.map((payload) => ({ topic, qos: 1, retain: false, payload })));
        assert.equal((await back.exit()).code, 0);

        // Queued again while away, then a clean start (no -c) with the same id: the queue is gone.
        await pub(version, ['-t', topic, '-q', '1'], ['stale-1', 'stale-2']);
        const clean = sub(version, ['-i', id, '-q', '1', '-t', topic, '-C', '1']);
        await clean.subscribed();
        await pub(version, ['-t', topic, '-q', '1', '-m', 'fresh']);
        assert.deepEqual(
          (await clean.waitMessages(1)).map((m) => m.payload),
          ['fresh'],
        );
        assert.equal((await clean.exit()).code, 0);
      });
    });
  }

  it('MQTT 3.1 (-V mqttv31): round trips at QoS 0, 1 and 2; a client id over 23 characters is rejected', async () => {
    const s = new Mosquitto('mosquitto_sub', [...base(), '-V', 'mqttv31', '-d', '-F', FORMAT, '-t', 'v31/#', '-q', '2', '-C', '3']);
    assert.deepEqual(await s.subscribed(), [2]);
    for (const qos of [0, 1, 2]) {
      const p = new Mosquitto('mosquitto_pub', [...base(), '-V', 'mqttv31', '-t', `v31/q${qos}`, '-q', String(qos), '-m', `v31-${qos}`]);
      assert.equal((await p.exit()).code, 0, p.stderr);
    }
    assert.deepEqual(
      (await s.waitMessages(3)).map((m) => [m.topic, m.qos, m.payload]),
      [
        ['v31/q0', 0, 'v31-0'],
        ['v31/q1', 1, 'v31-1'],
        ['v31/q2', 2, 'v31-2'],
      ],
    );
    const longId = new Mosquitto('mosquitto_sub', [...base(), '-V', 'mqttv31', '-t', 'v31/#', '-i', 'a-client-id-of-24-chars!']);
    const { code } = await longId.exit();
    assert.equal(code, 2, `CONNACK 2 (identifier rejected): ${longId.stderr}`);
  });

  it('MQTT 5 session takeover within the will delay (session continues): the old connection sends no will', async () => {
    // MQTT 5 §3.1.3.2.2 [MQTT-3.1.3-9]: if a new Network Connection to this Session is made before the
    // Will Delay Interval has passed, the Server MUST NOT send the Will Message. A takeover with
    // Clean Start = 0 is such a new connection to the same session.
    const willTopic = 'will/v5/takeover';
    const watcher = sub('mqttv5', ['-t', willTopic, '-q', '1']);
    await watcher.subscribed();
    const first = sub('mqttv5', ['-t', 'will/v5/t1', '-c', '-i', 'takeover-keep', '-x', '30', '--will-topic', willTopic, '--will-payload', 'taken-over', '--will-qos', '1', '-D', 'will', 'will-delay-interval', '2']);
    await first.subscribed();
    const second = sub('mqttv5', ['-t', 'will/v5/t1', '-c', '-i', 'takeover-keep', '-x', '30']);
    await second.subscribed();
    await first.waitUntil('DISCONNECT 0x8E (session taken over)', () => /Received DISCONNECT \(142\)/.test(first.stdout));
    // Past the will delay: still nothing, the session lives on in the second connection.
    await new Promise((r) => setTimeout(r, 2500));
    await pub('mqttv5', ['-t', willTopic, '-q', '1', '-m', 'marker']);
    await watcher.waitMessages(1);
    assert.deepEqual(
      watcher.messages().map((m) => m.payload),
      ['marker'],
      'the taken-over connection published its will although the session continued within the will delay',
    );
  });

  it('MQTT 5 properties round trip: user properties and content type', async () => {
    const s = new Mosquitto('mosquitto_sub', [...base(), '-V', 'mqttv5', '-d', '-F', 'PROPS|%P|%C|%p', '-t', 'props/v5', '-q', '1', '-C', '1']);
    await s.subscribed();
    await pub('mqttv5', ['-t', 'props/v5', '-q', '1', '-m', 'with-props', '-D', 'publish', 'user-property', 'trace', 'abc-123', '-D', 'publish', 'content-type', 'text/plain']);
    await s.waitUntil('the message', () => /^PROPS\|/m.test(s.stdout));
    assert.match(s.stdout, /^PROPS\|trace:abc-123\|text\/plain\|with-props$/m);
  });

  it('MQTT 5 message expiry: a queued message past its expiry is not delivered to a returning session', async () => {
    const id = 'expiry-v5';
    const topic = 'exp/v5/jobs';
    const first = sub('mqttv5', ['-c', '-i', id, '-q', '1', '-t', topic]);
    await first.subscribed();
    await first.kill('SIGTERM');
    await pub('mqttv5', ['-t', topic, '-q', '1', '-m', 'short-lived', '-D', 'publish', 'message-expiry-interval', '1']);
    await pub('mqttv5', ['-t', topic, '-q', '1', '-m', 'long-lived', '-D', 'publish', 'message-expiry-interval', '600']);
    await new Promise((r) => setTimeout(r, 2100));
    const back = new Mosquitto('mosquitto_sub', [...base(), '-V', 'mqttv5', '-d', '-F', 'EXP|%E|%p', '-c', '-i', id, '-q', '1', '-t', topic, '-C', '1']);
    await back.waitUntil('a message', () => /^EXP\|/m.test(back.stdout));
    const lines = back.stdout.split('\n').filter((l) => l.startsWith('EXP|'));
    assert.equal(lines.length, 1);
    const [, remaining, payload] = lines[0]!.split('|');
    assert.equal(payload, 'long-lived', 'the expired message was dropped');
    assert.ok(Number(remaining) > 590 && Number(remaining) <= 600, `the expiry interval counts down (got ${remaining})`);
  });

  it('MQTT 5 will delay interval: the will waits, and a reconnect within the delay cancels it', async () => {
    const willTopic = 'will/v5/delayed';
    const watcher = sub('mqttv5', ['-t', willTopic, '-q', '1']);
    await watcher.subscribed();
    const willArgs = (payload: string) => ['--will-topic', willTopic, '--will-payload', payload, '--will-qos', '1', '-D', 'will', 'will-delay-interval', '2', '-x', '30'];

    // Killed and not back: the will arrives after about 2 s.
    const victim = sub('mqttv5', ['-t', 'will/v5/x', '-i', 'delayed-victim', ...willArgs('late')]);
    await victim.subscribed();
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    // Killed, but back within the delay: no will.
    const flaky = sub('mqttv5', ['-t', 'will/v5/y', '-c', '-i', 'delayed-flaky', ...willArgs('flaky-gone')]);
    await flaky.subscribed();
    await flaky.kill('SIGKILL');
    const flakyBack = sub('mqttv5', ['-t', 'will/v5/y', '-c', '-i', 'delayed-flaky', '-x', '30']);
    await flakyBack.subscribed();

    await watcher.waitMessages(1, 6000);
    const elapsed = Date.now() - killedAt;
    assert.ok(elapsed >= 1500, `the will waited for its delay (arrived after ${elapsed} ms)`);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      watcher.messages().map((m) => m.payload),
      ['late'],
      'the client that came back within the delay sent no will',
    );
  });
});
