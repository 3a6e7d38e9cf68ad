import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32c } from '../../../../src/common/crc.js';

const enc = new TextEncoder();

describe('crc32c', () => {
  it('gives the standard check value for "123456789"', () => {
    assert.equal(crc32c(enc.encode('123456789')), 0xe3069283);
  });

  it('continues a running checksum across buffers and is unsigned', () => {
    assert.equal(crc32c(enc.encode('56789'), crc32c(enc.encode('1234'))), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    for (let i = 0; i < 50; i++) {
      const v = crc32c(enc.encode(`x${i}`));
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    }
  });
});
