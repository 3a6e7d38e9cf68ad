/**
 * Errors of the record layer. Each is a KafkaProtocolError: the Produce
 * handler answers the partition with its errorCode and the connection lives
 * on (a bad batch is the producer's problem, not the frame's).
 */
import { ErrorCode, KafkaProtocolError } from '../protocol/errors.js';

/** A batch or message failed its CRC, is truncated, or is otherwise malformed (CORRUPT_MESSAGE). */
export class CorruptRecordError extends KafkaProtocolError {
  constructor(detail: string) {
    super(ErrorCode.CORRUPT_MESSAGE, `corrupt record batch: ${detail}`);
  }
}

/** A compression codec this broker does not know (attribute codes 5-7) (UNSUPPORTED_COMPRESSION_TYPE). */
export class UnsupportedCompressionError extends KafkaProtocolError {
  constructor(readonly codec: number) {
    super(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `unsupported compression codec ${codec}`);
  }
}

/** Decompressed records would exceed the configured bound (MESSAGE_TOO_LARGE): a zip bomb or an oversized batch. */
export class DecompressedTooLargeError extends KafkaProtocolError {
  constructor(readonly limit: number) {
    super(ErrorCode.MESSAGE_TOO_LARGE, `decompressed records exceed ${limit} bytes`);
  }
}

/** Any error decodeRecords / decompress may throw. */
export type RecordsError = CorruptRecordError | UnsupportedCompressionError | DecompressedTooLargeError;

export function isRecordsError(err: unknown): err is RecordsError {
  return err instanceof CorruptRecordError || err instanceof UnsupportedCompressionError || err instanceof DecompressedTooLargeError;
}
