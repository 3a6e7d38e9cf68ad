/**
 * SaslHandshake (key 17), versions 0-1, never flexible. Written from Kafka's
 * SaslHandshakeRequest/SaslHandshakeResponse message specs (3.x). Both versions
 * have the same fields: v0 is followed by raw SASL tokens on the socket, v1 by
 * SaslAuthenticate requests.
 */
import type { MessageSpec } from '../schema.js';

export interface SaslHandshakeRequest {
  mechanism: string;
}

export interface SaslHandshakeResponse {
  errorCode: number;
  /** The mechanisms the broker enables. */
  mechanisms: string[];
}

export const saslHandshakeRequest: MessageSpec = {
  name: 'SaslHandshakeRequest',
  apiKey: 17,
  type: 'request',
  validVersions: '0-1',
  flexibleVersions: 'none',
  fields: [{ name: 'mechanism', type: 'string', versions: '0+' }],
};

export const saslHandshakeResponse: MessageSpec = {
  name: 'SaslHandshakeResponse',
  apiKey: 17,
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: 'none',
  fields: [
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'mechanisms', type: '[]string', versions: '0+' },
  ],
};
