/**
 * Server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as a small pure state
 * machine, independent of the transport: MQTT 5 enhanced authentication
 * (authentication method 'SCRAM-SHA-256') carries the messages in the
 * authentication data of CONNECT / AUTH / CONNACK; Kafka SASL could carry the
 * same bytes.
 *
 *   client-first  ->  first()  -> server-first   (MQTT: AUTH, reason 0x18 continue)
 *   client-final  ->  final()  -> server-final   (MQTT: CONNACK success, auth data)
 *
 * One ScramServer serves one exchange. An `{ error }` result ends the exchange;
 * its value is an RFC 5802 server-error-value ('invalid-proof', ...), which a
 * transport that wants to tell the client may send as `e=<error>`.
 *
 * Supported: GS2 header 'n,,' and 'y,,' (this server offers no channel binding,
 * so 'p=' is refused), an authzid equal to the username, '=2C'/'=3D' escapes,
 * SASLprep simplified to NFKC normalization. An unknown user gets a plausible
 * server-first (a salt derived from the name with a per-process secret, so
 * repeated attempts see the same salt) and then the same 'invalid-proof' a
 * wrong password gets: the exchange does not reveal whether a user exists.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DEFAULT_SCRAM_ITERATIONS, type ScramStored } from './credentials.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** Largest client message accepted; real ones are well under 300 bytes. */
const MAX_MESSAGE = 4096;
const KEY_LEN = 32;
/** printable ASCII except ',' (RFC 5802 'printable'). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Secret for deriving fake salts of unknown users; new per process. */
const FAKE_SALT_KEY = randomBytes(32);

export type ScramLookup = (username: string) => ScramStored | undefined;
export type NonceFactory = () => string;

export type ScramFirstResult = { serverFirst: Buffer } | { error: string };
export type ScramFinalResult = { serverFinal: Buffer; username: string } | { error: string };

type Phase =
  | { readonly step: 'start' }
  | {
      readonly step: 'first-done';
      readonly username: string;
      readonly gs2Header: string;
      readonly clientFirstBare: string;
      readonly serverFirst: string;
      readonly nonce: string;
      readonly stored: ScramStored;
      /** false for an unknown user: final() runs the same computation on fake keys, then fails. */
      readonly known: boolean;
    }
  | { readonly step: 'done' };

export function defaultNonce(): string {
  return randomBytes(18).toString('base64');
}

/** '=2C' -> ',', '=3D' -> '='; undefined for any other '=' or a bare ','. */
export function unescapeSaslName(s: string): string | undefined {
  if (s.includes(',')) return undefined;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '=') {
      out += ch;
      continue;
    }
    const esc = s.slice(i + 1, i + 3);
    if (esc === '2C') out += ',';
    else if (esc === '3D') out += '=';
    else return undefined;
    i += 2;
  }
  return out;
}

