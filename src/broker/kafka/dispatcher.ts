/**
 * Routes each decoded request to its handler by API key.
 */
import type { FrameUse, KafkaClientContext, KafkaRequestHandler } from './connection.js';
import type { KafkaDeps } from './deps.js';
import { handleAlterConfigs, handleCreatePartitions, handleCreateTopics, handleDeleteTopics, handleDescribeConfigs } from './handlers/admin.js';
import { handleFetch } from './handlers/fetch.js';
import { handleDeleteGroups, handleDescribeGroups, handleHeartbeat, handleJoinGroup, handleLeaveGroup, handleListGroups, handleSyncGroup } from './handlers/groups.js';
import { handleApiVersions, handleFindCoordinator, handleInitProducerId, handleMetadata } from './handlers/metadata.js';
import { handleDeleteRecords, handleListOffsets, handleOffsetCommit, handleOffsetFetch, handleOffsetForLeaderEpoch } from './handlers/offsets.js';
import { handleProduce, producePipelinable } from './handlers/produce.js';
import { handleRawSasl, handleSaslAuthenticate, handleSaslHandshake } from './handlers/sasl.js';
import { ApiKey, type ApiDefinition } from './protocol/apis.js';
import type { RequestHeader } from './protocol/header.js';
import type { AlterConfigsRequest } from './protocol/requests/alter-configs.js';
import type { CreatePartitionsRequest } from './protocol/requests/create-partitions.js';
import type { CreateTopicsRequest } from './protocol/requests/create-topics.js';
import type { DeleteGroupsRequest } from './protocol/requests/delete-groups.js';
import type { DeleteRecordsRequest } from './protocol/requests/delete-records.js';
import type { DeleteTopicsRequest } from './protocol/requests/delete-topics.js';
import type { DescribeConfigsRequest } from './protocol/requests/describe-configs.js';
import type { DescribeGroupsRequest } from './protocol/requests/describe-groups.js';
import type { FetchRequest } from './protocol/requests/fetch.js';
import type { FindCoordinatorRequest } from './protocol/requests/find-coordinator.js';
import type { HeartbeatRequest } from './protocol/requests/heartbeat.js';
import type { InitProducerIdRequest } from './protocol/requests/init-producer-id.js';
import type { JoinGroupRequest } from './protocol/requests/join-group.js';
import type { LeaveGroupRequest } from './protocol/requests/leave-group.js';
import type { ListOffsetsRequest } from './protocol/requests/list-offsets.js';
import type { MetadataRequest } from './protocol/requests/metadata.js';
import type { OffsetCommitRequest } from './protocol/requests/offset-commit.js';
import type { OffsetFetchRequest } from './protocol/requests/offset-fetch.js';
import type { OffsetForLeaderEpochRequest } from './protocol/requests/offset-for-leader-epoch.js';
import type { ProduceRequest } from './protocol/requests/produce.js';
import type { SaslAuthenticateRequest } from './protocol/requests/sasl-authenticate.js';
import type { SaslHandshakeRequest } from './protocol/requests/sasl-handshake.js';
import type { SyncGroupRequest } from './protocol/requests/sync-group.js';

export class KafkaDispatcher implements KafkaRequestHandler {
  constructor(private readonly deps: KafkaDeps) {}

  handle(ctx: KafkaClientContext, api: ApiDefinition, header: RequestHeader, body: unknown, frame?: FrameUse): Promise<unknown> {
    const d = this.deps;
    const v = header.apiVersion;
    switch (api.key) {
      case ApiKey.Produce:
        return handleProduce(d, body as ProduceRequest, frame);
      case ApiKey.Fetch:
        return handleFetch(d, v, body as FetchRequest);
      case ApiKey.ListOffsets:
        return handleListOffsets(d, v, body as ListOffsetsRequest);
      case ApiKey.Metadata:
        return handleMetadata(d, ctx.listener, v, body as MetadataRequest);
      case ApiKey.OffsetCommit:
        return handleOffsetCommit(d, body as OffsetCommitRequest);
      case ApiKey.OffsetFetch:
        return Promise.resolve(handleOffsetFetch(d, body as OffsetFetchRequest));
      case ApiKey.FindCoordinator:
        return Promise.resolve(handleFindCoordinator(d, ctx.listener, body as FindCoordinatorRequest));
      case ApiKey.JoinGroup:
        return handleJoinGroup(d, ctx, v, body as JoinGroupRequest);
      case ApiKey.Heartbeat:
        return handleHeartbeat(d, body as HeartbeatRequest);
      case ApiKey.LeaveGroup:
        return handleLeaveGroup(d, v, body as LeaveGroupRequest);
      case ApiKey.SyncGroup:
        return handleSyncGroup(d, body as SyncGroupRequest);
      case ApiKey.DescribeGroups:
        return Promise.resolve(handleDescribeGroups(d, body as DescribeGroupsRequest));
      case ApiKey.ListGroups:
        return Promise.resolve(handleListGroups(d));
      case ApiKey.SaslHandshake:
        return Promise.resolve(handleSaslHandshake(ctx, v, body as SaslHandshakeRequest));
      case ApiKey.ApiVersions:
        return Promise.resolve(handleApiVersions());
      case ApiKey.CreateTopics:
        return handleCreateTopics(d, body as CreateTopicsRequest);
      case ApiKey.DeleteTopics:
        return handleDeleteTopics(d, body as DeleteTopicsRequest);
      case ApiKey.DeleteRecords:
        return handleDeleteRecords(d, body as DeleteRecordsRequest);
      case ApiKey.InitProducerId:
        return Promise.resolve(handleInitProducerId(d, body as InitProducerIdRequest));
      case ApiKey.OffsetForLeaderEpoch:
        return handleOffsetForLeaderEpoch(d, body as OffsetForLeaderEpochRequest);
      case ApiKey.DescribeConfigs:
        return Promise.resolve(handleDescribeConfigs(d, v, body as DescribeConfigsRequest));
      case ApiKey.AlterConfigs:
        return handleAlterConfigs(d, body as AlterConfigsRequest);
      case ApiKey.SaslAuthenticate:
        return handleSaslAuthenticate(d, ctx, body as SaslAuthenticateRequest);
      case ApiKey.CreatePartitions:
        return handleCreatePartitions(d, body as CreatePartitionsRequest);
      case ApiKey.DeleteGroups:
        return handleDeleteGroups(d, body as DeleteGroupsRequest);
      default:
        return Promise.reject(new Error(`no handler for API key ${api.key}`));
    }
  }

  pipelinable(api: ApiDefinition, body: unknown): boolean {
    return api.key === ApiKey.Produce && producePipelinable(this.deps, body as ProduceRequest);
  }

  handleRawSasl(ctx: KafkaClientContext, token: Buffer): Promise<Buffer> {
    return handleRawSasl(this.deps, ctx, token);
  }

  onRequest(api: ApiDefinition, ms: number, failed: boolean): void {
    this.deps.metrics.request(api.name, ms / 1000, failed);
  }
}
