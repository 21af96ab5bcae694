/**
 * Resolves once `condition` holds, checking every `intervalMs`; rejects after
 * `timeoutMs` with what it waited for (`what`, or else the condition's source),
 * so a test waits on the state it needs and a stuck wait names itself.
 * An error thrown by `condition` propagates: it is not "not yet".
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what?: string,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what ?? condition.toString()}`);
    }
    await Bun.sleep(intervalMs);
  }
}
