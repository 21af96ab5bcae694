// `completion bash|zsh|fish`: the scripts parse in their shells and complete
// what usage.ts's tables hold. bash is called as it calls a completion
// function (COMP_WORDS, COMP_CWORD, then COMPREPLY); fish answers `complete -C`.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runAgent } from "../helpers/agent.ts";
import { makeTempDir } from "../helpers/cleanup.ts";
import { COMMAND_FLAGS, FLAG_VALUES, SHELLS, type Command } from "../../src/cli/usage.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../../src/log.ts";
import { builtinRegistry } from "../../src/collectors/index.ts";

const BASH = Bun.which("bash");
const ZSH = Bun.which("zsh");
const FISH = Bun.which("fish");
const COMMANDS = Object.keys(COMMAND_FLAGS) as Command[];
const COLLECTOR_TYPES = builtinRegistry().types();

const scripts: Record<string, string> = {};
const files: Record<string, string> = {};
let dir = "";

beforeAll(async () => {
  dir = makeTempDir("completion");
  for (const shell of SHELLS) {
    const r = await runAgent(["completion", shell]);
    expect(r.code).toBe(0);
    scripts[shell] = r.stdout;
    files[shell] = join(dir, `tapio-collectors.${shell}`);
    writeFileSync(files[shell]!, r.stdout);
  }
  // files for --config to complete
  mkdirSync(join(dir, "configs"));
  for (const name of ["a.yaml", "b.yaml", "other.txt"]) writeFileSync(join(dir, "configs", name), "");
});

