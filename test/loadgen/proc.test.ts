import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ProcSampler, openFilesLimit, parseStatCpuTicks, parseStatusRss } from '../../src/loadgen/proc.js';

describe('/proc sampling', () => {
  it('parses utime + stime even when the command has spaces and parentheses', () => {
    const stat = '1234 (node (worker) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0 12345 1000000 5000';
    assert.equal(parseStatCpuTicks(stat), 325);
  });

  it('parses VmRSS', () => {
    assert.equal(parseStatusRss('Name:\tnode\nVmHWM:\t  200 kB\nVmRSS:\t  123456 kB\n'), 123456 * 1024);
    assert.throws(() => parseStatusRss('Name: x\n'));
  });

  it('samples a live process', { skip: !existsSync('/proc/self/stat') }, () => {
    const s = new ProcSampler(process.pid);
    const a = s.sample();
    let x = 0;
    for (let i = 0; i < 2e7; i++) x += i;
    const b = s.sample();
    s.close();
    assert.ok(x > 0);
    assert.ok(b.cpuUs >= a.cpuUs);
    assert.ok(b.rssBytes > 1024 * 1024);
    assert.ok(b.atNs > a.atNs);
    assert.ok((openFilesLimit() ?? 1) > 0);
    assert.throws(() => new ProcSampler(2 ** 30));
  });
});
