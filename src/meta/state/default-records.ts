/**
 * The record types the Meta Service runs with. To add metadata, write a record
 * module and append it here; nothing else changes.
 *
 * Order matters and must never change between builds that share a log: it is
 * the order in which record types react to another's events (shards are
 * created, then group offsets dropped, ...), hence the order of published
 * events. Append new record types at the end.
 */
import { MetaStateMachine, type MachineEvent, type MetaStateMachineOptions } from './machine.js';
import type { ViewOf } from './registry.js';
import { clusterConfigRecord } from './records/cluster-config.js';
import { groupsRecord } from './records/groups.js';
import { journalSegmentsRecord } from './records/journal-segments.js';
import { mqttAclRecord } from './records/mqtt-acl.js';
import { mqttRetainedRecord } from './records/mqtt-retained.js';
import { mqttSessionsRecord } from './records/mqtt-sessions.js';
import { nodesRecord } from './records/nodes.js';
import { shardsRecord } from './records/shards.js';
import { topicsRecord } from './records/topics.js';
import { usersRecord } from './records/users.js';

export const defaultRecords = [
  nodesRecord,
  topicsRecord,
  shardsRecord,
  groupsRecord,
  usersRecord,
  clusterConfigRecord,
  mqttSessionsRecord,
  mqttRetainedRecord,
  journalSegmentsRecord,
  mqttAclRecord,
] as const;

export type DefaultRecords = typeof defaultRecords;

/** `machine.view` of the default machine: `view.topics`, `view.nodes`, `view.shards`, ... */
export type MetaView = ViewOf<DefaultRecords>;

/** Every change event the default machine publishes. */
export type MetaEvent = MachineEvent<DefaultRecords>;

export type DefaultMetaStateMachine = MetaStateMachine<DefaultRecords>;

export function createMetaStateMachine(options?: MetaStateMachineOptions): DefaultMetaStateMachine {
  return new MetaStateMachine(defaultRecords, options);
}
