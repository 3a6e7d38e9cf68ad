/**
 * The typed commands of the default machine and their encoding into Raft entry
 * data. The union is derived from the record types, so it cannot drift from
 * what `validate` accepts; narrow it with `CommandOfKind<'topic.create'>`.
 */
import type { DefaultRecords } from './default-records.js';
import { encodeEnvelope } from './envelope.js';
import type { CommandOf } from './registry.js';

export type MetaCommand = CommandOf<DefaultRecords>;
export type MetaCommandKind = MetaCommand['kind'];
export type CommandOfKind<K extends MetaCommandKind> = Extract<MetaCommand, { kind: K }>;

/** Bytes to propose to Raft. No validation here: every node validates when it applies. */
export function encodeCommand(cmd: MetaCommand): Uint8Array {
  return encodeEnvelope(cmd);
}

/** For commands of record types outside the default list (a machine built from an extended list). */
export { encodeEnvelope } from './envelope.js';

export type { NodeCommand, NodeRegisterCommand, NodeSetStateCommand, NodeRemoveCommand } from './records/nodes.js';
export type { TopicCommand, TopicCreateCommand, TopicDeleteCommand, TopicUpdateConfigCommand, TopicAddShardsCommand } from './records/topics.js';
export type { ShardCommand, ShardAssignCommand } from './records/shards.js';
export type { GroupCommand, GroupCommitOffsetsCommand, GroupDeleteCommand } from './records/groups.js';
export type { UserCommand, UserCreateCommand, UserDeleteCommand, AclAddCommand, AclRemoveCommand } from './records/users.js';
export type { ConfigCommand, ConfigSetCommand, ConfigUnsetCommand } from './records/cluster-config.js';
export type { MqttSessionCommand, MqttSessionPutCommand, MqttSessionDeleteCommand } from './records/mqtt-sessions.js';
export type { MqttRetainedCommand, MqttRetainedSetCommand, MqttRetainedClearCommand } from './records/mqtt-retained.js';
export type { MqttAclCommand, MqttAclAddCommand, MqttAclRemoveCommand, MqttAclReplaceCommand } from './records/mqtt-acl.js';
export type {
  JournalSegmentCommand,
  JournalSegmentCreateCommand,
  JournalSegmentSealCommand,
  JournalSegmentUpdateCommand,
  JournalSegmentDeleteCommand,
  JournalSegmentReplaceCommand,
} from './records/journal-segments.js';
