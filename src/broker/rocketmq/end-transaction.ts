/**
 * EndTransaction: a producer commits or rolls back the transaction of a half
 * message it sent (on its own, or answering the broker's check). The request
 * names the transaction by the id the SendMessage answer gave, with the
 * message id and topic it was sent with.
 */
import { RocketmqError } from './errors.js';
import { ok, type Resource, type StatusOnlyResponse } from './proto.js';
import type { Transactions } from './transactions.js';
import { topicName } from './validate.js';

export interface EndTransactionRequest {
  topic?: Resource;
  messageId?: string;
  transactionId?: string;
  resolution?: 'TRANSACTION_RESOLUTION_UNSPECIFIED' | 'COMMIT' | 'ROLLBACK';
  source?: 'SOURCE_UNSPECIFIED' | 'SOURCE_CLIENT' | 'SOURCE_SERVER_CHECK';
  traceContext?: string;
}

export async function endTransaction(transactions: Transactions, req: EndTransactionRequest): Promise<StatusOnlyResponse> {
  const topic = topicName(req.topic);
  const transactionId = req.transactionId ?? '';
  if (transactionId === '') throw new RocketmqError('INVALID_TRANSACTION_ID', 'EndTransaction carries no transaction id');
  const messageId = req.messageId ?? '';
  if (messageId === '') throw new RocketmqError('ILLEGAL_MESSAGE_ID', 'EndTransaction carries no message id');
  const resolution = req.resolution;
  if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK') throw new RocketmqError('BAD_REQUEST', `transaction resolution must be COMMIT or ROLLBACK, got ${resolution ?? 'none'}`);
  await transactions.end({ topic, messageId, transactionId, resolution, fromCheck: req.source === 'SOURCE_SERVER_CHECK' });
  return { status: ok() };
}
