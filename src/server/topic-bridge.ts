/**
 * Joins the protocols of a broker node on the topic bus (broker/core): MQTT's
 * live subscribers on one side, the stored topics Kafka (and later RocketMQ)
 * read on the other. A Kafka record reaches MQTT subscribers of the topic of
 * the same name at QoS 1; an MQTT publish to a topic that exists as a stored
 * topic is appended to one of its shards (by key hash, else round robin).
 *
 * MQTT publishes are bridged after they are routed: the PUBACK does not wait
 * for the append (an MQTT client's acknowledgement covers MQTT delivery).
 */
import type { KafkaBusPort } from '../broker/kafka/ports.js';
import type { MqttServer } from '../broker/mqtt/server.js';
import { TopicBus, type BusRecord } from '../broker/core/topic-bus.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { MetaAgent } from '../meta/agent.js';
import { shardId } from '../meta/state/records/shards.js';
import type { StorageService } from './storage-service.js';

function keyHash(key: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  return h >>> 0;
}

export function createTopicBridge(opts: { agent: MetaAgent; storage: StorageService; nodeId: number; log: Logger }): { bus: TopicBus; kafkaPort: KafkaBusPort; attachMqtt(mqtt: MqttServer): void } {
  const bus = new TopicBus();
  const view = opts.agent.replica.view;
  let roundRobin = 0;
  bus.attach('storage', {
    interested: (topic) => !topic.startsWith('__') && view.topics.has(topic),
    deliver: (records) => {
      const topic = records[0]!.topic;
      const shards = view.shards.forTopic(topic);
      if (shards.length === 0) return;
      for (const r of records) {
        const n = r.key ? keyHash(r.key) % shards.length : roundRobin++ % shards.length;
        const shard = shardId(topic, n);
        if (!opts.storage.adapter.hasShard(shard)) continue;
        opts.storage.adapter
          .append(shard, [{ timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers }])
          .catch((err: unknown) => opts.log.warn({ topic, shard, err: errorMessage(err) }, 'bridge: could not append an MQTT message to its stored topic'));
      }
    },
  });
  return {
    bus,
    kafkaPort: {
      interested: (topic) => bus.interested('storage', topic),
      published: (records) => bus.publish('storage', records),
    },
    attachMqtt(mqtt) {
      const broker = mqtt.broker;
      bus.attach('mqtt', {
        interested: (topic) => broker.hasSubscribers(topic),
        deliver: (records: BusRecord[]) => {
          const now = Date.now();
          for (const r of records) {
            broker.publish({
              topic: r.topic,
              payload: r.value ?? Buffer.alloc(0),
              qos: 1,
              retain: false,
              properties: r.headers.length > 0 ? { userProperties: r.headers.map((h) => [h.key, h.value.toString('utf8')] as [string, string]) } : undefined,
              expiresAt: undefined,
              publisher: '',
              receivedAt: now,
            });
          }
        },
      });
      broker.onClientPublish = (msg) => {
        if (!bus.interested('mqtt', msg.topic)) return;
        const props = msg.properties?.userProperties;
        bus.publish('mqtt', [{ topic: msg.topic, key: null, value: msg.payload, headers: props ? props.map(([key, value]) => ({ key, value: Buffer.from(value, 'utf8') })) : [], timestamp: msg.receivedAt }]);
      };
    },
  };
}

