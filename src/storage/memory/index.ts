export { MemoryEngine, RECORD_OVERHEAD_BYTES, recordBytes, type MemoryEngineOptions } from './engine.js';
