// Run by live.test.ts in other namespaces (unshare): starts the process
// collector on this machine's /proc and prints the mode it chose as JSON.
import * as v from "valibot";
import { processFactory } from "../../../src/collectors/process/index.ts";
import { runInBackground } from "../../helpers/collector-context.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const { rec, stop } = runInBackground(processFactory.create(v.parse(processFactory.configSchema, {})));
await waitFor(() => rec.sourceModes.has("proc"), "the process collector's mode", 10_000);
await stop();
console.log(JSON.stringify(rec.sourceModes.get("proc")));
