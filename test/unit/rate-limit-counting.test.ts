import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CounterOutage } from '../../src/http/rate-limit-fail-open.js';
import { createLogger } from '../../src/logger.js';
import { FixedWindowCounter } from '../../src/supervisor/rate-limit-store.js';

describe('the supervisor’s fixed-window counter', () => {
  it('counts a key’s requests in a window that starts at its first one, then starts over', () => {
    const counter = new FixedWindowCounter();
    expect(counter.hit('a', 60_000, 1_000)).toEqual({ current: 1, ttl: 60_000 });
    expect(counter.hit('a', 60_000, 31_000)).toEqual({ current: 2, ttl: 30_000 });
    expect(counter.hit('b', 60_000, 31_000)).toEqual({ current: 1, ttl: 60_000 });
    expect(counter.hit('a', 60_000, 60_999)).toEqual({ current: 3, ttl: 1 });
    expect(counter.hit('a', 60_000, 61_000)).toEqual({ current: 1, ttl: 60_000 });
  });

  it('drops the windows that ended, so memory follows the clients of the last window', () => {
    const counter = new FixedWindowCounter();
    for (let index = 0; index < 1_000; index++) counter.hit(`client-${index}`, 60_000, index);
    counter.hit('late', 60_000, 30_000);
    counter.expire(60_500);
    expect(counter.size).toBe(500);
    counter.expire(90_000);
    expect(counter.size).toBe(0);
  });

  it('keeps at most maxKeys windows, forgetting the oldest first', () => {
    const counter = new FixedWindowCounter(3);
    for (const key of ['a', 'b', 'c']) counter.hit(key, 60_000, 0);
    counter.hit('a', 60_000, 1);
    counter.hit('d', 60_000, 2);
    expect(counter.size).toBe(3);
    // 'a' was counted again but its window is the oldest: it went first.
    expect(counter.hit('a', 60_000, 3)).toEqual({ current: 1, ttl: 60_000 });
    // …which pushed out 'b', the next oldest; 'c' keeps its count.
    expect(counter.hit('c', 60_000, 4)).toEqual({ current: 2, ttl: 59_996 });
    expect(counter.size).toBe(3);
  });
});

describe('an outage of the rate-limit counter', () => {
  it('is logged once per interval with the requests let through, and its end once', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const outage = new CounterOutage(createLogger({ level: 'info', destination }), 'Redis', 200);
    outage.recovered();
    for (let index = 0; index < 5; index++) outage.failed(new Error('connect ECONNREFUSED'), index > 0);
    await sleep(250);
    outage.failed(new Error('Command timed out'), true);
    outage.failed(new Error('Command timed out'), true);
    outage.recovered();
    outage.recovered();

    expect(lines.map(({ level, msg, reason, requestsUnlimited, counter }) => ({ level, msg, reason, requestsUnlimited, counter }))).toEqual([
      {
        level: 40,
        msg: 'rate limit not enforced: Redis does not answer; requests pass unlimited until it does',
        reason: 'connect ECONNREFUSED',
        requestsUnlimited: 0,
        counter: 'Redis',
      },
      {
        level: 40,
        msg: 'rate limit not enforced: Redis does not answer; requests pass unlimited until it does',
        reason: 'Command timed out',
        requestsUnlimited: 5,
        counter: 'Redis',
      },
      { level: 30, msg: 'rate limit enforced again: Redis answers', reason: undefined, requestsUnlimited: 1, counter: 'Redis' },
    ]);
  });
});
