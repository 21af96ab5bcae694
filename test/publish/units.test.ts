// The small pure pieces of the publisher: subject coverage, backoff, the
// log throttling and error classification.
import { expect, test } from "bun:test";
import { NoRespondersError, RequestError, TimeoutError, InvalidArgumentError, ClosedConnectionError } from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import { subjectsCover } from "../../src/publish/subjects.ts";
import { backoffDelay, PUBLISH_BACKOFF } from "../../src/backoff.ts";
import { LogThrottle } from "../../src/log.ts";
import { classifyError } from "../../src/publish/classify.ts";

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

test("classifyError: nats.js errors to short reasons, through cause chains", () => {
  const api = (description: string) => new JetStreamApiError({ code: 503, err_code: 10077, description });
  expect(classifyError(new TimeoutError())).toBe("timeout");
  expect(classifyError(new RequestError("no responders", { cause: new NoRespondersError("x") }))).toBe("no_responders");
  expect(classifyError(new Error("jetstream is not enabled", { cause: new RequestError("503", { cause: new NoRespondersError("x") }) }))).toBe("no_responders");
  expect(classifyError(new RequestError("connection disconnected"))).toBe("disconnected");
  expect(classifyError(new ClosedConnectionError())).toBe("disconnected");
  expect(classifyError(api("maximum messages exceeded"))).toBe("stream_full");
  expect(classifyError(api("maximum bytes exceeded"))).toBe("stream_full");
  expect(classifyError(api("insufficient resources"))).toBe("storage");
  expect(classifyError(api("message size exceeds maximum allowed"))).toBe("max_payload");
  expect(classifyError(InvalidArgumentError.format("payload", "max_payload size exceeded"))).toBe("max_payload");
  expect(classifyError(InvalidArgumentError.format("header", "values cannot contain \\r or \\n"))).toBe("invalid");
  expect(classifyError(new Error("something else"))).toBe("other");
  expect(classifyError("not an error")).toBe("other");
});
