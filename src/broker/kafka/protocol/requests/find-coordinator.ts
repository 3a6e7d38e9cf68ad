/**
 * FindCoordinator (key 10), versions 0-2; none of them flexible (Kafka's spec
 * makes 3+ flexible). Written from Kafka 3.x's FindCoordinatorRequest/
 * FindCoordinatorResponse message specs. The batched form (CoordinatorKeys /
 * Coordinators, v4+) is left out.
 *
 * v0 only finds group coordinators; v1 adds KeyType (0 group, 1 transaction)
 * and, in the response, throttle time and an error message.
 */
import type { MessageSpec } from '../schema.js';

export const CoordinatorKeyType = { Group: 0, Transaction: 1 } as const;

export interface FindCoordinatorRequest {
  /** The group id, or (v1+, keyType 1) the transactional id. */
  key: string;
  /** v1+; 0 (group) before. */
  keyType: number;
}

export interface FindCoordinatorResponse {
  /** v1+ */
  throttleTimeMs?: number;
  errorCode: number;
  /** v1+; nullable. */
  errorMessage?: string | null;
  nodeId: number;
  host: string;
  port: number;
}

export const findCoordinatorRequest: MessageSpec = {
  name: 'FindCoordinatorRequest',
  apiKey: 10,
  type: 'request',
  validVersions: '0-2',
  flexibleVersions: '3+',
  fields: [
    { name: 'key', type: 'string', versions: '0-3' },
    { name: 'keyType', type: 'int8', versions: '1+', default: 0 },
  ],
};

export const findCoordinatorResponse: MessageSpec = {
  name: 'FindCoordinatorResponse',
  apiKey: 10,
  type: 'response',
  validVersions: '0-2',
  flexibleVersions: '3+',
  fields: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+' },
    { name: 'errorCode', type: 'int16', versions: '0-3' },
    // No default in Kafka's spec, so an omitted message goes out as '' (pass null explicitly for null).
    { name: 'errorMessage', type: 'string', versions: '1-3', nullableVersions: '1-3' },
    { name: 'nodeId', type: 'int32', versions: '0-3' },
    { name: 'host', type: 'string', versions: '0-3' },
    { name: 'port', type: 'int32', versions: '0-3' },
  ],
};
