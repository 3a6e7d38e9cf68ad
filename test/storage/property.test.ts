import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileEngine, recordBytes as fileRecordBytes } from '../../src/storage/file/engine.js';
import { MemoryEngine, recordBytes } from '../../src/storage/memory/engine.js';
import type { StorageEngine } from '../../src/storage/types.js';
import { removeDir, tempDir } from '../support/server.js';
import { checkEngineAgainstModel, propertyRuns, type EngineFactory } from './model.js';

/*
 * Model-based property tests: random command sequences against an engine and the
 * reference model in model.ts, compared after every command.
 *
 * STORAGE_PROPERTY_RUNS=<n> sets the number of runs of every property here. A
 * failure prints the shrunk command list and a replay line:
 *   STORAGE_PROPERTY_SEED=<seed> STORAGE_PROPERTY_PATH=<path> STORAGE_PROPERTY_REPLAY_PATH=<replayPath> \
 *     node --test --test-name-pattern='<test name>' dist/test/storage/property.test.js
 */

const memory = (maxBytesPerShard: number) => async () => new MemoryEngine({ maxBytesPerShard, retentionMs: -1, retentionBytes: -1, retentionCheckIntervalMs: 0 });

describe('memory engine against the model', () => {
  it('matches the model exactly when nothing is dropped', async () => {
    await checkEngineAgainstModel(
      'memory',
      { makeEngine: memory(1 << 30), maintenance: async (e) => void (e as MemoryEngine).enforceRetention(), unbounded: true, recordBytes, exactShardBytes: true },
      propertyRuns(400),
    );
  });

  it('with a small byte bound keeps a dense suffix of what was appended, dropping only the oldest', async () => {
    const boundBytes = 6000;
    await checkEngineAgainstModel(
      'memory (bounded)',
      { makeEngine: memory(boundBytes), unbounded: false, recordBytes, exactShardBytes: true, boundBytes, maxValueBytes: 700 },
      propertyRuns(400),
    );
  });
});

const SEGMENT_BYTES = 16 * 1024;

describe('file engine against the model', () => {
  const root = tempDir('robust-file-property-');
  after(() => removeDir(root));
  const dirs = new WeakMap<StorageEngine, string>();
  const open = async (dir: string): Promise<FileEngine> => {
    const e = await FileEngine.open({ dir, segmentBytes: SEGMENT_BYTES, flush: 'async', flushIntervalMs: 50, retentionMs: -1, retentionBytes: -1 });
    dirs.set(e, dir);
    return e;
  };
  const factory: EngineFactory = {
    makeEngine: () => open(mkdtempSync(join(root, 'run-'))),
    reopen: async (e) => {
      const dir = dirs.get(e)!;
      await e.close();
      return open(dir);
    },
    // With retention off this only reclaims CommitLog segments no shard needs.
    maintenance: (e) => (e as FileEngine).enforceRetention(),
    destroy: async (e) => removeDir(dirs.get(e)!),
    unbounded: true,
    recordBytes: fileRecordBytes,
    exactShardBytes: true,
    // Larger values, batches cut to 12 KiB: most runs roll the 16 KiB segments over a few times.
    maxValueBytes: 2500,
    largeValueWeight: 3,
    maxBatchBytes: 12 * 1024,
  };

  it('matches the model, across close + reopen, segment rollover and reclaim', async () => {
    await checkEngineAgainstModel('file', factory, propertyRuns(150));
  });
});
