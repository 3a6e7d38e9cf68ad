/**
 * Test certificates made with the `openssl` CLI: a private CA, and server and client
 * certificates it signs. EC P-256 keys by default (instant to generate), PEM files.
 *
 *   const certs = await makeTestCerts(dir);
 *   // certs.caCert, certs.caKey, certs.serverCert, certs.serverKey, certs.clientCert, certs.clientKey
 *   // server: CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (extendedKeyUsage serverAuth)
 *   // client: CN=test-client (extendedKeyUsage clientAuth)
 *
 *   // more leaf certificates from the same CA (another client, another host name ...):
 *   const other = await issueCert(dir, certs, { name: 'client2', commonName: 'alice', usage: 'client' });
 *
 *   // an unrelated CA (to check that foreign certificates are refused):
 *   const rogue = await makeCa(dir, { name: 'rogue-ca', commonName: 'Rogue CA' });
 *
 * Every file is written into `dir` (which must exist). Nothing here touches the
 * system OpenSSL config: each call passes its own minimal config.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = process.env.OPENSSL_BIN ?? 'openssl';

export type KeyType = 'ec' | 'rsa';

export interface TestCerts {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface CaFiles {
  caCert: string;
  caKey: string;
}

export interface LeafFiles {
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** File name stem: `${name}.crt`, `${name}.key`. */
  name: string;
  commonName: string;
  /** Extra subject attributes, e.g. { O: 'RobustMQ', OU: 'test' }. */
  subject?: Record<string, string>;
  /** subjectAltName entries such as 'DNS:localhost', 'IP:127.0.0.1'. */
  altNames?: string[];
  usage?: 'server' | 'client' | 'both';
  days?: number;
  keyType?: KeyType;
}

export interface MakeTestCertsOptions {
  keyType?: KeyType;
  days?: number;
  serverCommonName?: string;
  serverAltNames?: string[];
  clientCommonName?: string;
}

/** A CA and a server and client certificate signed by it, written into `dir`. */
export async function makeTestCerts(dir: string, opts: MakeTestCertsOptions = {}): Promise<TestCerts> {
  const keyType = opts.keyType ?? 'ec';
  const days = opts.days ?? 3650;
  const ca = await makeCa(dir, { name: 'ca', commonName: 'RobustMQ-TS Test CA', keyType, days });
  const [server, client] = await Promise.all([
    issueCert(dir, ca, {
      name: 'server',
      commonName: opts.serverCommonName ?? 'localhost',
      altNames: opts.serverAltNames ?? ['DNS:localhost', 'IP:127.0.0.1'],
      usage: 'server',
      keyType,
      days,
    }),
    issueCert(dir, ca, {
      name: 'client',
      commonName: opts.clientCommonName ?? 'test-client',
      usage: 'client',
      keyType,
      days,
    }),
  ]);
  return {
    caCert: ca.caCert,
    caKey: ca.caKey,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

/** A self-signed CA: `${name}.crt` and `${name}.key` in `dir`. */
export async function makeCa(
  dir: string,
  opts: { name?: string; commonName?: string; keyType?: KeyType; days?: number } = {},
): Promise<CaFiles> {
  const name = opts.name ?? 'ca';
  const caKey = join(dir, `${name}.key`);
  const caCert = join(dir, `${name}.crt`);
  const cnf = join(dir, `${name}.cnf`);
  await writeFile(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = v3_ca',
      '[dn]',
      `CN = ${opts.commonName ?? 'RobustMQ-TS Test CA'}`,
      '[v3_ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  await genKey(caKey, opts.keyType ?? 'ec');
  await openssl(['req', '-new', '-x509', '-config', cnf, '-key', caKey, '-out', caCert, '-days', String(opts.days ?? 3650), '-sha256', '-set_serial', serial()], cnf);
  return { caCert, caKey };
}

/** A leaf certificate signed by `ca`: `${name}.crt` and `${name}.key` in `dir`. */
export async function issueCert(dir: string, ca: CaFiles, opts: IssueOptions): Promise<LeafFiles> {
  const key = join(dir, `${opts.name}.key`);
  const cert = join(dir, `${opts.name}.crt`);
  const csr = join(dir, `${opts.name}.csr`);
  const cnf = join(dir, `${opts.name}.cnf`);
  const usage = opts.usage ?? 'both';
  const eku = usage === 'server' ? 'serverAuth' : usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
  const dn = Object.entries({ ...(opts.subject ?? {}), CN: opts.commonName }).map(([k, v]) => `${k} = ${v}`);
  const ext = [
    'basicConstraints = critical,CA:FALSE',
    // keyEncipherment only means something for RSA key exchange
    `keyUsage = critical,digitalSignature${(opts.keyType ?? 'ec') === 'rsa' ? ',keyEncipherment' : ''}`,
    `extendedKeyUsage = ${eku}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  if (opts.altNames && opts.altNames.length > 0) ext.push(`subjectAltName = ${opts.altNames.join(',')}`);
  await writeFile(cnf, ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', ...dn, '[leaf]', ...ext, ''].join('\n'));
  await genKey(key, opts.keyType ?? 'ec');
  await openssl(['req', '-new', '-config', cnf, '-key', key, '-out', csr, '-sha256'], cnf);
  await openssl(
    [
      'x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey, '-out', cert,
      '-days', String(opts.days ?? 3650), '-sha256', '-set_serial', serial(),
      '-extfile', cnf, '-extensions', 'leaf',
    ],
    cnf,
  );
  return { cert, key };
}

async function genKey(path: string, type: KeyType): Promise<void> {
  const args =
    type === 'ec'
      ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]
      : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path];
  await openssl(args);
}

async function openssl(args: string[], conf?: string): Promise<void> {
  try {
    // OPENSSL_CONF points at our own file so a missing or unusual system config cannot interfere.
    await run(OPENSSL, args, { env: { ...process.env, ...(conf ? { OPENSSL_CONF: conf } : {}) } });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

function serial(): string {
  // positive, 64 bits
  const b = randomBytes(8);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
}
