import assert from 'node:assert/strict';
import { ByteBudget } from '../../src/copy/budget.js';

describe('copy ByteBudget', () => {
  it('holds at most its limit, lets one oversized request through alone, and wakes waiters in order', async () => {
    const b = new ByteBudget(100);
    await b.acquire(60);
    const order: string[] = [];
    const second = b.acquire(60).then(() => order.push('second'));
    const third = b.acquire(10).then(() => order.push('third'));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, [], 'both wait behind the first 60');
    b.release(60);
    await Promise.all([second, third]);
    assert.deepEqual(order, ['second', 'third']);
    assert.equal(b.inUse, 70);
    b.release(70);
    await b.acquire(500);
    assert.equal(b.inUse, 500, 'a request larger than the limit goes through when nothing is held');
  });

  it('an aborted wait rejects and takes nothing', async () => {
    const b = new ByteBudget(10);
    await b.acquire(10);
    const ac = new AbortController();
    const waiting = b.acquire(5, ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    b.release(10);
    assert.equal(b.inUse, 0);
  });
});
