export { configSchema, ROLES, STORAGE_ENGINES, type Config, type ConfigInput, type Role, type StorageEngineName } from './schema.js';
export { loadConfig, allConfigKeys, type LoadedConfig } from './load.js';
export { boundPorts, journalListeners, tlsConfigured, type PortBinding } from './listeners.js';
export { redactConfig, REDACTED } from './redact.js';