export function escapeSaslName(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** SASLprep, simplified: NFKC, and no control characters. */
export function saslPrep(s: string): string | undefined {
  const n = s.normalize('NFKC');
  return n === '' || CONTROL.test(n) ? undefined : n;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decode(msg: unknown): string | undefined {
  if (!(msg instanceof Uint8Array)) return undefined;
  if (msg.length === 0 || msg.length > MAX_MESSAGE) return undefined;
  try {
    return utf8.decode(msg);
  } catch {
    return undefined;
  }
}

function strictBase64(s: string): Buffer | undefined {
  return BASE64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

/** Splits "a=1,b=2" into attributes; undefined if any part is not `<letter>=...`. */
function attributes(s: string): { name: string; value: string }[] | undefined {
  const out: { name: string; value: string }[] = [];
  for (const part of s.split(',')) {
    if (part.length < 2 || part[1] !== '=' || !/^[A-Za-z]$/.test(part[0] ?? '')) return undefined;
    out.push({ name: part[0] ?? '', value: part.slice(2) });
  }
  return out;
}

export class ScramServer {
  private phase: Phase = { step: 'start' };
  private readonly nonceFactory: NonceFactory;

  constructor(
    private readonly lookup: ScramLookup,
    nonceFactory?: NonceFactory,
  ) {
    this.nonceFactory = nonceFactory ?? defaultNonce;
  }

  /** Handles client-first-message; on success answer with `serverFirst`. */
  first(clientFirst: Buffer): ScramFirstResult {
    if (this.phase.step !== 'start') return this.end('other-error');
    const text = decode(clientFirst);
    if (text === undefined) return this.end('invalid-encoding');

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const c1 = text.indexOf(',');
    const c2 = c1 < 0 ? -1 : text.indexOf(',', c1 + 1);
    if (c2 < 0) return this.end('invalid-encoding');
    const cbindFlag = text.slice(0, c1);
    const authzPart = text.slice(c1 + 1, c2);
    if (cbindFlag.startsWith('p=')) return this.end('channel-binding-not-supported');
    if (cbindFlag !== 'n' && cbindFlag !== 'y') return this.end('invalid-encoding');
    let authzid: string | undefined;
    if (authzPart !== '') {
      if (!authzPart.startsWith('a=')) return this.end('invalid-encoding');
      authzid = unescapeSaslName(authzPart.slice(2));
      if (authzid === undefined || authzid === '') return this.end('invalid-username-encoding');
    }
    const gs2Header = text.slice(0, c2 + 1);
    const bare = text.slice(c2 + 1);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = attributes(bare);
    if (!attrs || attrs.length < 2) return this.end('invalid-encoding');
    if (attrs[0]?.name === 'm') return this.end('extensions-not-supported');
    const [user, nonceAttr] = attrs;
    if (user?.name !== 'n' || nonceAttr?.name !== 'r') return this.end('invalid-encoding');
    const rawName = unescapeSaslName(user.value);
    const username = rawName === undefined ? undefined : saslPrep(rawName);
    if (username === undefined) return this.end('invalid-username-encoding');
    if (authzid !== undefined && saslPrep(authzid) !== username) return this.end('invalid-username-encoding');
    const clientNonce = nonceAttr.value;
    if (!PRINTABLE.test(clientNonce)) return this.end('invalid-encoding');

    const serverNonce = this.nonceFactory();
    if (typeof serverNonce !== 'string' || !PRINTABLE.test(serverNonce)) return this.end('other-error');
    const nonce = clientNonce + serverNonce;

    let stored: ScramStored | undefined;
    try {
      stored = this.lookup(username);
    } catch {
      return this.end('other-error');
    }
    const known = stored !== undefined;
    const keys = stored ?? fakeStored(username);
    const serverFirst = `r=${nonce},s=${keys.salt.toString('base64')},i=${keys.iterations}`;
    this.phase = { step: 'first-done', username, gs2Header, clientFirstBare: bare, serverFirst, nonce, stored: keys, known };
    return { serverFirst: Buffer.from(serverFirst, 'utf8') };
  }

  /** Handles client-final-message; on success the user is authenticated and `serverFinal` proves the server knew the key. */
  final(clientFinal: Buffer): ScramFinalResult {
    const phase = this.phase;
    if (phase.step !== 'first-done') return this.end('other-error');
    const text = decode(clientFinal);
    if (text === undefined) return this.end('invalid-encoding');

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) return this.end('invalid-encoding');
    const withoutProof = text.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (!attrs || attrs.length < 2) return this.end('invalid-encoding');
    const [cb, nonceAttr] = attrs;
    if (cb?.name !== 'c' || nonceAttr?.name !== 'r') return this.end('invalid-encoding');

    const cbind = strictBase64(cb.value);
    if (!cbind) return this.end('invalid-encoding');
    // Without channel binding, c= carries exactly the gs2 header of client-first.
    if (!cbind.equals(Buffer.from(phase.gs2Header, 'utf8'))) return this.end('channel-bindings-dont-match');
    // RFC 5802 wants the nonce echoed exactly; librdkafka before 2.x sent its own
    // nonce in front of it (so the client part twice). Kafka accepts a nonce that
    // ends with the server's, and so do we: the proof covers the message as sent.
    const got = Buffer.from(nonceAttr.value, 'utf8');
    const want = Buffer.from(phase.nonce, 'utf8');
    if (got.length < want.length || !constantTimeEqual(got.subarray(got.length - want.length), want)) return this.end('invalid-proof');

    const proof = strictBase64(text.slice(proofAt + 3));
    if (!proof || proof.length !== KEY_LEN) return this.end('invalid-encoding');

    const stored = phase.stored;
    const authMessage = `${phase.clientFirstBare},${phase.serverFirst},${withoutProof}`;
    const clientSignature = hmac(stored.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    if (!constantTimeEqual(sha256(clientKey), stored.storedKey) || !phase.known) return this.end('invalid-proof');

    const serverSignature = hmac(stored.serverKey, authMessage);
    this.phase = { step: 'done' };
    return { serverFinal: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'), username: phase.username };
  }

  private end(error: string): { error: string } {
    this.phase = { step: 'done' };
    return { error };
  }
}

/** Stable per user name and process, indistinguishable in shape from a real entry; no password matches it. */
function fakeStored(username: string): ScramStored {
  return {
    salt: hmac(FAKE_SALT_KEY, `salt:${username}`).subarray(0, 16),
    iterations: DEFAULT_SCRAM_ITERATIONS,
    storedKey: hmac(FAKE_SALT_KEY, `stored:${username}`),
    serverKey: hmac(FAKE_SALT_KEY, `server:${username}`),
  };
}

function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
