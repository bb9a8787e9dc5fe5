import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Backoff, delayMs } from "../src/pure/backoff";

describe("delayMs", () => {
  const table: [number, number][] = [
    [0, 1_000],
    [1, 2_000],
    [2, 4_000],
    [3, 8_000],
    [4, 16_000],
    [5, 30_000],
    [6, 30_000],
    [50, 30_000],
    [5_000, 30_000],
  ];
  for (const [attempt, expected] of table) {
    it(`attempt ${attempt} waits ${expected} ms`, () => assert.equal(delayMs(attempt), expected));
  }
});

describe("Backoff", () => {
  it("doubles while the server keeps failing to stay up", () => {
    const b = new Backoff();
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      b.started(now);
      now += 5_000; // crashes after 5 s: not healthy
      const d = b.stopped(now);
      delays.push(d);
      now += d;
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it("counts failures to start (no started()) too", () => {
    const b = new Backoff();
    assert.deepEqual([b.stopped(0), b.stopped(1), b.stopped(2)], [1_000, 2_000, 4_000]);
    assert.equal(b.attempts, 3);
  });

  it("starts over after 60 s healthy", () => {
    const b = new Backoff();
    b.stopped(0);
    b.stopped(0);
    b.started(10_000);
    assert.equal(b.stopped(10_000 + 59_999), 4_000, "59.999 s is not yet healthy");
    b.started(100_000);
    assert.equal(b.stopped(160_000), 1_000, "60 s up resets the delays");
  });

  it("reset() forgets failures", () => {
    const b = new Backoff();
    b.stopped(0);
    b.stopped(0);
    b.reset();
    assert.equal(b.stopped(0), 1_000);
  });
});
