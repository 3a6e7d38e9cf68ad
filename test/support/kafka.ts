/**
 * A real robust-server process with the Kafka listener on a free port, for the
 * Kafka end-to-end tests (kafkajs, kcat), and kafkajs helpers.
 */
import { createRequire } from 'node:module';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { ServerProcess, removeDir, writeTestConfig, type TestNodePorts } from './server.js';

export interface KafkaNode {
  proc: ServerProcess;
  ports: TestNodePorts & { kafka: number };
  dir: string;
  file: string;
  /** 'host:port' of the Kafka listener. */
  broker: string;
  /** Stops the process (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash. */
  crash(): Promise<void>;
  /** Starts it again on the same config and data (after stop or crash). */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

/**
 * `kafka`: extra lines for the [kafka] section (the group rebalance delay is 0
 * unless set here); `extra`: further sections, e.g. `[storage]\nflush = "sync"`;
 * `mqtt`: when given, MQTT listens too (ports.mqtt) with these [mqtt] lines.
 */
export async function startKafkaNode(opts: { kafka?: string; extra?: string; env?: NodeJS.ProcessEnv; mqtt?: string } = {}): Promise<KafkaNode> {
  const kafkaLines = opts.kafka ?? '';
  const withDelay = /group_initial_rebalance_delay_ms/.test(kafkaLines) ? kafkaLines : `group_initial_rebalance_delay_ms = 0\n${kafkaLines}`;
  const { file, dir, ports } = await writeTestConfig(opts.extra ?? '', undefined, { kafka: withDelay, ...(opts.mqtt !== undefined ? { mqtt: opts.mqtt } : {}) });
  const kafkaPort = ports.kafka!;
  const start = async (): Promise<ServerProcess> => {
    const p = new ServerProcess(['start', file], opts.env ? { env: opts.env } : {});
    await p.waitReady(ports.http);
    return p;
  };
  const node: KafkaNode = {
    proc: await start(),
    ports: { ...ports, kafka: kafkaPort },
    dir,
    file,
    broker: `127.0.0.1:${kafkaPort}`,
    async stop() {
      if (node.proc.child.exitCode === null && node.proc.child.signalCode === null) {
        node.proc.child.kill('SIGTERM');
        await node.proc.waitExit(20_000);
      }
    },
    async crash() {
      await node.proc.kill();
    },
    async restart() {
      node.proc = await start();
    },
    async destroy() {
      await node.proc.kill();
      removeDir(dir);
    },
  };
  return node;
}

export function kafkaClient(broker: string, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({ brokers: [broker], clientId: 'robust-test', logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 }, ...extra });
}

/**
 * Registers snappy, lz4 and zstd codecs in kafkajs (it ships gzip only), using
 * the same libraries the broker uses; kafkajs frames nothing itself, so these
 * are the raw formats Kafka expects (snappy raw, LZ4 frame, zstd frame).
 */
export function registerKafkajsCodecs(): void {
  const require = createRequire(import.meta.url);
  const kafkajs = require('kafkajs') as { CompressionTypes: Record<string, number>; CompressionCodecs: Record<number, unknown> };
  const snappy = require('snappy') as { compressSync(b: Buffer): Buffer; uncompressSync(b: Buffer): Buffer | string };
  const lz4 = require('lz4-napi') as { compressFrameSync(b: Buffer): Buffer; decompressFrameSync(b: Buffer): Buffer };
  const zstd = require('zstd-napi') as { compress(b: Buffer): Buffer; decompress(b: Buffer): Buffer };
  const codec = (compress: (b: Buffer) => Buffer, decompress: (b: Buffer) => Buffer) => () => ({
    compress: async (encoder: { buffer: Buffer }) => compress(encoder.buffer),
    decompress: async (buffer: Buffer) => decompress(buffer),
  });
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes['Snappy']!] = codec(
    (b) => snappy.compressSync(b),
    (b) => snappy.uncompressSync(b) as Buffer,
  );
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes['LZ4']!] = codec(
    (b) => lz4.compressFrameSync(b),
    (b) => lz4.decompressFrameSync(b),
  );
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes['ZSTD']!] = codec(
    (b) => zstd.compress(b),
    (b) => zstd.decompress(b),
  );
}
