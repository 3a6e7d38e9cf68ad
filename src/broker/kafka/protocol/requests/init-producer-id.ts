/**
 * InitProducerId (key 22), versions 0-1; neither flexible (Kafka's spec makes
 * 2+ flexible). Written from Kafka 3.x's InitProducerIdRequest/
 * InitProducerIdResponse message specs. The producer id/epoch of the request
 * (v3+, for epoch bumps) are left out. v1 is identical to v0 on the wire (it
 * only tells the broker the client handles throttling itself).
 */
import type { MessageSpec } from '../schema.js';

export interface InitProducerIdRequest {
  /** Null for an idempotent (non-transactional) producer. */
  transactionalId: string | null;
  transactionTimeoutMs: number;
}

export interface InitProducerIdResponse {
  throttleTimeMs: number;
  errorCode: number;
  /** -1 on error. */
  producerId: bigint;
  producerEpoch: number;
}

export const initProducerIdRequest: MessageSpec = {
  name: 'InitProducerIdRequest',
  apiKey: 22,
  type: 'request',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
    { name: 'transactionalId', type: 'string', versions: '0+', nullableVersions: '0+' },
    { name: 'transactionTimeoutMs', type: 'int32', versions: '0+' },
  ],
};

export const initProducerIdResponse: MessageSpec = {
  name: 'InitProducerIdResponse',
  apiKey: 22,
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: '2+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'producerId', type: 'int64', versions: '0+', default: -1 },
    { name: 'producerEpoch', type: 'int16', versions: '0+' },
  ],
};
