/**
 * MQTT codec micro-benchmark: decode and encode rates of a QoS 1 PUBLISH with a 100-byte
 * payload (topic "sensors/building-7/floor-3/temperature", 38 bytes), at v4 and v5
 * (v5 plain = property length 0; v5+props = Message Expiry Interval + one user property),
 * ours against mqtt-packet (the codec of mqtt.js and aedes) on the same bytes.
 *
 *   decode            a stream of 1000 such packets cut into 64 KiB chunks (as a socket
 *                     delivers them, so some packets straddle chunks), pushed and drained;
 *                     mqtt-packet: parser.parse(chunk) with a 'packet' listener.
 *   encode            encode(packet, level) per packet / mqtt-packet generate(packet, opts).
 *   encode fan-out    one message to 10 subscribers: preparePublish once, then
 *                     encodePublish per subscriber (packet id differs); rate per delivery.
 *   header fan-out    as above with encodePublishHeader (the payload is written separately).
 *
 * Each case runs --seconds (default 2) after a 0.5 s warm-up. "B/op" is the memory
 * allocated per operation (JS heap + ArrayBuffers, measured between GCs), payloads and
 * output buffers included.
 * Prints a table and, last, one JSON line.
 *
 *   npm run build && node dist/bench/mqtt-codec.js [--seconds 2] [--case v4|v5|v5+props]
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import mqttPacket from 'mqtt-packet';
import type { IPublishPacket } from 'mqtt-packet';
import { MqttDecoder, encode, encodePublish, encodePublishHeader, preparePublish } from '../src/broker/mqtt/codec/index.js';
import type { Packet, Properties, ProtocolLevel, PublishPacket } from '../src/broker/mqtt/codec/index.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, case: { type: 'string' } } });
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${args.seconds}`);

// A gc() for measuring allocation (the flag can be set at run time; the function is taken from a new context).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Heap bytes allocated per operation: after a full GC, run `batch` a few times and read
 * heapUsed + arrayBuffers growth (small enough to stay inside the young generation; the
 * largest of 5 tries, since a scavenge in between can only make a try look smaller).
 */
function allocated(batch: () => void, opsPerBatch: number): number {
  const reps = Math.max(1, Math.floor(2000 / opsPerBatch));
  let best = 0;
  for (let t = 0; t < 5; t++) {
    gc();
    const m0 = process.memoryUsage();
    for (let i = 0; i < reps; i++) batch();
    const m1 = process.memoryUsage();
    best = Math.max(best, (m1.heapUsed - m0.heapUsed + m1.arrayBuffers - m0.arrayBuffers) / (reps * opsPerBatch));
  }
  return best;
}

/** Runs `batch` (which does `opsPerBatch` operations) repeatedly; returns ops/s and bytes allocated per op. */
function measure(batch: () => void, opsPerBatch: number): { rate: number; bytes: number } {
  const warm = performance.now() + 500;
  while (performance.now() < warm) batch();
  const bytes = allocated(batch, opsPerBatch);
  let ops = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 10; i++) batch();
    ops += 10 * opsPerBatch;
    now = performance.now();
  }
  return { rate: ops / ((now - t0) / 1000), bytes };
}

const TOPIC = 'sensors/building-7/floor-3/temperature';
const payload = Buffer.alloc(100);
for (let i = 0; i < payload.length; i++) payload[i] = (i * 37 + 11) & 0xff;
const PROPS: Properties = { messageExpiryInterval: 3600, userProperties: [['trace-id', '4bf92f3577b34da6']] };

interface Case {
  name: string;
  level: ProtocolLevel;
  props: Properties | undefined;
}
const cases: Case[] = [
  { name: 'v4', level: 4, props: undefined },
  { name: 'v5', level: 5, props: undefined },
  { name: 'v5+props', level: 5, props: PROPS },
];

function ours(c: Case, packetId: number): PublishPacket {
  return { type: 'publish', topic: TOPIC, payload, qos: 1, retain: false, dup: false, packetId, properties: c.props };
}
function theirs(c: Case, packetId: number): IPublishPacket {
  const p: IPublishPacket = { cmd: 'publish', topic: TOPIC, payload, qos: 1, retain: false, dup: false, messageId: packetId };
  if (c.props) p.properties = { messageExpiryInterval: 3600, userProperties: { 'trace-id': '4bf92f3577b34da6' } };
  return p;
}

const STREAM_PACKETS = 1000;
const CHUNK = 64 * 1024;
const FANOUT = 10;

interface Row {
  case: string;
  what: string;
  ours: number;
  oursBytes: number;
  theirs?: number;
  theirsBytes?: number;
}
const rows: Row[] = [];
const fmtRate = (r: number) => `${(r / 1e6).toFixed(2)} M/s`;

