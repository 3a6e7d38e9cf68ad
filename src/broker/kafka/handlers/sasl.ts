/**
 * SASL: SaslHandshake (v0-1) picks a mechanism; the exchange then runs over
 * SaslAuthenticate requests (handshake v1) or as raw size-prefixed tokens
 * (handshake v0). Mechanisms: PLAIN (RFC 4616) and SCRAM-SHA-256 (RFC 7677),
 * both against the users kept in meta (robust-ctl user add).
 */
import type { KafkaClientContext } from '../connection.js';
import { ScramServer, SCRAM_SHA_256 } from '../../core/auth/scram.js';
import type { KafkaDeps } from '../deps.js';
import { ErrorCode } from '../protocol/errors.js';
import type { SaslAuthenticateRequest, SaslAuthenticateResponse } from '../protocol/requests/sasl-authenticate.js';
import type { SaslHandshakeRequest, SaslHandshakeResponse } from '../protocol/requests/sasl-handshake.js';

export const SASL_MECHANISMS = ['PLAIN', SCRAM_SHA_256];

interface SaslState {
  mechanism: string;
  scram?: ScramServer;
  done: boolean;
}

class SaslFailure extends Error {}

export function handleSaslHandshake(ctx: KafkaClientContext, version: number, req: SaslHandshakeRequest): SaslHandshakeResponse {
  if (!SASL_MECHANISMS.includes(req.mechanism)) return { errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms: SASL_MECHANISMS };
  if (ctx.authenticated && ctx.principal !== null) return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: SASL_MECHANISMS };
  ctx.sasl = { mechanism: req.mechanism, done: false } satisfies SaslState;
  if (version === 0) ctx.rawSaslMechanism = req.mechanism;
  return { errorCode: ErrorCode.NONE, mechanisms: SASL_MECHANISMS };
}

/** One step of the exchange: the token to answer, or a SaslFailure. */
async function step(deps: KafkaDeps, ctx: KafkaClientContext, token: Buffer): Promise<Buffer> {
  const state = ctx.sasl as SaslState | undefined;
  if (!state || state.done) throw new SaslFailure('no SASL handshake before the authentication bytes');
  if (state.mechanism === 'PLAIN') {
    // [authzid] NUL authcid NUL passwd
    const parts = token.toString('utf8').split('\u0000');
    if (parts.length !== 3) throw new SaslFailure('malformed PLAIN message');
    const [authzid, user, password] = parts as [string, string, string];
    if (authzid !== '' && authzid !== user) throw new SaslFailure('PLAIN authorization id must be empty or the user');
    if (!(await deps.meta.verifyPassword(user, password))) throw new SaslFailure(`authentication failed for user "${user}"`);
    finish(ctx, state, user);
    return Buffer.alloc(0);
  }
  if (!state.scram) {
    state.scram = new ScramServer((u) => deps.meta.scramKeys(u));
    const first = state.scram.first(token);
    if ('error' in first) throw new SaslFailure(`SCRAM: ${first.error}`);
    return first.serverFirst;
  }
  const final = state.scram.final(token);
  if ('error' in final) throw new SaslFailure(`SCRAM: ${final.error}`);
  finish(ctx, state, final.username);
  return final.serverFinal;
}

function finish(ctx: KafkaClientContext, state: SaslState, user: string): void {
  state.done = true;
  ctx.principal = user;
  ctx.authenticated = true;
  ctx.rawSaslMechanism = null;
}

export async function handleSaslAuthenticate(deps: KafkaDeps, ctx: KafkaClientContext, req: SaslAuthenticateRequest): Promise<SaslAuthenticateResponse> {
  try {
    const authBytes = await step(deps, ctx, req.authBytes);
    return { errorCode: ErrorCode.NONE, errorMessage: null, authBytes, sessionLifetimeMs: 0n };
  } catch (err) {
    if (!(err instanceof SaslFailure)) throw err;
    ctx.sasl = undefined;
    deps.log.info({ client: ctx.clientId, remote: ctx.remoteAddress }, `kafka: SASL authentication failed: ${err.message}`);
    const illegal = err.message.startsWith('no SASL handshake');
    return { errorCode: illegal ? ErrorCode.ILLEGAL_SASL_STATE : ErrorCode.SASL_AUTHENTICATION_FAILED, errorMessage: err.message, authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n };
  }
}

/** Handshake v0: tokens without Kafka framing; a failure closes the connection (there is no error to answer with). */
export async function handleRawSasl(deps: KafkaDeps, ctx: KafkaClientContext, token: Buffer): Promise<Buffer> {
  return step(deps, ctx, token);
}
