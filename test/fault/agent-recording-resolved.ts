// The agent exactly as src/main.ts runs it, with the synthetic collector
// watched: after each of its emits resolves, the count of resolved emits is
// written to a file (one pwrite, so a SIGKILL leaves the last count whole).
// The synthetic collector awaits each emit, so emits resolve in seq order
// and the count k means seqs 0..k-1 were all resolved. The count written
// lags the truth by at most one event, never leads it.
// Usage: bun test/fault/agent-recording-resolved.ts COUNT_FILE <agent args...>
import { openSync, writeSync } from "node:fs";
import { main } from "../../src/cli/main.ts";
import { syntheticFactory } from "../../src/collectors/synthetic/index.ts";
import type { CollectorContext } from "../../src/orchestrator/collector.ts";

const [countFile, ...args] = process.argv.slice(2);
const fd = openSync(countFile!, "w");
const WIDTH = 16;
let resolved = 0;
const record = (): void => {
  resolved++;
  writeSync(fd, String(resolved).padStart(WIDTH), 0, "latin1");
};

const create = syntheticFactory.create.bind(syntheticFactory);
syntheticFactory.create = (config) => {
  const collector = create(config);
  return {
    run: (ctx: CollectorContext) =>
      collector.run({
        ...ctx,
        emit: (input) => {
          const wait = ctx.emit(input);
          if (!wait) return record();
          return wait.then(record);
        },
      }),
  };
};
void main(args).then((code) => process.exit(code));
