import { parseArgs } from 'node:util';
import { AdminApiError, AdminClient, AdminUnreachableError } from '../admin/client.js';
import { renderPairs, renderTable } from '../admin/render.js';
import type { ClusterView, NodeInfo } from '../common/node-info.js';
import { VERSION } from '../common/package-info.js';

const USAGE = `usage: robust-ctl [--server host:port] [--output table|json] <command>

commands:
  node info         this node: id, roles, version, uptime, listeners, services
  cluster status    every node this node knows of, and whether it answers

options:
  -s, --server      admin address of a node (default: $ROBUST_ADMIN or 127.0.0.1:58080)
  -o, --output      table (default) or json
  -h, --help        show this help
  -v, --version     print the version
`;

type Output = 'table' | 'json';

interface Command {
  words: string[];
  run(client: AdminClient, output: Output): Promise<string>;
}

const COMMANDS: Command[] = [
  {
    words: ['node', 'info'],
    async run(client, output) {
      const info = await client.get<NodeInfo>('/api/v1/node');
      if (output === 'json') return JSON.stringify(info, null, 2) + '\n';
      return (
        renderPairs([
          ['node_id', info.node_id],
          ['cluster', info.cluster_name],
          ['roles', info.roles.join(',')],
          ['version', info.version],
          ['uptime_s', info.uptime_seconds],
          ['ready', info.ready],
          ['pid', info.pid],
        ]) +
        '\n' +
        renderTable(['LISTENER', 'PROTOCOL', 'ADDRESS'], info.listeners.map((l) => [l.name, l.protocol, l.address])) +
        '\n' +
        renderTable(['SERVICE', 'READY'], info.services.map((s) => [s.name, s.ready]))
      );
    },
  },
  {
    words: ['cluster', 'status'],
    async run(client, output) {
      const view = await client.get<ClusterView>('/api/v1/cluster');
      if (output === 'json') return JSON.stringify(view, null, 2) + '\n';
      const header = `cluster ${view.cluster_name} (members from ${view.source}, answered by node ${view.answered_by})\n\n`;
      return header + renderTable(['NODE', 'GRPC_ADDRESS', 'STATE', 'ROLES', 'VERSION', 'UPTIME_S', 'READY'], view.nodes.map((n) => [n.node_id, n.grpc_address, n.state, n.roles.join(',') || null, n.version, n.uptime_seconds, n.ready]));
    },
  },
];

function usageError(message: string): never {
  process.stderr.write(`robust-ctl: ${message}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        server: { type: 'string', short: 's' },
        output: { type: 'string', short: 'o', default: 'table' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`robust-ctl ${VERSION}\n`);
    return;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length === 0) usageError('no command given');
  const output = values.output;
  if (output !== 'table' && output !== 'json') usageError(`--output must be "table" or "json", got "${output}"`);
  const command = COMMANDS.find((c) => c.words.length === positionals.length && c.words.every((w, i) => w === positionals[i]));
  if (!command) usageError(`unknown command "${positionals.join(' ')}"`);

  const client = new AdminClient(values.server ?? process.env['ROBUST_ADMIN'] ?? '127.0.0.1:58080');
  try {
    process.stdout.write(await command.run(client, output));
  } catch (err) {
    if (err instanceof AdminUnreachableError || err instanceof AdminApiError) {
      process.stderr.write(`robust-ctl: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

void main();
