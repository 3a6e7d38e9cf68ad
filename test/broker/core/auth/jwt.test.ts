import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { JwtVerifier } from '../../../../src/broker/core/auth/jwt.js';

const SECRET = 'a-shared-secret-of-reasonable-length';
const secretKey = new TextEncoder().encode(SECRET);
const now = (): number => Math.floor(Date.now() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicKeyPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });

function hs256(claims: JWTPayload, key: Uint8Array = secretKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
}

function rs256(claims: JWTPayload, key = rsa.privateKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).sign(key);
}

function reason(r: { ok: boolean; reason?: string }): string {
  assert.equal(r.ok, false);
  return r.reason ?? '';
}

describe('JWT verifier', () => {
  it('accepts a valid HS256 token and returns its claims', async () => {
    const v = new JwtVerifier({ secret: SECRET });
    const r = await v.verify(await hs256({ username: 'alice', exp: now() + 60 }), { username: 'alice', clientId: 'c1' });
    assert.ok(r.ok);
    assert.equal(r.claims['username'], 'alice');
  });

  it('accepts a valid RS256 token', async () => {
    const v = new JwtVerifier({ publicKeyPem });
    const r = await v.verify(await rs256({ sub: 'bob', clientid: 'dev-1', exp: now() + 60 }), { username: 'bob', clientId: 'dev-1' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.claims.sub, 'bob');
  });

  it('rejects expired and not-yet-valid tokens', async () => {
    const v = new JwtVerifier({ secret: SECRET });
    assert.equal(reason(await v.verify(await hs256({ exp: now() - 3600 }))), 'token expired');
    assert.equal(reason(await v.verify(await hs256({ nbf: now() + 3600 }))), 'token not yet valid');
    const strict = new JwtVerifier({ secret: SECRET, requireExp: true });
    assert.match(reason(await strict.verify(await hs256({ username: 'a' }))), /exp/);
    assert.ok((await v.verify(await hs256({ exp: now() - 2 }))).ok, 'within the clock tolerance');
  });

  it('rejects wrong signatures', async () => {
    const v = new JwtVerifier({ secret: SECRET, publicKeyPem });
    assert.equal(reason(await v.verify(await hs256({ username: 'a' }, new TextEncoder().encode('another secret')))), 'bad signature');
    assert.equal(reason(await v.verify(await rs256({ username: 'a' }, other.privateKey))), 'bad signature');
    const token = await hs256({ username: 'a' });
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ username: 'root' })).toString('base64url')}.${s}`;
    assert.equal(reason(await v.verify(forged)), 'bad signature');
  });

  it('enforces the allowed algorithms and resists algorithm confusion', async () => {
    const rsOnly = new JwtVerifier({ publicKeyPem });
    assert.equal(reason(await rsOnly.verify(await hs256({ username: 'a' }))), 'algorithm not allowed');
    // An HS256 token "signed" with the public key text must not pass an RS256 verifier.
    assert.equal(reason(await rsOnly.verify(await hs256({ username: 'a' }, new TextEncoder().encode(publicKeyPem)))), 'algorithm not allowed');
    const both = new JwtVerifier({ secret: SECRET, publicKeyPem, algorithms: ['RS256'] });
    assert.equal(reason(await both.verify(await hs256({ username: 'a' }))), 'algorithm not allowed');
    const unsecured = new UnsecuredJWT({ username: 'a' }).encode();
    assert.equal((await both.verify(unsecured)).ok, false);
    assert.equal((await new JwtVerifier({ secret: SECRET }).verify(unsecured)).ok, false);
  });

  it('binds username/sub and clientid/client_id to the connection', async () => {
    const v = new JwtVerifier({ secret: SECRET });
    assert.match(reason(await v.verify(await hs256({ username: 'alice' }), { username: 'bob' })), /username/);
    assert.match(reason(await v.verify(await hs256({ sub: 'alice' }), { username: 'bob' })), /username/);
    assert.match(reason(await v.verify(await hs256({ clientid: 'c1' }), { clientId: 'c2' })), /client id/);
    assert.match(reason(await v.verify(await hs256({ client_id: 'c1' }), { clientId: 'c2' })), /client id/);
    assert.match(reason(await v.verify(await hs256({ username: 7 }), { username: '7' })), /username/);
    assert.ok((await v.verify(await hs256({ client_id: 'c1', sub: 'alice' }), { username: 'alice', clientId: 'c1' })).ok);
    assert.ok((await v.verify(await hs256({}), { username: 'anyone', clientId: 'any' })).ok, 'no identity claims: nothing to bind');
    assert.ok((await v.verify(await hs256({ username: 'alice' }))).ok, 'no expectation: nothing to compare');
  });

  it('never throws on garbage', async () => {
    const v = new JwtVerifier({ secret: SECRET, publicKeyPem });
    for (const t of ['', 'garbage', 'a.b.c', '..', 'eyJhbGciOiJIUzI1NiJ9.e30', 'x'.repeat(20_000), `${Buffer.from('{"alg":"HS256"').toString('base64url')}.e30.AAAA`]) {
      const r = await v.verify(t);
      assert.equal(r.ok, false, t.slice(0, 40));
      assert.equal(reason(r), 'malformed token');
    }
    assert.equal((await v.verify(undefined as unknown as string)).ok, false);
  });

  it('refuses an unusable configuration at construction', () => {
    assert.throws(() => new JwtVerifier({}), /secret|publicKeyPem/);
    assert.throws(() => new JwtVerifier({ secret: '' }), /secret/);
    assert.throws(() => new JwtVerifier({ publicKeyPem: 'not a pem' }), /PEM/);
    assert.throws(() => new JwtVerifier({ secret: SECRET, algorithms: ['RS256'] }), /RS256/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => new JwtVerifier({ publicKeyPem: ec }), /RSA/);
  });
});
