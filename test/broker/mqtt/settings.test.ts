import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/common/config/index.js';
import { mqttSettings } from '../../../src/broker/mqtt/settings.js';

describe('MQTT settings from the config', () => {
  it('maps max_queued_messages = 0 to "no limit" and keeps other values', () => {
    assert.equal(mqttSettings(loadConfig(undefined, { ROBUST_MQTT_MAX_QUEUED_MESSAGES: '0' }).config).maxQueuedMessages, Infinity);
    assert.equal(mqttSettings(loadConfig(undefined, {}).config).maxQueuedMessages, 1000);
  });

  it('carries ACL rules from the config, client_id renamed', () => {
    const env = { ROBUST_MQTT_ACL: '[{ permission = "deny", action = "subscribe", topic = "x/#", client_id = "c1" }]' };
    const s = mqttSettings(loadConfig(undefined, env).config);
    assert.deepEqual(s.acl, [{ permission: 'deny', action: 'subscribe', topic: 'x/#', clientId: 'c1' }]);
  });
});
