import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createCredential, scramCredential, type ScramStored } from '../../../../src/broker/core/auth/credentials.js';
import { ScramClient } from '../../../../src/broker/core/auth/scram-client.js';
import { ScramServer, escapeSaslName, unescapeSaslName } from '../../../../src/broker/core/auth/scram.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

// RFC 7677 §3
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

async function users(entries: Record<string, string>): Promise<(u: string) => ScramStored | undefined> {
  const map = new Map<string, ScramStored>();
  for (const [u, pw] of Object.entries(entries)) {
    const s = scramCredential(await createCredential(pw, { scryptN: 1024 }));
    assert.ok(s);
    map.set(u, s);
  }
  return (u) => map.get(u);
}

function ok<T extends object>(r: T | { error: string }): T {
  if ('error' in r) assert.fail(`unexpected error ${r.error}`);
  return r;
}

function err(r: object): string {
  assert.ok('error' in r, `expected an error, got ${JSON.stringify(r)}`);
  return (r as { error: string }).error;
}

describe('SCRAM-SHA-256 server', () => {
  it('reproduces the RFC 7677 test vector', async () => {
    const stored = scramCredential(await createCredential('pencil', { scryptN: 1024, scramSalt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') }));
    assert.ok(stored);
    const server = new ScramServer((u) => (u === 'user' ? stored : undefined), () => RFC.serverNonce);
    assert.equal(ok(server.first(b(RFC.clientFirst))).serverFirst.toString(), RFC.serverFirst);
    const fin = ok(server.final(b(RFC.clientFinal)));
    assert.equal(fin.serverFinal.toString(), RFC.serverFinal);
    assert.equal(fin.username, 'user');
  });

  it('the test client produces the RFC 7677 messages too', () => {
    const client = new ScramClient('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    assert.equal(client.first().toString(), RFC.clientFirst);
    assert.equal(client.final(b(RFC.serverFirst)).toString(), RFC.clientFinal);
    assert.equal(client.verifyServerFinal(b(RFC.serverFinal)), true);
    assert.equal(client.verifyServerFinal(b('v=AAAA')), false);
  });

  it('completes a round trip, including usernames needing escapes', async () => {
    const lookup = await users({ alice: 'wonderland', 'a,b=c': 'odd name' });
    for (const [user, pw] of [
      ['alice', 'wonderland'],
      ['a,b=c', 'odd name'],
    ] as const) {
      const client = new ScramClient(user, pw);
      const server = new ScramServer(lookup);
      const { serverFirst } = ok(server.first(client.first()));
      const { serverFinal, username } = ok(server.final(client.final(serverFirst)));
      assert.equal(username, user);
      assert.equal(client.verifyServerFinal(serverFinal), true);
    }
    assert.equal(escapeSaslName('a,b=c'), 'a=2Cb=3Dc');
    assert.equal(unescapeSaslName('a=2Cb=3Dc'), 'a,b=c');
    assert.equal(unescapeSaslName('a=2X'), undefined);
    assert.equal(unescapeSaslName('a,b'), undefined);
  });

  it('rejects a wrong password with invalid-proof', async () => {
    const lookup = await users({ alice: 'wonderland' });
    const client = new ScramClient('alice', 'looking-glass');
    const server = new ScramServer(lookup);
    const { serverFirst } = ok(server.first(client.first()));
    assert.equal(err(server.final(client.final(serverFirst))), 'invalid-proof');
  });

  it('does not reveal an unknown user: a stable fake salt, then invalid-proof', async () => {
    const lookup = await users({ alice: 'wonderland' });
    const firsts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const client = new ScramClient('mallory', 'guess', `nonce${i}`);
      const server = new ScramServer(lookup, () => 'srv');
      const { serverFirst } = ok(server.first(client.first()));
      assert.match(serverFirst.toString(), /^r=nonce\dsrv,s=[A-Za-z0-9+/]{22}==,i=4096$/);
      firsts.push(serverFirst.toString().replace(/^r=[^,]*,/, ''));
      assert.equal(err(server.final(client.final(serverFirst))), 'invalid-proof');
    }
    assert.equal(firsts[0], firsts[1], 'the same unknown user always sees the same salt');
  });

  it('rejects a tampered nonce', async () => {
    const lookup = await users({ alice: 'wonderland' });
    const client = new ScramClient('alice', 'wonderland');
    const server = new ScramServer(lookup);
    const { serverFirst } = ok(server.first(client.first()));
    const forged = b(serverFirst.toString().replace(/^r=([^,]*)/, 'r=$1X'));
    assert.equal(err(server.final(client.final(forged))), 'invalid-proof');
    // A client-final whose r= was edited after the proof was computed fails too.
    const client2 = new ScramClient('alice', 'wonderland');
    const server2 = new ScramServer(lookup);
    const first2 = ok(server2.first(client2.first())).serverFirst;
    const final2 = client2.final(first2).toString().replace(/,r=([^,]*)/, ',r=$1Z');
    assert.equal(err(server2.final(b(final2))), 'invalid-proof');
  });

  it('refuses channel binding, mandatory extensions and bad encodings', async () => {
    const lookup = await users({ user: 'pencil' });
    const first = (s: string | Buffer): string => err(new ScramServer(lookup).first(typeof s === 'string' ? b(s) : s));
    assert.equal(first('p=tls-server-end-point,,n=user,r=abc'), 'channel-binding-not-supported');
    assert.equal(first('n,,m=ext,n=user,r=abc'), 'extensions-not-supported');
    assert.equal(first('x,,n=user,r=abc'), 'invalid-encoding');
    assert.equal(first('n,,r=abc,n=user'), 'invalid-encoding');
    assert.equal(first('n,,n=user'), 'invalid-encoding');
    assert.equal(first('n,,n=us=2Xer,r=abc'), 'invalid-username-encoding');
    assert.equal(first('n,,n=,r=abc'), 'invalid-username-encoding');
    assert.equal(first('n,a=other,n=user,r=abc'), 'invalid-username-encoding');
    assert.equal(first('n,,n=user,r=a b'), 'invalid-encoding');
    assert.equal(first(Buffer.from([0x6e, 0x2c, 0x2c, 0xff, 0xfe])), 'invalid-encoding');
    assert.equal(first(Buffer.alloc(0)), 'invalid-encoding');
    assert.equal(first('n,,'), 'invalid-encoding');
    // 'y' (client could bind but thinks we cannot) and a matching authzid are fine.
    ok(new ScramServer(lookup).first(b('y,,n=user,r=abc')));
    ok(new ScramServer(lookup).first(b('n,a=user,n=user,r=abc,x=ignored')));
  });

  it('checks the channel-binding echo and the proof encoding in client-final', async () => {
    const lookup = await users({ user: 'pencil' });
    const start = (): { server: ScramServer; nonce: string } => {
      const server = new ScramServer(lookup, () => 'S');
      ok(server.first(b('n,,n=user,r=C')));
      return { server, nonce: 'CS' };
    };
    const proof = Buffer.alloc(32).toString('base64');
    let s = start();
    assert.equal(err(s.server.final(b(`c=eSws,r=${s.nonce},p=${proof}`))), 'channel-bindings-dont-match'); // 'y,,'
    s = start();
    assert.equal(err(s.server.final(b(`c=biws,r=${s.nonce},p=AAAA`))), 'invalid-encoding');
    s = start();
    assert.equal(err(s.server.final(b(`c=biws,r=${s.nonce}`))), 'invalid-encoding');
    s = start();
    assert.equal(err(s.server.final(b(`c=b!ws,r=${s.nonce},p=${proof}`))), 'invalid-encoding');
    s = start();
    assert.equal(err(s.server.final(b(`c=biws,r=${s.nonce},p=${proof}`))), 'invalid-proof');
  });

  it('enforces the message order and ends the exchange on any error', async () => {
    const lookup = await users({ user: 'pencil' });
    assert.equal(err(new ScramServer(lookup).final(b('c=biws,r=x,p=AAAA'))), 'other-error');
    const server = new ScramServer(lookup);
    ok(server.first(b('n,,n=user,r=abc')));
    assert.equal(err(server.first(b('n,,n=user,r=abc'))), 'other-error');
    assert.equal(err(server.final(b('c=biws,r=x,p=AAAA'))), 'other-error', 'no second try after an error');
    const failing = new ScramServer(() => {
      throw new Error('store down');
    });
    assert.equal(err(failing.first(b('n,,n=user,r=abc'))), 'other-error');
  });

  it('never throws on arbitrary input', async () => {
    const lookup = await users({ user: 'pencil' });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, c) => {
        const server = new ScramServer(lookup);
        server.first(Buffer.from(a));
        server.final(Buffer.from(c));
        const server2 = new ScramServer(lookup);
        server2.first(b('n,,n=user,r=abc'));
        server2.final(Buffer.from(c));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        const server = new ScramServer(lookup);
        server.first(b(`n,,n=user,r=abc`));
        const r = server.final(b(`c=biws,r=abc${s}`));
        assert.ok('error' in r);
      }),
    );
  });
});
