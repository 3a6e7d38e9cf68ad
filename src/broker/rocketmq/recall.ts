/**
 * RecallMessage: cancels a delay message that is not yet due, named by the
 * recall handle its SendMessage answer carried. Clients treat the handle as
 * opaque text; here it names the broker node whose timer log holds the
 * message, the timer's place in that log and the message id (so a handle
 * from before a storage reset cannot cancel another message).
 */
import { RocketmqError } from './errors.js';
import type { RocketmqDeps } from './ports.js';
import { ok, type Resource, type Status } from './proto.js';
import type { TimerStore } from './timer-store.js';
import { topicName } from './validate.js';

export interface RecallMessageRequest {
  topic?: Resource;
  recallHandle?: string;
}

export interface RecallMessageResponse {
  status: Status;
  messageId?: string;
}

export interface RecallHandle {
  nodeId: number;
  /** The timer's offset in the node's timer log. */
  offset: number;
  deliverAt: number;
  messageId: string;
}

const VERSION = 'v1';
/** The message id comes last and may itself hold spaces. */
const PATTERN = new RegExp(`^${VERSION} (\\d{1,5}) (\\d{1,16}) (\\d{1,16}) (.+)$`, 's');

export function encodeRecallHandle(h: RecallHandle): string {
  return Buffer.from([VERSION, h.nodeId, h.offset, h.deliverAt, h.messageId].join(' '), 'utf8').toString('base64url');
}

export function decodeRecallHandle(text: string): RecallHandle {
  const m = PATTERN.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!m) throw new RocketmqError('BAD_REQUEST', `recall handle "${text.slice(0, 80)}" is not one this broker issued`);
  return { nodeId: Number(m[1]), offset: Number(m[2]), deliverAt: Number(m[3]), messageId: m[4]! };
}

export async function recallMessage(deps: RocketmqDeps, timers: TimerStore, req: RecallMessageRequest): Promise<RecallMessageResponse> {
  const topic = topicName(req.topic);
  if (!req.recallHandle) throw new RocketmqError('BAD_REQUEST', 'RecallMessage carries no recall handle');
  const h = decodeRecallHandle(req.recallHandle);
  if (h.nodeId !== deps.meta.nodeId) throw new RocketmqError('NOT_FOUND', `the delay message ${h.messageId} is held by broker ${h.nodeId}: recall it there`);
  const messageId = await timers.recall(topic, h.offset, h.messageId);
  return { status: ok(), messageId };
}
