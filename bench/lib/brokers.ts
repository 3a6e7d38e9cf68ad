/**
 * Starting and stopping the MQTT brokers the benchmarks measure, each a fresh process
 * in a fresh temp dir, optionally pinned to one CPU with taskset:
 *   robust     `node bin/robust-server start CONFIG` (see robustConfig() for every line)
 *   mosquitto  `/usr/sbin/mosquitto -c CONFIG` (see mosquittoConfig() for every line)
 *   aedes      `node dist/bench/aedes-broker.js --port P` (bench/aedes-broker.ts)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, isRunning, makeTempDir, pinned, removeTempDir, ROOT, spawnTracked, stopProcess, waitHttp200, waitTcp, withOpenFiles, type Tracked } from './processes.js';

export type BrokerKind = 'robust' | 'mosquitto' | 'aedes';

export interface RobustOptions {
  engine: 'memory' | 'file';
  /** [mqtt] max_inflight (our default 32). */
  maxInflight: number;
  /** [mqtt] max_queued_messages (our default 1000). */
  maxQueued: number;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** The built tree whose bin/robust-server runs (default: this repository). */
  root?: string;
  /** Open the Kafka listener (`[kafka] tcp_port`, a free port; off by default). */
  kafka?: boolean;
  /** [storage] flush (the engine's default, async, when not given). */
  flush?: 'sync' | 'async';
}

export interface MosquittoOptions {
  path: string;
  /** max_inflight_messages (mosquitto's default 20). */
  maxInflight: number;
  /** max_queued_messages (mosquitto's default 1000; 0 = no limit). */
  maxQueued: number;
  /** max_connections of the listener (-1 = no limit, the default); omitted when undefined. */
  maxConnections?: number;
}

export interface BrokerSpec {
  kind: BrokerKind;
  /** Pin the broker (all its threads) to this CPU with taskset; undefined = not pinned. */
  cpu?: number;
  /** Raise the broker's soft open-files limit to this many (at most the hard limit). */
  openFiles?: number;
  robust?: RobustOptions;
  mosquitto?: MosquittoOptions;
  /** Temp dir name prefix. */
  prefix?: string;
}

export interface RunningBroker extends Tracked {
  kind: BrokerKind;
  /** MQTT TCP port on 127.0.0.1. */
  port: number;
  pid: number;
  dir: string;
  /** The config file's text (robust, mosquitto) or the launcher's command line (aedes). */
  config: string;
  /** robust: the admin HTTP port (/metrics, /health). */
  httpPort?: number;
  /** robust with `kafka`: the Kafka listener's port on 127.0.0.1. */
  kafkaPort?: number;
}

export const AEDES_LAUNCHER = join(ROOT, 'dist', 'bench', 'aedes-broker.js');
export const ROBUST_SERVER_JS = join(ROOT, 'dist', 'src', 'cmd', 'robust-server.js');

export function robustConfig(dir: string, o: Pick<RobustOptions, 'engine' | 'maxInflight' | 'maxQueued' | 'flush'>, ports: { grpc: number; http: number; mqtt: number; journal: number; kafka?: number }): string {
  return `node_id = 1
roles = ["meta", "broker"]
bind_host = "127.0.0.1"
grpc_port = ${ports.grpc}
http_port = ${ports.http}
meta_addrs = { 1 = "127.0.0.1:${ports.grpc}" }
data_dir = "${join(dir, 'data')}"

[log]
level = "warn"
format = "json"

[storage]
default_engine = "${o.engine}"
${o.flush !== undefined ? `flush = "${o.flush}"\n` : ''}
[journal]
tcp_port = ${ports.journal}

[mqtt]
tcp_port = ${ports.mqtt}
ws_port = 0
tls_port = 0
wss_port = 0
max_inflight = ${o.maxInflight}
max_queued_messages = ${o.maxQueued}

[kafka]
tcp_port = ${ports.kafka ?? 0}

[rocketmq]
grpc_port = 0
`;
}

/** Every line documented: see mosquitto.conf(5) / /usr/share/doc/mosquitto/examples/mosquitto.conf. */
export function mosquittoConfig(port: number, o: Pick<MosquittoOptions, 'maxInflight' | 'maxQueued' | 'maxConnections'>): string {
  const queued =
    o.maxQueued === 0
      ? `# Per-client queue beyond the in-flight messages (default 1000; 0 = no limit). In 2.0 it
# also bounds QoS 0: a QoS 0 message is dropped when this many packets already wait to be
# written to the client. 0, so that mosquitto does not drop what the other brokers deliver.`
      : `# Per-client queue beyond the in-flight ones (default 1000). It also bounds QoS 0: a QoS 0
# message is dropped when this many packets already wait to be written to the client.`;
  const conns =
    o.maxConnections === undefined
      ? ''
      : `# Connections this listener accepts (-1 = no limit, the default; the open-files limit still applies).
max_connections ${o.maxConnections}
`;
  return `# One plain TCP listener on loopback.
listener ${port} 127.0.0.1
${conns}# No authentication (our broker's [auth] allow_anonymous default is true as well).
allow_anonymous true
# QoS 1/2 messages in flight to one client (default 20): the same cap as our [mqtt] max_inflight.
max_inflight_messages ${o.maxInflight}
${queued}
max_queued_messages ${o.maxQueued}
# Nagle off on client sockets (default false); our broker sets TCP_NODELAY on every socket.
set_tcp_nodelay true
# Sessions and messages in memory only (the default).
persistence false
# Errors and warnings to stderr only; no per-connection lines.
log_dest stderr
log_type error
log_type warning
connection_messages false
`;
}

