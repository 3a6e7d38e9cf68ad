/**
 * Client side of SCRAM-SHA-256, for tests and tools (bench clients) that need
 * to drive the broker's enhanced authentication. Synchronous (pbkdf2Sync): not
 * meant for a server's event loop.
 *
 *   const c = new ScramClient('user', 'pencil');
 *   send(c.first()); const final = c.final(serverFirst); send(final);
 *   c.verifyServerFinal(serverFinal) === true
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { normalizePassword, scramKeysFromSalted } from './credentials.js';
import { escapeSaslName, hmac, xor } from './scram.js';

const GS2_HEADER = 'n,,';

export class ScramClient {
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(
    readonly username: string,
    private readonly password: string,
    readonly nonce: string = randomBytes(18).toString('base64'),
  ) {
    this.clientFirstBare = `n=${escapeSaslName(username.normalize('NFKC'))},r=${nonce}`;
  }

  /** client-first-message. */
  first(): Buffer {
    return Buffer.from(GS2_HEADER + this.clientFirstBare, 'utf8');
  }

  /** client-final-message for the server's server-first-message; throws if that is malformed or its nonce was not extended from ours. */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString('utf8');
    const attrs = new Map<string, string>();
    for (const part of text.split(',')) attrs.set(part.slice(0, 1), part.slice(2));
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || salt === undefined || !Number.isSafeInteger(iterations) || iterations < 1) throw new Error('malformed server-first-message');
    if (!nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new Error('server nonce does not extend the client nonce');
    const saltBytes = Buffer.from(salt, 'base64');
    const salted = pbkdf2Sync(normalizePassword(this.password), saltBytes, iterations, 32, 'sha256');
    const keys = scramKeysFromSalted(salted, saltBytes, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(keys.storedKey, authMessage));
    this.serverSignature = hmac(keys.serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Does the server-final-message prove the server holds our ServerKey? */
  verifyServerFinal(serverFinal: Buffer): boolean {
    const text = serverFinal.toString('utf8');
    if (!this.serverSignature || !text.startsWith('v=')) return false;
    const sig = Buffer.from(text.slice(2), 'base64');
    return sig.length === this.serverSignature.length && timingSafeEqual(sig, this.serverSignature);
  }
}
