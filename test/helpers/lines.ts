// Output of a child process, line by line as it arrives, so a test can wait on what it says.

/** Collects `stream` line by line as it arrives; `ended` resolves at its end. */
export function collectLines(stream: ReadableStream<Uint8Array>): { lines: string[]; ended: Promise<void> } {
  const lines: string[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of stream) {
      buffered += decoder.decode(chunk, { stream: true });
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      lines.push(...parts);
    }
  })();
  return { lines, ended };
}
