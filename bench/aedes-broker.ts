/**
 * An aedes MQTT broker on one TCP port, for bench/compare.ts: aedes (npm) with every
 * option at its default (in-memory persistence and mqemitter, concurrency 100), a plain
 * `net` server with TCP_NODELAY on every accepted socket.
 *
 *   node dist/bench/aedes-broker.js --port 1883 [--host 127.0.0.1]
 *
 * Prints "aedes listening on HOST:PORT" once it accepts connections; SIGTERM/SIGINT close
 * the server and the broker and exit 0.
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: aedes-broker --port PORT [--host HOST]\n');
  process.exit(2);
}
const host = values.host as string;

const broker = await Aedes.createBroker();
const server = createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  broker.handle(socket);
});
// Clients that vanish mid-run (the load generator stopping) are not errors worth a line each.
broker.on('clientError', () => {});
broker.on('connectionError', () => {});
server.on('error', (err) => {
  process.stderr.write(`aedes-broker: ${err.message}\n`);
  process.exit(1);
});
server.listen({ port, host }, () => process.stdout.write(`aedes listening on ${host}:${port}\n`));

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(0), 2000).unref();
  server.close();
  broker.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
