/**
 * Stored user credentials: one string that lets the same user log in with a
 * plain username/password (MQTT CONNECT, SASL PLAIN) or with SCRAM-SHA-256
 * (MQTT 5 enhanced auth, SASL SCRAM), without the broker ever keeping the
 * password. The string goes into the meta user record's `passwordHash` field
 * (at most 1024 characters; a default credential is about 250).
 *
 * Format (version 1), fields separated by '$', base64 = standard alphabet with
 * padding (it never contains '$' or ':'):
 *
 *   rmq1$scrypt:<N>:<r>:<p>:<salt>:<hash>$scram-sha-256:<i>:<salt>:<StoredKey>:<ServerKey>
 *
 *   scrypt part   N, r, p are the scrypt cost parameters (decimal); <hash> is
 *                 scrypt(NFKC(password), salt, 32 bytes).
 *   scram part    i is the PBKDF2 iteration count (decimal, default 4096, the
 *                 minimum RFC 7677 recommends); per RFC 5802:
 *                   SaltedPassword = PBKDF2-HMAC-SHA-256(NFKC(password), salt, i, 32)
 *                   StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
 *                   ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * The password is normalized with NFKC before hashing on both paths: a
 * simplification of SASLprep (RFC 4013), which SCRAM asks for, applied to
 * plain logins too so a password typed either way verifies the same.
 *
 * Parsing is strict and bounded (cost parameters are capped), so a corrupt or
 * hostile credential string can neither crash the verifier nor make it burn
 * unbounded CPU or memory: it simply verifies nothing.
 */
