// withTimeLimit: the signal a batch is published under (spill_after, or the
// shutdown deadline first). Its timer must not outlive the publish: an armed
// timer per batch is a wakeup per batch for nothing on an idle agent.
import { afterEach, describe, expect, test } from "bun:test";
import { withTimeLimit } from "../../src/wait.ts";

/** Records the timers set and cleared while a test runs. */
function watchTimers() {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const armed = new Set<unknown>();
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    const id = realSet(() => {
      armed.delete(id);
      fn();
    }, ms);
    armed.add(id);
    return id;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id: Parameters<typeof clearTimeout>[0]) => {
    armed.delete(id);
    realClear(id);
  }) as typeof clearTimeout;
  restore = () => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  };
  return armed;
}
let restore = () => {};
afterEach(() => restore());

describe("withTimeLimit", () => {
  test("aborts when the time is up, with a TimeoutError", async () => {
    const reason = await withTimeLimit(new AbortController().signal, 20, (signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason))));
    expect(reason).toBeInstanceOf(DOMException);
    expect((reason as DOMException).name).toBe("TimeoutError");
  });

  test("aborts when the parent aborts, also one aborted already", async () => {
    const parent = new AbortController();
    const seen = withTimeLimit(parent.signal, 60_000, (signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason))));
    parent.abort("deadline");
    expect(await seen).toBe("deadline");
    expect(await withTimeLimit(parent.signal, 60_000, async (signal) => signal.aborted)).toBe(true);
  });

  test("once the work settled, nothing is left armed, and the parent's abort no longer reaches it", async () => {
    const armed = watchTimers();
    const parent = new AbortController();
    let inner: AbortSignal | undefined;
    const result = await withTimeLimit(parent.signal, 60_000, async (signal) => {
      inner = signal;
      expect(armed.size).toBe(1);
      return 42;
    });
    expect(result).toBe(42);
    expect(armed.size).toBe(0);
    parent.abort();
    expect(inner!.aborted).toBe(false);
  });

  test("a rejection passes through, and clears the timer too", async () => {
    const armed = watchTimers();
    await expect(
      withTimeLimit(new AbortController().signal, 60_000, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(armed.size).toBe(0);
  });
});
