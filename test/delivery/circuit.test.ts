import { describe, expect, test } from "bun:test";
import { CircuitBreaker, CircuitBreakers, type CircuitState } from "../../src/delivery/circuit.ts";

function breaker() {
  let now = 1_000_000;
  const changes: string[] = [];
  const b = new CircuitBreaker("tapio.events.kernel", {
    failureThreshold: 3,
    openForMs: 5000,
    probeTimeoutMs: 2000,
    now: () => now,
    onChange: (_s, from: CircuitState, to: CircuitState) => changes.push(`${from}->${to}`),
  });
  return { b, changes, advance: (ms: number) => (now += ms) };
}

describe("CircuitBreaker", () => {
  test("closed: stays closed below the threshold; a success resets the count", () => {
    const { b } = breaker();
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
  });

  test("closed -> open after N consecutive failures; open lets nothing through", () => {
    const { b, changes, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
    advance(4999);
    expect(b.allow()).toBe(false);
    expect(changes).toEqual(["closed->open"]);
    expect(b.snapshot()).toMatchObject({ state: "open", consecutive_failures: 3, opens: 1 });
  });

  test("open -> half-open after open_for: exactly one probe; its success closes", () => {
    const { b, changes, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(5000);
    expect(b.allow()).toBe(true); // the probe
    expect(b.state).toBe("half_open");
    expect(b.allow()).toBe(false); // no second probe while the first is out
    b.success();
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
    expect(changes).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
  });

  test("half-open -> open when the probe fails, and probing starts over after open_for", () => {
    const { b, changes, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(5000);
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
    advance(5000);
    expect(b.allow()).toBe(true);
    b.success();
    expect(changes).toEqual(["closed->open", "open->half_open", "half_open->open", "open->half_open", "half_open->closed"]);
    expect(b.snapshot().opens).toBe(2);
  });

  test("cannot stick half-open: a probe that never reports counts as failed", () => {
    const { b, changes, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    advance(5000);
    expect(b.allow()).toBe(true); // probe sent, never answered
    advance(1999);
    expect(b.state).toBe("half_open");
    advance(1);
    expect(b.state).toBe("open");
    advance(5000);
    expect(b.allow()).toBe(true); // a new probe
    b.success();
    expect(b.state).toBe("closed");
    expect(changes).toEqual(["closed->open", "open->half_open", "half_open->open", "open->half_open", "half_open->closed"]);
  });

  test("CircuitBreakers: one per subject; blocked() lists the open ones and lets a due probe through", () => {
    let now = 0;
    const set = new CircuitBreakers({ failureThreshold: 1, openForMs: 100, probeTimeoutMs: 100, now: () => now });
    set.for("a").failure();
    set.for("b").success();
    expect([...set.blocked()]).toEqual(["a"]);
    now = 100;
    expect([...set.blocked()]).toEqual([]); // "a" turned half-open: the caller's next publish is the probe
    expect(set.for("a").state).toBe("half_open");
    expect([...set.blocked()]).toEqual(["a"]); // probe out
    set.for("a").success();
    expect([...set.blocked()]).toEqual([]);
    expect(set.all().map((b) => b.subject)).toEqual(["a", "b"]);
  });
});
