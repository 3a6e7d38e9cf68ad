/**
 * Deterministic simulation of the Raft core: many seeded schedules of crashes,
 * restarts, partitions, lost / duplicated / reordered messages, compaction,
 * membership changes and leader transfers, checking Raft's safety properties after
 * every step, liveness once faults stop, and linearizability of the clients' history.
 *
 * Environment:
 *   RAFT_SIM_SEEDS=<n>       number of seeds (default 2400: about a minute on 2 cores)
 *   RAFT_SIM_STEPS=<n>       steps per seed (default 5000; then up to 20000 more to converge)
 *   RAFT_SIM_SEED=<n>        run only this seed (replay a failure)
 *   RAFT_SIM_FIRST_SEED=<n>  first seed of the range (default 1)
 *   RAFT_SIM_TRACE=1         print every event of the run(s) to stderr
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RaftCore } from '../../../src/meta/raft/core/raft.js';
import { SimCluster, SimFailure, formatFailure, scenarioFor, type SimResult } from './sim/cluster.js';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

const single = process.env['RAFT_SIM_SEED'];
const steps = envInt('RAFT_SIM_STEPS', 5000);
const count = envInt('RAFT_SIM_SEEDS', 2400);
const firstSeed = envInt('RAFT_SIM_FIRST_SEED', 1);
const trace = process.env['RAFT_SIM_TRACE'] === '1';
const seeds: number[] = single !== undefined && single !== '' ? [envInt('RAFT_SIM_SEED', 0)] : Array.from({ length: count }, (_, i) => firstSeed + i);
const stepsEnv = process.env['RAFT_SIM_STEPS'] !== undefined ? ` RAFT_SIM_STEPS=${steps}` : '';

function runSeed(seed: number): SimResult {
  const sim = new SimCluster((config, restored) => new RaftCore(config, restored), {
    seed,
    steps,
    ...(trace ? { log: (line: string) => process.stderr.write(`[${seed}] ${line}\n`) } : {}),
  });
  return sim.run();
}

describe('Raft deterministic simulation', () => {
  it(`${seeds.length === 1 ? `seed ${seeds[0]}` : `${seeds.length} seeds (${seeds[0]}..${seeds.at(-1)})`}, ${steps} steps each`, (t) => {
    const failures: SimFailure[] = [];
    const totals = { commits: 0, ops: 0, completed: 0, reads: 0, crashes: 0, snapshots: 0, confChanges: 0, terms: 0, converge: 0, delivered: 0 };
    const byScenario = new Map<string, number>();
    const started = Date.now();
    for (const seed of seeds) {
      let r: SimResult;
      try {
        r = runSeed(seed);
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err;
        failures.push(err);
        t.diagnostic(`seed ${seed} FAILED: ${err.invariant} at step ${err.step}`);
        continue;
      }
      byScenario.set(r.scenario.name, (byScenario.get(r.scenario.name) ?? 0) + 1);
      totals.commits += r.commits;
      totals.ops += r.ops.total;
      totals.completed += r.ops.completed;
      totals.reads += r.ops.reads;
      totals.crashes += r.crashes;
      totals.snapshots += r.snapshotsSent;
      totals.confChanges += r.confChanges;
      totals.terms += r.terms;
      totals.converge = Math.max(totals.converge, r.convergeSteps);
      totals.delivered += r.messagesDelivered;
      if (seeds.length === 1) t.diagnostic(JSON.stringify(r));
    }
    t.diagnostic(
      `${seeds.length} schedules x ${steps} steps in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `scenarios ${JSON.stringify(Object.fromEntries(byScenario))}; totals ${JSON.stringify(totals)}`,
    );
    if (failures.length > 0) {
      const first = failures[0]!;
      const others = failures
        .slice(1)
        .map((f) => `  seed ${f.seed} (${scenarioFor(f.seed).name}): step ${f.step}, ${f.invariant} — replay: RAFT_SIM_SEED=${f.seed}${stepsEnv} node --test dist/test/meta/raft/simulation.test.js`);
      assert.fail(
        `${failures.length} of ${seeds.length} schedules failed.\n\n${formatFailure(first, stepsEnv)}` + (others.length > 0 ? `\n\nother failing seeds:\n${others.join('\n')}` : ''),
      );
    }
  });
});
