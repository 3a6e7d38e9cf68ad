import { VERSION } from '../common/package-info.js';

const USAGE = `usage: robust-bench <protocol> <workload> [options]

Load generator for RobustMQ-TS and its peers. The MQTT workloads
(conn, pub, sub, pubsub) and Kafka workloads (produce, consume) arrive with
the benchmark issue; this build only prints this help.
`;

const args = process.argv.slice(2);
if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write(`robust-bench ${VERSION}\n`);
} else {
  process.stdout.write(USAGE);
  if (args.length > 0 && !args.includes('--help') && !args.includes('-h')) {
    process.stderr.write(`robust-bench: no workloads in this build yet\n`);
    process.exitCode = 2;
  }
}
