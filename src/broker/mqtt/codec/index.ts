/** MQTT 3.1 / 3.1.1 / 5.0 codec: packet types, stream decoder, encoder (with the PUBLISH fan-out fast path). */
export * from './packets.js';
export {
  MAX_VARINT,
  MqttDecodeError,
  MqttDecoder,
  PACKET_NAMES,
  PROP_CONTEXTS,
  PacketType,
  decodePacketBuffer,
  isValidReasonCode,
  type ConnackReply,
  type MqttDecoderOptions,
} from './decoder.js';
export {
  PreparedPublish,
  connackReturnCodeV3,
  encode,
  encodePublish,
  encodePublishHeader,
  encodedLength,
  preparePublish,
  publishSize,
  varintSize,
  writePublish,
  type PublishDelivery,
} from './encoder.js';