function run(command: string[], cwd = dir): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(command, { cwd, env: { ...process.env, HOME: dir } });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** What bash completes for the command line `words`, the last word being the one under the cursor. */
function bashComplete(words: string[]): string[] {
  const array = words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
  const r = run([BASH!, "--norc", "--noprofile", "-c", `source ${files.bash}; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _tapio_collectors; printf '%s\\n' "\${COMPREPLY[@]}"`]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout.split("\n").filter(Boolean).sort();
}

test("no shell, an unknown one or two are usage errors (exit 2)", async () => {
  for (const args of [["completion"], ["completion", "tcsh"], ["completion", "bash", "zsh"]]) {
    const r = await runAgent(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("tapio-collectors: completion: name one shell: bash, zsh, fish");
  }
});

describe.skipIf(!BASH)("bash completion", () => {
  test("the script parses (bash -n) and registers for tapio-collectors", () => {
    expect(run([BASH!, "-n", files.bash!]).code).toBe(0);
    expect(scripts.bash).toContain("complete -F _tapio_collectors tapio-collectors");
  });

  test("the first word: every command of the table, and help", () => {
    expect(bashComplete(["tapio-collectors", ""])).toEqual([...COMMANDS, "help"].sort());
    expect(bashComplete(["tapio-collectors", "c"])).toEqual(["check", "completion"]);
  });

  test("every command completes each of its flags from the table, and --help", () => {
    for (const command of COMMANDS) {
      const expected = [...Object.keys(COMMAND_FLAGS[command]), "help"].map((f) => `--${f}`).sort();
      expect(bashComplete(["tapio-collectors", command, "--"])).toEqual(expected);
    }
  });

  test("flag values: log levels and formats (run is the default command), collector types, severities", () => {
    expect(bashComplete(["tapio-collectors", "--log-level", ""])).toEqual([...LOG_LEVELS].sort());
    expect(bashComplete(["tapio-collectors", "run", "--log-format", ""])).toEqual([...LOG_FORMATS].sort());
    // --log-level=de: bash splits the word at "="
    expect(bashComplete(["tapio-collectors", "run", "--log-level", "=", "de"])).toEqual(["debug"]);
    expect(bashComplete(["tapio-collectors", "tail", "--collector", ""])).toEqual(COLLECTOR_TYPES);
    expect(bashComplete(["tapio-collectors", "tail", "--collector", "kube"])).toEqual(["kubeapi", "kubelet"]);
    expect(bashComplete(["tapio-collectors", "emit", "--severity", "c"])).toEqual(["critical"]);
    // free text (an event type) completes nothing, not the flags
    expect(bashComplete(["tapio-collectors", "tail", "--type", ""])).toEqual([]);
  });

  test("files for --config and for validate's operands; shells for completion", () => {
    expect(bashComplete(["tapio-collectors", "validate", "-c", "configs/"])).toEqual(["configs/a.yaml", "configs/b.yaml", "configs/other.txt"]);
    expect(bashComplete(["tapio-collectors", "run", "--config", "configs/a"])).toEqual(["configs/a.yaml"]);
    expect(bashComplete(["tapio-collectors", "validate", "configs/b"])).toEqual(["configs/b.yaml"]);
    expect(bashComplete(["tapio-collectors", "completion", ""])).toEqual([...SHELLS].sort());
    expect(bashComplete(["tapio-collectors", "help", "pr"])).toEqual(["print-config"]);
  });

  test("every flag with a list of values in FLAG_VALUES completes it wherever it is taken", () => {
    for (const command of COMMANDS) {
      for (const flag of Object.keys(COMMAND_FLAGS[command])) {
        const values = FLAG_VALUES[flag];
        if (values === undefined || typeof values === "string") continue;
        expect(bashComplete(["tapio-collectors", command, `--${flag}`, ""])).toEqual([...values].sort());
      }
    }
  });
});

describe("zsh completion", () => {
  test("structure: #compdef, each command in the list and a case with its flags", () => {
    const script = scripts.zsh!;
    expect(script).toStartWith("#compdef tapio-collectors\n");
    for (const command of COMMANDS) {
      expect(script).toContain(`'${command}:`);
      expect(script).toContain(`    '${command}')\n      _arguments`);
      for (const flag of Object.keys(COMMAND_FLAGS[command])) expect(script).toMatch(new RegExp(`'(\\([^)]*\\))?--${flag}[=\\[']`));
    }
    expect(script).toContain(`:collector:(${COLLECTOR_TYPES.join(" ")})`);
    expect(script).toContain(":config:_files");
  });

  test.skipIf(!ZSH)(`the script parses (zsh -n) and dispatches to the command's _arguments${ZSH ? "" : " (skipped: zsh is not installed)"}`, () => {
    expect(run([ZSH!, "-n", files.zsh!]).code).toBe(0);
    // Completion functions need the line editor; stand-ins for _arguments and
    // _describe show what the script hands them for a given command line.
    const probe = (words: string[]) => {
      const array = words.map((w) => `'${w}'`).join(" ");
      const r = run([ZSH!, "-f", "-c", `compdef() { :; }; source ${files.zsh}; _describe() { print -rl -- "describe" "\${commands[@]}"; }; _arguments() { print -rl -- "program:\${words[1]}" "$@"; }; words=(${array}); CURRENT=${words.length}; PREFIX='${words.at(-1)}'; _tapio-collectors`]);
      expect(r.stderr).toBe("");
      return r.stdout.split("\n");
    };
    const first = probe(["tapio-collectors", ""]);
    expect(first[0]).toBe("describe");
    expect(first.map((line) => line.split(":")[0])).toEqual(expect.arrayContaining([...COMMANDS, "help"]));
    const tail = probe(["tapio-collectors", "tail", "--collector", ""]);
    expect(tail[0]).toBe("program:tail");
    expect(tail.find((line) => line.startsWith("--collector="))).toEndWith(`:collector:(${COLLECTOR_TYPES.join(" ")})`);
    // a flag first: the default command, run
    const run_ = probe(["tapio-collectors", "--log-level", ""]);
    expect(run_[0]).toBe("program:tapio-collectors");
    expect(run_.find((line) => line.startsWith("--log-level="))).toEndWith(`:log-level:(${LOG_LEVELS.join(" ")})`);
  });
});

describe("fish completion", () => {
  test("structure: each command offered before any command, each flag under its command", () => {
    const script = scripts.fish!;
    for (const command of COMMANDS) {
      expect(script).toContain(`-a '${command}'`);
      for (const flag of Object.keys(COMMAND_FLAGS[command])) expect(script).toMatch(new RegExp(`__fish_seen_subcommand_from ${command}[;' ].* -l ${flag}\\b`));
    }
    expect(script).toContain(`-l collector -x -a '${COLLECTOR_TYPES.join(" ")}'`);
  });

  test.skipIf(!FISH)(`the script parses (fish --no-execute) and completes commands, flags and values${FISH ? "" : " (skipped: fish is not installed)"}`, () => {
    expect(run([FISH!, "--no-execute", files.fish!]).code).toBe(0);
    const complete = (line: string) => {
      const r = run([FISH!, "--no-config", "-c", `source ${files.fish}; complete -C '${line}'`]);
      expect(r.stderr).toBe("");
      return r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]!).sort();
    };
    expect(complete("tapio-collectors comp")).toEqual(["completion"]);
    expect(complete("tapio-collectors tail --collector ")).toEqual(COLLECTOR_TYPES);
    expect(complete("tapio-collectors --log-format ")).toEqual([...LOG_FORMATS].sort());
    expect(complete("tapio-collectors validate configs/a")).toEqual(["configs/a.yaml"]);
    expect(complete("tapio-collectors emit --sev")).toEqual(["--severity"]);
  });
});
