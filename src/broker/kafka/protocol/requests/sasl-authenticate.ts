/**
 * SaslAuthenticate (key 36), versions 0-1, all classic (Kafka makes v2+
 * flexible). Written from Kafka's SaslAuthenticateRequest/
 * SaslAuthenticateResponse message specs (3.x). v1 adds the session lifetime
 * (KIP-368 re-authentication) to the response.
 */
import type { MessageSpec } from '../schema.js';

export interface SaslAuthenticateRequest {
  /** The mechanism's token, e.g. PLAIN's `\0user\0password`. */
  authBytes: Buffer;
}

export interface SaslAuthenticateResponse {
  errorCode: number;
  errorMessage: string | null;
  authBytes: Buffer;
  /** v1+; 0: no re-authentication required. */
  sessionLifetimeMs?: bigint;
}

export const saslAuthenticateRequest: MessageSpec = {
  name: 'SaslAuthenticateRequest',
  apiKey: 36,
  type: 'request',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [{ name: 'authBytes', type: 'bytes', versions: '0+' }],
};

export const saslAuthenticateResponse: MessageSpec = {
  name: 'SaslAuthenticateResponse',
  apiKey: 36,
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'errorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
    { name: 'authBytes', type: 'bytes', versions: '0+' },
    { name: 'sessionLifetimeMs', type: 'int64', versions: '1+', default: 0 },
  ],
};
