import { mkdirSync } from 'node:fs';
import { ConfigError, RobustError, errorMessage } from '../common/errors.js';
import { loadConfig, type Config } from '../common/config/index.js';
import { createLogger } from '../common/logger.js';
import { VERSION } from '../common/package-info.js';
import { removePidFile, runningPid, writePidFile } from './pidfile.js';
import { RobustNode } from './robust-node.js';

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

const FORCE_EXIT_MS = 9_500;

function fail(message: string, code: number): never {
  process.stderr.write(`robust-server: ${message}\n`);
  process.exit(code);
}

function readConfigOrExit(file: string | undefined): { config: Config; warnings: string[] } {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, EXIT_CONFIG);
    throw err;
  }
}

/** `robust-server start [file]`: run a node in the foreground until a signal or a fatal error. */
export async function startCommand(file: string | undefined): Promise<void> {
  const { config, warnings } = readConfigOrExit(file);
  const log = await createLogger({ level: config.log.level, format: config.log.format, base: { node: config.node_id } });
  for (const w of warnings) log.warn(w);

  try {
    mkdirSync(config.data_dir, { recursive: true });
    writePidFile(config.data_dir);
  } catch (err) {
    const msg = err instanceof RobustError ? err.message : `cannot use data_dir ${config.data_dir}: ${errorMessage(err)}`;
    log.fatal(msg);
    fail(msg, EXIT_FAILURE);
  }

  const exit = (code: number): never => {
    removePidFile(config.data_dir);
    process.exit(code);
  };
  const node = new RobustNode(config, log, { onFatalStop: (code) => exit(code) });

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn(`received ${signal} again; exiting now`);
      exit(EXIT_FAILURE);
    }
    signalled = true;
    log.info(`received ${signal}; stopping node ${config.node_id}`);
    setTimeout(() => {
      log.error(`node did not stop within ${FORCE_EXIT_MS} ms; exiting`);
      exit(EXIT_FAILURE);
    }, FORCE_EXIT_MS).unref();
    void node.stop().then((clean) => {
      log.info(clean ? `node ${config.node_id} stopped` : `node ${config.node_id} stopped with errors`);
      exit(clean ? EXIT_OK : EXIT_FAILURE);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', (err) => node.lifecycle.fail('process', err));
  process.on('unhandledRejection', (err) => node.lifecycle.fail('process', err));

  log.info({ version: VERSION, config: file ?? '(defaults)', roles: config.roles, data_dir: config.data_dir }, `robust-server ${VERSION} starting node ${config.node_id}`);
  try {
    await node.start();
  } catch (err) {
    if (signalled) return;
    log.fatal(`node ${config.node_id} failed to start: ${errorMessage(err)}`);
    process.stderr.write(`robust-server: ${errorMessage(err)}\n`);
    exit(EXIT_FAILURE);
  }
}

/** `robust-server stop [file]`: signal the node that owns this config's data dir and wait for it to go. */
export async function stopCommand(file: string | undefined, waitMs = 15_000): Promise<void> {
  const { config } = readConfigOrExit(file);
  const pid = runningPid(config.data_dir);
  if (pid === undefined) fail(`no running node for data_dir ${config.data_dir}`, EXIT_FAILURE);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (runningPid(config.data_dir) === undefined) {
      process.stdout.write(`stopped node ${config.node_id} (pid ${pid})\n`);
      return;
    }
  }
  fail(`node ${config.node_id} (pid ${pid}) still running after ${waitMs} ms`, EXIT_FAILURE);
}

