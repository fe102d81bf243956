/** The floor under a transfer's speed: averaged over a window of waiting, reset after each window that passes. */
import assert from 'node:assert/strict';
import { describeRate, RateFloor, SLOW_TRANSFER_CODE, SlowTransferError } from '../../src/net/rate-floor.js';

describe('net/rate-floor', () => {
  it('cuts a transfer whose window of waiting moved less than the floor', () => {
    const floor = new RateFloor({ windowMs: 1000, minBytesPerSecond: 1024 });
    // 1 byte every 200 ms: nothing to judge until the waits add up to the window.
    for (let i = 0; i < 4; i++) floor.record(1, 200);
    assert.throws(
      () => floor.record(1, 200),
      (e: unknown) => {
        assert.ok(e instanceof SlowTransferError);
        assert.equal(e.code, SLOW_TRANSFER_CODE);
        assert.equal(e.bytes, 5);
        assert.equal(e.waitedMs, 1000);
        assert.equal(e.message, 'the answer came at 5 B/s over 1 s, under the 1 KiB/s a transfer must keep');
        return true;
      },
    );
  });

  it('a window that reaches the floor starts a new one: a slow start is not held against a fast middle', () => {
    const floor = new RateFloor({ windowMs: 1000, minBytesPerSecond: 1024 });
    floor.record(2048, 1000); // 2 KiB/s: passes, window reset
    floor.record(10, 900); // not a full window yet
    assert.throws(() => floor.record(10, 200), /the answer came at 18 B\/s over 1\.1 s/);
  });

  it('only waiting counts: chunks that came at once (however long the reader held them) never add up to a window', () => {
    const floor = new RateFloor({ windowMs: 1000 });
    for (let i = 0; i < 10_000; i++) floor.record(1, 0);
  });

  it('0 turns the floor off', () => {
    const floor = new RateFloor({ windowMs: 10, minBytesPerSecond: 0 });
    for (let i = 0; i < 100; i++) floor.record(0, 1000);
  });

  it('describeRate', () => {
    assert.equal(describeRate(12.4), '12 B/s');
    assert.equal(describeRate(1024), '1 KiB/s');
    assert.equal(describeRate(3.5 * 1024 * 1024), '3.5 MiB/s');
  });
});
