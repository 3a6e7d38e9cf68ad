/**
 * robust-bench: load generator for MQTT and Kafka brokers (ours and peers). Thin: parse
 * argv, run the workload (src/loadgen, src/loadgen/kafka), print a table or one JSON object. Exit codes: 0 done,
 * 1 the run failed (cannot connect, CONNACK refused, connection lost), 2 bad usage.
 * Ctrl-C ends the measured window early and reports; a second Ctrl-C exits at once.
 */
import { VERSION } from '../common/package-info.js';
import { RunError, UsageError } from '../loadgen/errors.js';
import { KAFKA_USAGE } from '../loadgen/kafka/options.js';
import { kafkaProgressLine, renderKafkaTable } from '../loadgen/kafka/report.js';
import { runKafkaBench } from '../loadgen/kafka/run.js';
import { USAGE, parseCommand, type ParsedCommand } from '../loadgen/options.js';
import { progressLine, renderTable } from '../loadgen/report.js';
import { runBench } from '../loadgen/run.js';

function die(message: string, code: number): never {
  process.stderr.write(`robust-bench: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let cmd: ParsedCommand;
  try {
    cmd = parseCommand(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`robust-bench: ${err.message}\n(robust-bench --help for the options)\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cmd.kind === 'help') {
    process.stdout.write(cmd.protocol === 'kafka' ? KAFKA_USAGE : USAGE);
    return;
  }
  if (cmd.kind === 'version') {
    process.stdout.write(`robust-bench ${VERSION}\n`);
    return;
  }
  const tty = process.stdout.isTTY === true;
  let drawn = false;
  const clearLine = () => {
    if (drawn) {
      process.stdout.write('\r\x1b[2K');
      drawn = false;
    }
  };
  const abort = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts > 1) {
      clearLine();
      process.exit(130);
    }
    abort.abort();
  });
  try {
    if (cmd.kind === 'run-kafka') {
      const o = cmd.options;
      const result = await runKafkaBench(o, {
        signal: abort.signal,
        ...(tty
          ? {
              onProgress: (p) => {
                const line = kafkaProgressLine(p, o.workload);
                const cols = process.stdout.columns ?? 120;
                process.stdout.write(`\r\x1b[2K${line.length >= cols ? line.slice(0, cols - 1) : line}`);
                drawn = true;
              },
            }
          : {}),
      });
      clearLine();
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(renderKafkaTable(result));
      if (o.output === 'json') for (const w of result.warnings) process.stderr.write(`robust-bench: warning: ${w}\n`);
      return;
    }
    const o = cmd.options;
    const result = await runBench(o, {
      signal: abort.signal,
      ...(tty
        ? {
            onProgress: (p) => {
              const line = progressLine(p, o.workload);
              const cols = process.stdout.columns ?? 120;
              process.stdout.write(`\r\x1b[2K${line.length >= cols ? line.slice(0, cols - 1) : line}`);
              drawn = true;
            },
          }
        : {}),
    });
    clearLine();
    if (o.output === 'json') process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(renderTable(result));
    if (o.output === 'json') for (const w of result.warnings) process.stderr.write(`robust-bench: warning: ${w}\n`);
  } catch (err) {
    clearLine();
    if (err instanceof UsageError) die(err.message, 2);
    if (err instanceof RunError) die(err.message, 1);
    die(err instanceof Error ? err.message : String(err), 1);
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => die(err instanceof Error ? err.message : String(err), 1),
);
