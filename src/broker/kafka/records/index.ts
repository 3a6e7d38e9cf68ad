/**
 * Kafka record formats: record batches (magic 2), legacy message sets
 * (magic 0/1) and their compression codecs.
 */
export {
  COMPRESSIONS,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  compress,
  compressionCode,
  compressionFromCode,
  decompress,
  type Compression,
} from './compression.js';
export { CorruptRecordError, DecompressedTooLargeError, UnsupportedCompressionError, isRecordsError, type RecordsError } from './errors.js';
export { encodeMessageSet } from './message-set.js';
export {
  RECORD_BATCH_OVERHEAD,
  decodeRecords,
  encodeRecordBatch,
  readBatchHeaders,
  checkBatchRecords,
  type BatchHeader,
  type DecodeRecordsOptions,
  type EncodableRecord,
  type EncodeRecordBatchOptions,
  type KafkaRecord,
  type KafkaRecordHeader,
  type RecordBatch,
} from './record-batch.js';
