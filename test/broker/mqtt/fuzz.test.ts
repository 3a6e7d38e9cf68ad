import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { encode } from '../../../src/broker/mqtt/codec/index.js';
import { startBroker, type TestBroker } from '../../support/mqtt.js';
import { RawClient } from '../../support/raw-mqtt.js';

const RUNS = Number(process.env['MQTT_FUZZ_RUNS'] ?? 150);

/** Random bytes, or a valid packet with some bytes flipped, after an optional valid CONNECT: the broker answers or closes, and keeps serving. */
describe('broker under garbage input', () => {
  let b: TestBroker;
  before(async () => {
    b = await startBroker();
  });
  after(async () => {
    await b.stop();
  });

  const connectBytes = (level: 4 | 5) => encode({ type: 'connect', protocolName: 'MQTT', protocolLevel: level, cleanStart: true, keepAlive: 30, clientId: 'fuzz' }, level);
  const subscribeBytes = (level: 4 | 5) =>
    encode({ type: 'subscribe', packetId: 7, subscriptions: [{ filter: 'a/+/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, level);
  const publishBytes = (level: 4 | 5) => encode({ type: 'publish', topic: 'a/b', payload: Buffer.from('xyz'), qos: 1, retain: true, dup: false, packetId: 9, ...(level === 5 ? { properties: { messageExpiryInterval: 5, userProperties: [['k', 'v']] } } : {}) }, level);

  it(`survives ${RUNS} random and mutated inputs and still serves a well-behaved client`, async () => {
    const input = fc.record({
      level: fc.constantFrom(4 as const, 5 as const),
      connectFirst: fc.boolean(),
      body: fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
        fc.record({ which: fc.constantFrom('sub', 'pub', 'conn'), flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }) }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(input, async ({ level, connectFirst, body }) => {
        const raw = await RawClient.open(b.port, level);
        if (connectFirst) raw.sendBytes(connectBytes(level));
        let bytes: Buffer;
        if (Buffer.isBuffer(body)) bytes = body;
        else {
          bytes = Buffer.from(body.which === 'sub' ? subscribeBytes(level) : body.which === 'pub' ? publishBytes(level) : connectBytes(level));
          for (const [at, v] of body.flips) bytes[at % bytes.length] = v;
        }
        raw.sendBytes(bytes);
        await new Promise((r) => setTimeout(r, 5));
        raw.close();
      }),
      { numRuns: RUNS },
    );
    const ok = await RawClient.open(b.port, 5);
    assert.equal((await ok.connect()).reasonCode, 0);
    ok.send({ type: 'pingreq' });
    await ok.next('pingresp');
    ok.close();
  });
});
