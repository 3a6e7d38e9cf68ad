import { parseArgs } from 'node:util';
import { VERSION } from '../common/package-info.js';
import { EXIT_CONFIG, startCommand, stopCommand } from '../server/run.js';

const USAGE = `usage: robust-server <command> [config.toml]

commands:
  start [config.toml]   run a node in the foreground (no file: the default single node,
                        roles meta+broker+journal, data under ./data)
  stop  [config.toml]   stop the node started with that config (pid file in its data_dir)

options:
  -h, --help            show this help
  -v, --version         print the version

Every config key can be overridden by ROBUST_{SECTION}_{KEY} (top-level keys: ROBUST_{KEY}).
`;

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } } });
  } catch (err) {
    process.stderr.write(`robust-server: ${(err as Error).message}\n${USAGE}`);
    process.exit(EXIT_CONFIG);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`robust-server ${VERSION}\n`);
    return;
  }
  const [command, file, ...extra] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    if (!values.help && command === undefined) process.exitCode = EXIT_CONFIG;
    return;
  }
  if (extra.length > 0) {
    process.stderr.write(`robust-server: unexpected argument "${extra[0]}"\n${USAGE}`);
    process.exit(EXIT_CONFIG);
  }
  switch (command) {
    case 'start':
      void startCommand(file);
      return;
    case 'stop':
      void stopCommand(file);
      return;
    default:
      process.stderr.write(`robust-server: unknown command "${command}"\n${USAGE}`);
      process.exit(EXIT_CONFIG);
  }
}

main();
