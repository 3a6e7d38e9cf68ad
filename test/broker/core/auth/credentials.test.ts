import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createCredential, scramCredential, verifyPassword } from '../../../../src/broker/core/auth/credentials.js';
import { Harness } from '../../../meta/state/support.js';

// A cheap scrypt cost keeps the suite fast; the default is exercised once.
const FAST = { scryptN: 1024 } as const;

describe('stored credentials', () => {
  it('verifies the right password and rejects a wrong one (default cost)', async () => {
    const cred = await createCredential('s3cret!');
    assert.equal(await verifyPassword(cred, 's3cret!'), true);
    assert.equal(await verifyPassword(cred, 's3cret'), false);
    assert.equal(await verifyPassword(cred, ''), false);
    assert.match(cred, /^rmq1\$scrypt:16384:8:1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+\$scram-sha-256:4096:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.ok(cred.length <= 1024, `${cred.length} chars`);
  });

  it('salts: the same password gives different credentials, each verifying', async () => {
    const a = await createCredential('pw', FAST);
    const b = await createCredential('pw', FAST);
    assert.notEqual(a, b);
    assert.notDeepEqual(scramCredential(a)?.salt, scramCredential(b)?.salt);
    assert.equal(await verifyPassword(a, 'pw'), true);
    assert.equal(await verifyPassword(b, 'pw'), true);
  });

  it('carries SCRAM-SHA-256 keys matching RFC 7677 for the same salt and count', async () => {
    const cred = await createCredential('pencil', { ...FAST, scramSalt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') });
    const s = scramCredential(cred);
    assert.ok(s);
    assert.equal(s.iterations, 4096);
    assert.equal(s.salt.toString('base64'), 'W22ZaJ0SNY7soEsUEjb6gQ==');
    assert.equal(s.storedKey.length, 32);
    assert.equal(s.serverKey.length, 32);
    const custom = scramCredential(await createCredential('pencil', { ...FAST, iterations: 8192 }));
    assert.equal(custom?.iterations, 8192);
  });

  it('normalizes passwords with NFKC on both paths', async () => {
    const cred = await createCredential('\u2168', FAST); // ROMAN NUMERAL NINE
    assert.equal(await verifyPassword(cred, 'IX'), true);
    const composed = await createCredential('caf\u00e9', FAST);
    assert.equal(await verifyPassword(composed, 'cafe\u0301'), true);
  });

  it('rejects out-of-range creation options', async () => {
    await assert.rejects(createCredential('x', { iterations: 0 }), RangeError);
    await assert.rejects(createCredential('x', { scryptN: 1000 }), RangeError);
    await assert.rejects(createCredential('x', { scramSalt: Buffer.alloc(2) }), RangeError);
  });

  it('returns false / undefined for malformed or tampered credentials, never throwing', async () => {
    const good = await createCredential('pw', FAST);
    const tampered = [
      '',
      'plain-text',
      good.replace('rmq1', 'rmq2'),
      good.replace('scrypt:1024:', 'scrypt:1000:'),
      good.replace('scrypt:1024:', 'scrypt:1073741824:'), // absurd cost: refused, not attempted
      good.replace(':4096:', ':0:'),
      good.slice(0, -5),
      `${good}$`,
      good.replace(/\$scram-sha-256:.*/, ''),
      'x'.repeat(5000),
    ];
    for (const t of tampered) {
      assert.equal(await verifyPassword(t, 'pw'), false, t);
      // A credential is accepted or refused as a whole, even where its SCRAM part is intact.
      assert.equal(scramCredential(t), undefined, t);
    }
    // Changing the stored hash makes verification fail.
    const parts = good.split(':');
    parts[5] = Buffer.alloc(32, 7).toString('base64') + parts[5]?.slice(44);
    assert.equal(await verifyPassword(parts.join(':'), 'pw'), false);
    assert.equal(await verifyPassword(good, 42 as unknown as string), false);
    assert.equal(await verifyPassword(undefined as unknown as string, 'pw'), false);
  });

  it('never throws on arbitrary credential strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (s) => {
        assert.equal(await verifyPassword(`rmq1$${s}`, 'pw'), false);
        assert.equal(scramCredential(s), undefined);
      }),
      { numRuns: 200 },
    );
  });

  it('fits the meta user record field', async () => {
    const h = new Harness();
    const cred = await createCredential('pw', FAST);
    h.ok({ kind: 'user.create', username: 'alice', passwordHash: cred });
    assert.equal(await verifyPassword(h.view.users.get('alice')?.passwordHash ?? '', 'pw'), true);
  });
});
