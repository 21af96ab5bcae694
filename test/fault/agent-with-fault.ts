// The agent exactly as src/main.ts runs it, plus a bug outside every
// collector: on SIGUSR2 a timer throws (`exception`) or a promise nobody
// awaits rejects (`rejection`), as a fault in the agent's own code would.
// Usage: bun test/fault/agent-with-fault.ts exception|rejection <agent args...>
import { main } from "../../src/cli/main.ts";

const [kind, ...args] = process.argv.slice(2);
process.on("SIGUSR2", () => {
  if (kind === "rejection") void Promise.reject(new Error("rejection outside every collector"));
  else setTimeout(() => {
    throw new Error("exception outside every collector");
  });
});
void main(args).then((code) => process.exit(code));
