// The small pure pieces of the publisher: subject coverage, backoff, the
// log throttling. Error classification: classify.test.ts.
import { expect, test } from "bun:test";
import { subjectsCover } from "../../src/publish/subjects.ts";
import { backoffDelay, PUBLISH_BACKOFF } from "../../src/backoff.ts";
import { LogThrottle } from "../../src/log.ts";

test("subjectsCover: which stream subjects cover tapio.events.>", () => {
  const covers = (...filters: string[]) => subjectsCover(filters, "tapio.events");
  expect(covers(">")).toBe(true);
  expect(covers("tapio.>")).toBe(true);
  expect(covers("*.events.>")).toBe(true);
  expect(covers("tapio.events.>")).toBe(true);
  expect(covers("tapio.*.>")).toBe(true);
  expect(covers("other.>", "tapio.>")).toBe(true);
  // together: one token, and more than one token
  expect(covers("tapio.events.*", "tapio.events.*.>")).toBe(true);

  expect(covers("tapio.events.kubelet")).toBe(false);
  expect(covers("tapio.events.*")).toBe(false);
  expect(covers("tapio.events")).toBe(false);
  expect(covers("tapio.events.*.>")).toBe(false);
  expect(covers("tapio.*")).toBe(false);
  expect(covers("other.>")).toBe(false);
  expect(covers("tapio.events.kubelet", "tapio.events.k8s_resource")).toBe(false);
  expect(covers()).toBe(false);
  expect(subjectsCover(["a.b.c.>"], "a.b.c")).toBe(true);
  expect(subjectsCover(["a.*.c.>"], "a.b")).toBe(false);
});

test("backoffDelay: doubles from 50 ms to a 5 s cap, jittered within the upper half", () => {
  expect(backoffDelay(0, PUBLISH_BACKOFF, () => 0)).toBe(25);
  expect(backoffDelay(0, PUBLISH_BACKOFF, () => 1)).toBe(50);
  expect(backoffDelay(3, PUBLISH_BACKOFF, () => 1)).toBe(400);
  expect(backoffDelay(10, PUBLISH_BACKOFF, () => 1)).toBe(5000);
  expect(backoffDelay(10_000, PUBLISH_BACKOFF, () => 0)).toBe(2500);
});

test("LogThrottle: one line per key per interval, counting the rest", () => {
  let now = 0;
  const throttle = new LogThrottle(1000, () => now);
  expect(throttle.take("timeout")).toBe(0);
  expect(throttle.take("timeout")).toBeUndefined();
  expect(throttle.take("timeout")).toBeUndefined();
  expect(throttle.take("disconnected")).toBe(0);
  now = 1000;
  expect(throttle.take("timeout")).toBe(2);
  expect(throttle.take("timeout")).toBeUndefined();
});