for (const c of cases) {
  if (args.case !== undefined && args.case !== c.name) continue;
  const one = encode(ours(c, 1), c.level);
  const stream = Buffer.concat(Array.from({ length: STREAM_PACKETS }, (_, i) => encode(ours(c, (i % 65535) + 1), c.level)));
  const chunks: Buffer[] = [];
  for (let o = 0; o < stream.length; o += CHUNK) chunks.push(stream.subarray(o, o + CHUNK));

  // sanity: both decoders agree on the stream, both encoders on the bytes
  {
    const d = new MqttDecoder({ maxPacketSize: 1 << 20, protocolLevel: c.level });
    let n = 0;
    for (const ch of chunks) {
      d.push(ch);
      for (let p: Packet | undefined = d.next(); p !== undefined; p = d.next()) n++;
    }
    const parser = mqttPacket.parser({ protocolVersion: c.level });
    let m = 0;
    parser.on('packet', () => m++);
    for (const ch of chunks) parser.parse(ch);
    if (n !== STREAM_PACKETS || m !== STREAM_PACKETS) throw new Error(`decoded ${n} / ${m} of ${STREAM_PACKETS}`);
    const g = mqttPacket.generate(theirs(c, 1), { protocolVersion: c.level });
    if (!c.props && !g.equals(one)) throw new Error('encoders disagree');
  }

  // decode
  const dec = new MqttDecoder({ maxPacketSize: 1 << 20, protocolLevel: c.level });
  let sink = 0;
  const oursDecode = measure(() => {
    for (const ch of chunks) {
      dec.push(ch);
      for (let p = dec.next(); p !== undefined; p = dec.next()) sink += (p as PublishPacket).payload.length;
    }
  }, STREAM_PACKETS);
  const parser = mqttPacket.parser({ protocolVersion: c.level });
  parser.on('packet', (p) => (sink += (p as IPublishPacket).payload.length));
  const theirDecode = measure(() => {
    for (const ch of chunks) parser.parse(ch);
  }, STREAM_PACKETS);
  rows.push({ case: c.name, what: 'decode', ours: oursDecode.rate, oursBytes: oursDecode.bytes, theirs: theirDecode.rate, theirsBytes: theirDecode.bytes });

  // encode, one packet at a time
  const pkts = Array.from({ length: 100 }, (_, i) => ours(c, i + 1));
  const tpkts = Array.from({ length: 100 }, (_, i) => theirs(c, i + 1));
  const opts = { protocolVersion: c.level };
  const oursEncode = measure(() => {
    for (let i = 0; i < 100; i++) sink += encode(pkts[i]!, c.level).length;
  }, 100);
  const theirEncode = measure(() => {
    for (let i = 0; i < 100; i++) sink += mqttPacket.generate(tpkts[i]!, opts).length;
  }, 100);
  rows.push({ case: c.name, what: 'encode', ours: oursEncode.rate, oursBytes: oursEncode.bytes, theirs: theirEncode.rate, theirsBytes: theirEncode.bytes });

  // fan-out: one message, FANOUT deliveries (packet ids differ), prepared once
  let pid = 1;
  const delivery = { qos: 1 as const, retain: false, packetId: 1 };
  const fan = measure(() => {
    const m = preparePublish(TOPIC, payload, c.props);
    for (let i = 0; i < FANOUT; i++) {
      delivery.packetId = pid = pid === 65535 ? 1 : pid + 1;
      sink += encodePublish(m, c.level, delivery).length;
    }
  }, FANOUT);
  rows.push({ case: c.name, what: `encode fan-out x${FANOUT}`, ours: fan.rate, oursBytes: fan.bytes });
  const fanH = measure(() => {
    const m = preparePublish(TOPIC, payload, c.props);
    for (let i = 0; i < FANOUT; i++) {
      delivery.packetId = pid = pid === 65535 ? 1 : pid + 1;
      sink += encodePublishHeader(m, c.level, delivery).length;
    }
  }, FANOUT);
  rows.push({ case: c.name, what: `header fan-out x${FANOUT}`, ours: fanH.rate, oursBytes: fanH.bytes });
  if (sink === 42) console.log('');
}

console.log(`MQTT codec: QoS 1 PUBLISH, ${payload.length}-byte payload, ${TOPIC.length}-byte topic; Node ${process.version}; ${seconds} s per case`);
console.log('case      operation                   ours   B/op   mqtt-packet   B/op   speed-up');
for (const r of rows) {
  const theirs = r.theirs !== undefined ? `${fmtRate(r.theirs).padStart(13)} ${r.theirsBytes!.toFixed(0).padStart(6)}   ${(r.ours / r.theirs).toFixed(2)}x` : '';
  console.log(`${r.case.padEnd(9)} ${r.what.padEnd(20)} ${fmtRate(r.ours).padStart(11)} ${r.oursBytes.toFixed(0).padStart(6)} ${theirs}`);
}
const json: Record<string, number> = {};
for (const r of rows) {
  const key = `${r.case}_${r.what}`.replace(/[^a-z0-9]+/gi, '_').toLowerCase();
  json[`${key}_per_s`] = Math.round(r.ours);
  if (r.theirs !== undefined) json[`${key}_mqtt_packet_per_s`] = Math.round(r.theirs);
}
console.log(JSON.stringify(json));