/** The command line of a broker process, with pinning and the open-files limit applied. */
function commandLine(spec: BrokerSpec, cmd: string, argv: string[]): [string, string[]] {
  let [c, a] = spec.cpu === undefined ? [cmd, argv] : pinned(true, spec.cpu, cmd, argv);
  if (spec.openFiles !== undefined) [c, a] = withOpenFiles(spec.openFiles, c, a);
  return [c, a];
}

/**
 * Starts a broker; when one of its ports was taken between freePort() and the broker's
 * bind (another process on the machine got it first), tries again on fresh ports (3 times).
 */
export async function startBroker(spec: BrokerSpec): Promise<RunningBroker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(spec);
    } catch (err) {
      if (attempt >= 3 || !/address (already )?in use|EADDRINUSE/i.test(err instanceof Error ? err.message : String(err))) throw err;
    }
  }
}

async function startOnce(spec: BrokerSpec): Promise<RunningBroker> {
  const dir = makeTempDir(spec.prefix ?? `robust-bench-${spec.kind}-`);
  let t: Tracked | undefined;
  try {
    const port = await freePort();
    if (spec.kind === 'mosquitto') {
      const o = spec.mosquitto;
      if (!o) throw new Error('mosquitto options missing');
      const config = mosquittoConfig(port, o);
      const conf = join(dir, 'mosquitto.conf');
      writeFileSync(conf, config);
      const [cmd, argv] = commandLine(spec, o.path, ['-c', conf]);
      t = spawnTracked(cmd, argv, { cwd: dir });
      await waitTcp(port, t, 'mosquitto');
      await stillRunning(t, 'mosquitto');
      return { kind: spec.kind, port, pid: t.child.pid as number, dir, config, ...t };
    }
    if (spec.kind === 'aedes') {
      if (!existsSync(AEDES_LAUNCHER)) throw new Error(`${AEDES_LAUNCHER} missing: run npm run build`);
      const [cmd, argv] = commandLine(spec, process.execPath, [AEDES_LAUNCHER, '--port', String(port)]);
      t = spawnTracked(cmd, argv, { cwd: dir });
      await waitTcp(port, t, 'aedes');
      await stillRunning(t, 'aedes');
      return { kind: spec.kind, port, pid: t.child.pid as number, dir, config: `node dist/bench/aedes-broker.js --port ${port}`, ...t };
    }
    const o = spec.robust;
    if (!o) throw new Error('robust options missing');
    const root = o.root ?? ROOT;
    if (!existsSync(join(root, 'dist', 'src', 'cmd', 'robust-server.js'))) throw new Error(`${root} is not built: run npm run build there`);
    const ports = { grpc: await freePort(), http: await freePort(), mqtt: port, journal: await freePort(), ...(o.kafka ? { kafka: await freePort() } : {}) };
    const config = robustConfig(dir, o, ports);
    const conf = join(dir, 'node.toml');
    writeFileSync(conf, config);
    const [cmd, argv] = commandLine(spec, process.execPath, [...(o.nodeFlags ?? []), join(root, 'bin', 'robust-server'), 'start', conf]);
    t = spawnTracked(cmd, argv, { cwd: dir });
    await waitHttp200(`http://127.0.0.1:${ports.http}/health/ready`, t, 'robust-server');
    await waitTcp(port, t, 'robust-server');
    if (ports.kafka !== undefined) await waitTcp(ports.kafka, t, 'robust-server (kafka)');
    return { kind: spec.kind, port, pid: t.child.pid as number, dir, config, httpPort: ports.http, ...(ports.kafka !== undefined ? { kafkaPort: ports.kafka } : {}), ...t };
  } catch (err) {
    if (t) await stopProcess(t, 5000);
    removeTempDir(dir);
    throw err;
  }
}

/** After a listener answered: the broker is still up (a broker that failed to bind exits, and the answer came from some other process). */
async function stillRunning(t: Tracked, what: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
  if (!isRunning(t.child)) throw new Error(`${what} exited right after start\n${t.output()}`);
}

/** SIGTERM (SIGKILL after 20 s), then the broker's temp dir is removed. */
export async function stopBroker(b: RunningBroker): Promise<void> {
  await stopProcess(b);
  removeTempDir(b.dir);
}

export function mosquittoVersion(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const h = spawnSync(path, ['-h'], { encoding: 'utf8' });
  return /mosquitto version (\S+)/.exec(`${h.stdout}${h.stderr}`)?.[1] ?? 'unknown';
}

export function packageVersion(dirUnderRoot: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(ROOT, dirUnderRoot, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}
