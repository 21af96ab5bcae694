import * as v from "valibot";
import { byteSize, duration, expectedGot, nonEmptyString, picklist, strictObject, text } from "../../config/kit.ts";
import { isPlainMapping } from "../../config/parse.ts";
import { MAX_EVENT_BYTES } from "../../event/encode.ts";

export const EXEC_MODES = ["stream", "interval"] as const;

/** What a POSIX shell takes as a variable name: anything else a program could not read back. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const execConfigSchema = strictObject({
  /** argv: the program and its arguments, run as given (no shell, no globbing, no $VARS) */
  command: v.pipe(
    v.array(text("a string", () => true), (issue) => expectedGot('a list like ["/usr/local/bin/nodecheck", "--json"] (argv, no shell)', issue.input)),
    v.check((argv) => argv.length > 0 && argv[0]!.trim() !== "", (issue) => expectedGot("the program to run (not empty) first, then its arguments", issue.input)),
  ),
  /** stream: one long-running program; interval: one run every `interval` */
  mode: v.optional(picklist(EXEC_MODES), "interval"),
  /** mode interval: how often the program runs; a run still going at a tick is not started twice */
  interval: v.optional(duration({ positive: true }), "30s"),
  /** mode interval: a run longer than this gets SIGTERM (then SIGKILL 5s later) */
  timeout: v.optional(duration({ positive: true }), "10s"),
  /** added to the program's minimal environment (PATH and HOME); the agent's own variables are never passed on */
  env: v.optional(
    v.pipe(
      v.unknown(),
      v.check(isPlainMapping, (issue) => expectedGot("a mapping of NAME: value", issue.input)),
      v.record(
        v.pipe(v.string(), v.regex(ENV_NAME, (issue) => expectedGot("an environment variable name like NODECHECK_LEVEL", issue.input))),
        text("a string (quote numbers and booleans: YAML reads 0123 as a number)", () => true),
      ),
    ),
    {},
  ),
  /** the program's working directory; a relative `command` path is taken from here */
  working_dir: v.optional(nonEmptyString(), "/"),
  /** a stdout line longer than this is counted as a parse error and skipped, never kept whole */
  max_line_bytes: v.optional(
    v.pipe(
      byteSize({ min: 64 }),
      v.check((n) => n <= MAX_EVENT_BYTES, (issue) => expectedGot(`at most ${MAX_EVENT_BYTES} bytes (1MiB: no event may be larger)`, issue.input)),
    ),
    "256KiB",
  ),
});

export type ExecConfig = v.InferOutput<typeof execConfigSchema>;
