// The agent exactly as src/main.ts runs it, plus a fault outside every
// collector whose message and stack quote secrets, as an error from a library
// handed a config value might: on SIGUSR2 a timer throws an Error whose
// message is the FAULT_MESSAGE environment variable.
// Usage: bun test/secrets/agent-with-leaky-fault.ts <agent args...>
import { main } from "../../src/cli/main.ts";

const message = process.env.FAULT_MESSAGE ?? "fault";
process.on("SIGUSR2", () =>
  setTimeout(() => {
    throw new Error(message);
  }),
);
void main(process.argv.slice(2)).then((code) => process.exit(code));
