/**
 * JWT authentication (a client sends the token as its password, as in EMQX):
 * HS256 with a shared secret and/or RS256 with a PEM public key, verified with
 * `jose`. The verifier picks the key from the token's `alg`, so an RS256 public
 * key can never be used as an HMAC secret (algorithm confusion).
 *
 * Checks: signature, allowed algorithm, `exp` and `nbf` (with a small clock
 * tolerance), and identity binding: when the token carries `username` (or,
 * failing that, `sub`) and the caller expects a username, they must be equal;
 * likewise `clientid` (or `client_id`) against the expected client id.
 * `verify` never throws: any failure is `{ ok: false, reason }`.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export type { JWTPayload } from 'jose';

export type JwtAlgorithm = 'HS256' | 'RS256';

export interface JwtVerifierOptions {
  /** Shared secret for HS256 (its UTF-8 bytes are the key). */
  secret?: string;
  /** SPKI PEM ("-----BEGIN PUBLIC KEY-----") RSA public key for RS256. */
  publicKeyPem?: string;
  /** Allowed algorithms; default: HS256 if a secret is given, RS256 if a public key is, both if both. */
  algorithms?: JwtAlgorithm[];
  /** Seconds of clock skew tolerated on exp/nbf; default 5. */
  clockToleranceSec?: number;
  /** Reject tokens without an `exp` claim; default false. */
  requireExp?: boolean;
}

export interface JwtExpectation {
  username?: string;
  clientId?: string;
}

export type JwtResult = { ok: true; claims: JWTPayload } | { ok: false; reason: string };

export class JwtVerifier {
  private readonly secret: Uint8Array | undefined;
  private readonly publicKey: KeyObject | undefined;
  private readonly algorithms: JwtAlgorithm[];
  private readonly clockTolerance: number;
  private readonly requireExp: boolean;

  /** Throws (a configuration error) when no usable key is given or the PEM is not an RSA public key. */
  constructor(opts: JwtVerifierOptions) {
    if (opts.secret !== undefined) {
      if (typeof opts.secret !== 'string' || opts.secret === '') throw new Error('jwt: secret must be a non-empty string');
      this.secret = new TextEncoder().encode(opts.secret);
    }
    if (opts.publicKeyPem !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey({ key: opts.publicKeyPem, format: 'pem' });
      } catch (err) {
        throw new Error(`jwt: publicKeyPem is not a valid PEM public key: ${(err as Error).message}`);
      }
      if (key.asymmetricKeyType !== 'rsa') throw new Error(`jwt: publicKeyPem must be an RSA key for RS256, got ${String(key.asymmetricKeyType)}`);
      this.publicKey = key;
    }
    const defaults: JwtAlgorithm[] = [];
    if (this.secret) defaults.push('HS256');
    if (this.publicKey) defaults.push('RS256');
    this.algorithms = opts.algorithms ? [...new Set(opts.algorithms)] : defaults;
    if (this.algorithms.length === 0) throw new Error('jwt: a secret (HS256) or a publicKeyPem (RS256) is required');
    for (const alg of this.algorithms) {
      if (alg === 'HS256' && !this.secret) throw new Error('jwt: HS256 is allowed but no secret is configured');
      if (alg === 'RS256' && !this.publicKey) throw new Error('jwt: RS256 is allowed but no publicKeyPem is configured');
      if (alg !== 'HS256' && alg !== 'RS256') throw new Error(`jwt: unsupported algorithm ${String(alg)}`);
    }
    this.clockTolerance = opts.clockToleranceSec ?? 5;
    this.requireExp = opts.requireExp ?? false;
  }

  async verify(token: string, expect: JwtExpectation = {}): Promise<JwtResult> {
    if (typeof token !== 'string' || token === '' || token.length > 16_384) return { ok: false, reason: 'malformed token' };
    const getKey: JWTVerifyGetKey = (header) => {
      if (header.alg === 'HS256' && this.secret) return this.secret;
      if (header.alg === 'RS256' && this.publicKey) return this.publicKey;
      throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
    };
    let claims: JWTPayload;
    try {
      const result = await jwtVerify(token, getKey, {
        algorithms: this.algorithms,
        clockTolerance: this.clockTolerance,
        ...(this.requireExp ? { requiredClaims: ['exp'] } : {}),
      });
      claims = result.payload;
    } catch (err) {
      return { ok: false, reason: reasonOf(err) };
    }
    if (expect.username !== undefined) {
      const claimed = claims['username'] !== undefined ? claims['username'] : claims.sub;
      if (claimed !== undefined && claimed !== expect.username) return { ok: false, reason: 'username does not match the token' };
    }
    if (expect.clientId !== undefined) {
      const claimed = claims['clientid'] !== undefined ? claims['clientid'] : claims['client_id'];
      if (claimed !== undefined && claimed !== expect.clientId) return { ok: false, reason: 'client id does not match the token' };
    }
    return { ok: true, claims };
  }
}

function reasonOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as errors.JWTClaimValidationFailed).claim;
      if (claim === 'nbf') return 'token not yet valid';
      return `invalid claim '${claim}'`;
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'malformed token';
    default:
      return 'malformed token';
  }
}