import { createHash, createHmac, pbkdf2, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** What a SCRAM-SHA-256 server needs to know about a user (RFC 5802 §3). */
export interface ScramStored {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export interface CreateCredentialOptions {
  /** SCRAM PBKDF2 iteration count; default 4096 (RFC 7677's minimum). */
  iterations?: number;
  /** SCRAM salt; default 16 random bytes. Given only to reproduce test vectors. */
  scramSalt?: Buffer;
  /** scrypt cost N (a power of two); default 16384. */
  scryptN?: number;
  /** scrypt block size r; default 8. */
  scryptR?: number;
  /** scrypt parallelization p; default 1. */
  scryptP?: number;
}

export const CREDENTIAL_PREFIX = 'rmq1';
export const DEFAULT_SCRAM_ITERATIONS = 4096;
const DEFAULT_SCRYPT = { N: 16_384, r: 8, p: 1 } as const;
const KEY_LEN = 32;
const SALT_LEN = 16;

// Bounds accepted when reading a credential (and when creating one).
const MIN_ITERATIONS = 1;
const MAX_ITERATIONS = 10_000_000;
const MAX_SCRYPT_N = 1 << 20;
const MAX_SCRYPT_R = 32;
const MAX_SCRYPT_P = 16;
/** scrypt needs about 128 * N * r bytes; stay within this. */
const MAX_SCRYPT_MEM = 256 * 1024 * 1024;
const MIN_SALT = 8;
const MAX_SALT = 64;

interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

interface ParsedCredential {
  readonly scrypt: ScryptParams;
  readonly scram: ScramStored;
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Builds a credential string for `password`. Throws a RangeError for out-of-range options. */
export async function createCredential(password: string, opts: CreateCredentialOptions = {}): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  const iterations = opts.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  const N = opts.scryptN ?? DEFAULT_SCRYPT.N;
  const r = opts.scryptR ?? DEFAULT_SCRYPT.r;
  const p = opts.scryptP ?? DEFAULT_SCRYPT.p;
  if (!validIterations(iterations)) throw new RangeError(`iterations must be an integer in ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
  if (!validScrypt(N, r, p)) throw new RangeError('scrypt parameters out of range (N a power of two <= 2^20, r <= 32, p <= 16, 128*N*r <= 256 MiB)');
  const scramSalt = opts.scramSalt ?? randomBytes(SALT_LEN);
  if (scramSalt.length < MIN_SALT || scramSalt.length > MAX_SALT) throw new RangeError(`scramSalt must be ${MIN_SALT}..${MAX_SALT} bytes`);
  const scryptSalt = randomBytes(SALT_LEN);
  const normalized = normalizePassword(password);
  const [hash, scram] = await Promise.all([scryptHash(normalized, scryptSalt, N, r, p), deriveScram(normalized, scramSalt, iterations)]);
  const b64 = (b: Buffer): string => b.toString('base64');
  return [
    CREDENTIAL_PREFIX,
    ['scrypt', N, r, p, b64(scryptSalt), b64(hash)].join(':'),
    ['scram-sha-256', iterations, b64(scram.salt), b64(scram.storedKey), b64(scram.serverKey)].join(':'),
  ].join('$');
}

/**
 * Does `password` match the credential? Constant-time comparison of the
 * derived hash; false (never a throw) for a malformed credential or input.
 */
export async function verifyPassword(credential: string, password: string): Promise<boolean> {
  if (typeof password !== 'string') return false;
  const parsed = parseCredential(credential);
  if (!parsed) return false;
  const { N, r, p, salt, hash } = parsed.scrypt;
  let actual: Buffer;
  try {
    actual = await scryptHash(normalizePassword(password), salt, N, r, p, hash.length);
  } catch {
    return false;
  }
  return actual.length === hash.length && timingSafeEqual(actual, hash);
}

/** The SCRAM-SHA-256 part of a credential, or undefined for a malformed one. */
export function scramCredential(credential: string): ScramStored | undefined {
  return parseCredential(credential)?.scram;
}

/** RFC 5802 key derivation from a (normalized) password. */
export async function deriveScram(normalizedPassword: string, salt: Buffer, iterations: number): Promise<ScramStored> {
  const salted = await new Promise<Buffer>((resolve, reject) => {
    pbkdf2(normalizedPassword, salt, iterations, KEY_LEN, 'sha256', (err, key) => (err ? reject(err) : resolve(key)));
  });
  return scramKeysFromSalted(salted, salt, iterations);
}

/** StoredKey and ServerKey from SaltedPassword (shared with the test client). */
export function scramKeysFromSalted(saltedPassword: Buffer, salt: Buffer, iterations: number): ScramStored {
  const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
  return { salt: Buffer.from(salt), iterations, storedKey, serverKey };
}

function scryptHash(password: string, salt: Buffer, N: number, r: number, p: number, keyLen = KEY_LEN): Promise<Buffer> {
  const options: ScryptOptions = { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function validIterations(i: number): boolean {
  return Number.isSafeInteger(i) && i >= MIN_ITERATIONS && i <= MAX_ITERATIONS;
}

function validScrypt(N: number, r: number, p: number): boolean {
  return (
    Number.isSafeInteger(N) &&
    N >= 2 &&
    N <= MAX_SCRYPT_N &&
    (N & (N - 1)) === 0 &&
    Number.isSafeInteger(r) &&
    r >= 1 &&
    r <= MAX_SCRYPT_R &&
    Number.isSafeInteger(p) &&
    p >= 1 &&
    p <= MAX_SCRYPT_P &&
    128 * N * r <= MAX_SCRYPT_MEM
  );
}

const DECIMAL = /^[1-9][0-9]{0,8}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function dec(s: string | undefined): number | undefined {
  return s !== undefined && DECIMAL.test(s) ? Number(s) : undefined;
}

function b64(s: string | undefined, min: number, max: number): Buffer | undefined {
  if (s === undefined || s === '' || !BASE64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.length >= min && b.length <= max ? b : undefined;
}

function parseCredential(credential: unknown): ParsedCredential | undefined {
  if (typeof credential !== 'string' || credential.length > 1024) return undefined;
  const parts = credential.split('$');
  if (parts.length !== 3 || parts[0] !== CREDENTIAL_PREFIX) return undefined;
  const s = (parts[1] ?? '').split(':');
  const c = (parts[2] ?? '').split(':');
  if (s.length !== 6 || s[0] !== 'scrypt' || c.length !== 5 || c[0] !== 'scram-sha-256') return undefined;

  const N = dec(s[1]);
  const r = dec(s[2]);
  const p = dec(s[3]);
  const scryptSalt = b64(s[4], MIN_SALT, MAX_SALT);
  const hash = b64(s[5], 16, 64);
  if (N === undefined || r === undefined || p === undefined || !scryptSalt || !hash || !validScrypt(N, r, p)) return undefined;

  const iterations = dec(c[1]);
  const salt = b64(c[2], MIN_SALT, MAX_SALT);
  const storedKey = b64(c[3], KEY_LEN, KEY_LEN);
  const serverKey = b64(c[4], KEY_LEN, KEY_LEN);
  if (iterations === undefined || !validIterations(iterations) || !salt || !storedKey || !serverKey) return undefined;

  return { scrypt: { N, r, p, salt: scryptSalt, hash }, scram: { salt, iterations, storedKey, serverKey } };
}
