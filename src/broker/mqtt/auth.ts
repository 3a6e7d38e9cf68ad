/**
 * Who may connect and what they may do: anonymous access, users with salted
 * credentials (kept in meta), JWTs in the password field, SCRAM-SHA-256 for MQTT 5
 * enhanced authentication, and ordered ACL rules (config first, then those added
 * at run time), first match wins, the configured default otherwise.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../common/logger.js';
import { aclDecision, compileAclRules } from '../core/acl.js';
import { scramCredential, verifyPassword } from '../core/auth/credentials.js';
import { JwtVerifier } from '../core/auth/jwt.js';
import { ScramServer } from '../core/auth/scram.js';
import type { MqttAclRuleConfig, MqttSettings } from './settings.js';

export interface MqttUser {
  credential: string;
  superuser: boolean;
}

/** Users and run-time ACL rules, read from the meta replica. */
export interface UserDirectory {
  getUser(username: string): MqttUser | undefined;
  /** ACL rules added at run time, in order. */
  aclRules(): readonly MqttAclRuleConfig[];
  /** Changes whenever users or rules change (cache key). */
  version(): number;
}

export type AuthResult = { ok: true; superuser: boolean } | { ok: false; code: 'bad_credentials' | 'not_authorized'; reason: string };

export interface Principal {
  username: string | undefined;
  clientId: string;
  superuser: boolean;
}

export const SCRAM_METHOD = 'SCRAM-SHA-256';

export class MqttAuth {
  private readonly jwt: JwtVerifier | undefined;
  private compiled: ReturnType<typeof compileAclRules> | undefined;
  private compiledVersion = -1;

  constructor(
    private readonly settings: MqttSettings,
    private readonly users: UserDirectory,
    private readonly log: Logger,
  ) {
    if (settings.jwtSecret !== undefined || settings.jwtPublicKeyFile !== undefined) {
      this.jwt = new JwtVerifier({
        ...(settings.jwtSecret !== undefined ? { secret: settings.jwtSecret } : {}),
        ...(settings.jwtPublicKeyFile !== undefined ? { publicKeyPem: readFileSync(settings.jwtPublicKeyFile, 'utf8') } : {}),
      });
    }
    // Fail at start, not at the first publish, when a configured rule is malformed.
    compileAclRules(settings.acl);
  }

  /** CONNECT with username/password (or neither). */
  async authenticate(username: string | undefined, password: Buffer | undefined, clientId: string): Promise<AuthResult> {
    if (username === undefined && password === undefined) {
      if (this.settings.allowAnonymous) return { ok: true, superuser: false };
      return { ok: false, code: 'not_authorized', reason: 'anonymous clients are not allowed' };
    }
    if (username !== undefined) {
      const user = this.users.getUser(username);
      if (user) {
        if (password !== undefined && (await verifyPassword(user.credential, password.toString('utf8')))) return { ok: true, superuser: user.superuser };
        return { ok: false, code: 'bad_credentials', reason: 'bad user name or password' };
      }
    }
    if (this.jwt && password !== undefined) {
      const r = await this.jwt.verify(password.toString('utf8'), { ...(username !== undefined ? { username } : {}), clientId });
      if (r.ok) return { ok: true, superuser: false };
      return { ok: false, code: 'bad_credentials', reason: `JWT rejected: ${r.reason}` };
    }
    if (this.settings.allowAnonymous && password === undefined) return { ok: true, superuser: false };
    return { ok: false, code: 'bad_credentials', reason: username === undefined ? 'a password without a user name' : `unknown user "${username}"` };
  }

  scramServer(): ScramServer {
    return new ScramServer((username) => {
      const user = this.users.getUser(username);
      return user ? scramCredential(user.credential) : undefined;
    });
  }

  isSuperuser(username: string): boolean {
    return this.users.getUser(username)?.superuser ?? false;
  }

  authorize(action: 'publish' | 'subscribe', topic: string, who: Principal): boolean {
    if (who.superuser) return true;
    const v = this.users.version();
    if (!this.compiled || v !== this.compiledVersion) {
      try {
        this.compiled = compileAclRules([...this.settings.acl, ...this.users.aclRules()]);
      } catch (err) {
        this.log.error({ err: String(err) }, 'mqtt: ACL rules do not compile; using the configured rules only');
        this.compiled = compileAclRules(this.settings.acl);
      }
      this.compiledVersion = v;
    }
    if (this.compiled.size === 0) return this.settings.aclDefault === 'allow';
    const d = aclDecision(this.compiled, { action, topic, clientId: who.clientId, ...(who.username !== undefined ? { username: who.username } : {}) });
    return (d ?? this.settings.aclDefault) === 'allow';
  }
}
