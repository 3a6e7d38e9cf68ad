/**
 * Cross-check against mqtt-packet, an independent implementation used here only as an
 * oracle: its bytes decode with ours to the same meaning, and ours parse with its parser
 * to the same meaning. "Meaning" is compared in mqtt-packet's vocabulary (mpMeaning), which
 * cannot express some details (order of user properties with different names), so both
 * sides are mapped into it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import type { Packet as MpPacket } from 'mqtt-packet';
import { decodePacketBuffer, encode } from '../../../../src/broker/mqtt/codec/index.js';
import type { Packet, ProtocolLevel } from '../../../../src/broker/mqtt/codec/index.js';
import { LEVELS, arbPacket, everyPacket, mpMeaning, runs, toMp } from './support.js';

function mpParse(bytes: Buffer, level: ProtocolLevel): MpPacket[] {
  const parser = mqttPacket.parser({ protocolVersion: level });
  const out: MpPacket[] = [];
  let error: unknown;
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => (error = e));
  parser.parse(bytes);
  if (error !== undefined) throw error;
  return out;
}

/** mqtt-packet refuses to generate some valid packets; those are skipped (and counted). */
function mpGenerate(p: Packet, level: ProtocolLevel): Buffer | undefined {
  try {
    return mqttPacket.generate(toMp(p, level), { protocolVersion: level });
  } catch {
    return undefined;
  }
}

function hasEmptyUserPropertyValue(p: Packet): boolean {
  const all = [('properties' in p ? p.properties : undefined)?.userProperties, p.type === 'connect' ? p.will?.properties?.userProperties : undefined];
  return all.some((u) => u?.some(([, v]) => v === ''));
}

const meaning = (p: Packet, level: ProtocolLevel) => mpMeaning(toMp(p, level), level);

describe('MQTT codec against mqtt-packet', () => {
  for (const level of LEVELS) {
    it(`mqtt-packet's bytes decode with ours to the same meaning, level ${level}`, () => {
      let generated = 0;
      let total = 0;
      const check = (p: Packet) => {
        total++;
        const bytes = mpGenerate(p, level);
        if (bytes === undefined) return;
        generated++;
        const ours = decodePacketBuffer(bytes, p.type === 'connect' ? undefined : level);
        assert.deepEqual(meaning(ours, level), meaning(p, level));
      };
      for (const p of everyPacket(level)) check(p);
      fc.assert(fc.property(arbPacket(level), check), { numRuns: runs(2000) });
      assert.ok(generated > total * 0.9, `mqtt-packet generated only ${generated} of ${total}`);
    });

    it(`our bytes parse with mqtt-packet to the same meaning, level ${level}`, () => {
      const check = (p: Packet) => {
        // MQTT 5 §3.15.2.1 allows AUTH with Remaining Length 0 (success, no properties);
        // mqtt-packet 9 cannot parse that form, so it is not compared here.
        if (p.type === 'auth' && p.reasonCode === 0 && p.properties === undefined) return;
        // mqtt-packet 9's parser drops a repeated user property whose first value is '' (truthiness test).
        if (hasEmptyUserPropertyValue(p)) return;
        const parsed = mpParse(encode(p, level), level);
        assert.equal(parsed.length, 1);
        assert.deepEqual(mpMeaning(parsed[0]!, level), meaning(p, level));
      };
      for (const p of everyPacket(level)) check(p);
      fc.assert(fc.property(arbPacket(level), check), { numRuns: runs(2000) });
    });
  }

  it('the same bytes as mqtt-packet for a plain QoS 1 PUBLISH and a CONNECT', () => {
    for (const level of LEVELS) {
      const pub: Packet = { type: 'publish', topic: 'a/b', payload: Buffer.from('hello'), qos: 1, retain: true, dup: false, packetId: 10 };
      assert.deepEqual(encode(pub, level), mqttPacket.generate(toMp(pub, level), { protocolVersion: level }));
      const con: Packet = { type: 'connect', protocolName: level === 3 ? 'MQIsdp' : 'MQTT', protocolLevel: level, cleanStart: true, keepAlive: 30, clientId: 'c1', username: 'u', password: Buffer.from('p') };
      assert.deepEqual(encode(con, level), mqttPacket.generate(toMp(con, level), { protocolVersion: level }));
    }
  });
});
