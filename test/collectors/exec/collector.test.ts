// The exec collector against real programs (the test program run by Bun, no
// shell): lines to events, bad lines, both modes, timeouts, start failures,
// health, the environment, stderr, and that no process is left behind.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ExecCollector, execFactory, StderrLog } from "../../../src/collectors/exec/index.ts";
import { KILL_GRACE_MS } from "../../../src/collectors/exec/program.ts";
import { makeTempDir } from "../../helpers/cleanup.ts";
import { recordingContext, runInBackground, runOnce } from "../../helpers/collector-context.ts";
import { waitFor } from "../../helpers/wait-for.ts";
import { BUN, capturingLogger, execConfig, exists, pidsIn, program, PROGRAM, running } from "./helpers.ts";

const SECRET = "TAPIO_EXEC_TEST_SECRET";
afterAll(() => {
  delete process.env[SECRET];
});

const line = (type: string, extra: Record<string, unknown> = {}) => JSON.stringify({ type, ...extra });

describe("exec: lines to events", () => {
  test("each stdout line is an event; bad lines are counted with their number and an excerpt, and skipped", async () => {
    const rec = await runOnce(
      new ExecCollector(
        execConfig({
          command: program(
            "print",
            line("node.check_failed", { severity: "warning", event_data: { custom: { disk: "92%" } }, timestamp: "2026-11-25T12:00:00Z" }),
            "not json",
            line("node.check", { source: "forged" }),
            "",
            line("node.check", { metadata: { pid: "12" } }),
            JSON.stringify({ type: "node.long", event_data: { custom: { pad: "y".repeat(300) } } }),
            "[1,2]",
            line("node.check_ok"),
          ),
          max_line_bytes: 256,
        }),
      ),
      "exec/nodecheck",
    );
    expect(rec.events.map((e) => e.type)).toEqual(["node.check_failed", "node.check_ok"]);
    const [first] = rec.events;
    expect(first!.timestamp).toBe("2026-11-25T12:00:00Z");
    expect(first!.severity).toBe("warning");
    expect(first!.event_data).toEqual({ custom: { disk: "92%" } });
    // the agent sets identity: the instance name, never the program's word
    expect(first!.source).toBe("exec/nodecheck");
    expect(first!.metadata.attributes).toEqual({ collector_name: "exec/nodecheck" });
    // absent timestamp: the time the line was read
    expect(Date.now() - Date.parse(rec.events[1]!.timestamp)).toBeLessThan(60_000);
    expect(rec.parseErrors.map((p) => p.source)).toEqual(["stdout", "stdout", "stdout", "stdout", "stdout"]);
    expect(rec.parseErrors.map((p) => p.detail)).toEqual([
      expect.stringMatching(/^line 2: not JSON \(.+\): "not json"$/),
      'line 3: source: set by the agent; an input may not carry it: "{\\"type\\":\\"node.check\\",\\"source\\":\\"forged\\"}"',
      expect.stringMatching(/^line 5: metadata\.pid: .*: "\{\\"type\\":\\"node\.check\\",\\"metadata\\":\{\\"pid\\":\\"12\\"\}\}"$/),
      expect.stringMatching(/^line 6: 35\d bytes, over max_line_bytes \(256\); skipped: "\{\\"type\\":\\"node\.long\\".*y"…$/),
      'line 7: expected a JSON object, got an array: "[1,2]"',
    ]);
    // the excerpt of the long line is its first 200 bytes
    const long = rec.parseErrors[3]!.detail;
    expect(JSON.parse(long.slice(long.indexOf("skipped: ") + 9, -1))).toHaveLength(200);
    expect(rec.healthyCalls).toBe(1);
    expect(rec.degraded).toEqual([]);
  });

  test("a line that is not UTF-8 is a parse error; the lines after it still count", async () => {
    const dir = makeTempDir("exec-bytes");
    const file = join(dir, "out");
    writeFileSync(file, Buffer.concat([Buffer.from('{"type":"a.b","event_data":{"custom":{"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}}\n{"type":"a.c"}')]));
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("cat", file) })));
    expect(rec.events.map((e) => e.type)).toEqual(["a.c"]);
    expect(rec.parseErrors.map((p) => p.detail)).toEqual([expect.stringMatching(/^line 1: not UTF-8: /)]);
  });
});

describe("exec: mode interval", () => {
  test("runs every interval; a run still going at the next tick is not started twice", async () => {
    const log = join(makeTempDir("exec-runs"), "runs");
    const run = runInBackground(new ExecCollector(execConfig({ command: program("run", log, "250"), interval: "100ms", timeout: "5s" })));
    const ends = () => (existsSync(log) ? readFileSync(log, "utf8") : "").split("\n").filter((l) => l.startsWith("end")).length;
    await waitFor(() => ends() >= 3, "three runs", 10_000);
    await run.stop();
    const marks = readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => l.split(" ")[0]);
    // start, end, start, end, ...: never two at once
    expect(marks.every((m, i) => m === (i % 2 === 0 ? "start" : "end"))).toBe(true);
    expect(run.rec.events.filter((e) => e.type === "test.run").length).toBeGreaterThanOrEqual(3);
  });

  test("a run past timeout gets SIGTERM: its lines so far count, health is degraded, the process is gone", async () => {
    const pidFile = join(makeTempDir("exec-timeout"), "pids");
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("hang"), timeout: "1s", env: { PID_FILE: pidFile } })));
    expect(rec.events.map((e) => e.type)).toEqual(["test.hang"]);
    expect(rec.degraded).toEqual([`${BUN} ran past timeout (1s) and was stopped`]);
    const [pid] = pidsIn(pidFile);
    expect(exists(pid!)).toBe(false);
  });

  test(`a program that ignores SIGTERM gets SIGKILL ${KILL_GRACE_MS / 1000} s later`, async () => {
    const pidFile = join(makeTempDir("exec-kill"), "pids");
    const t0 = performance.now();
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("hang", "ignore-term"), timeout: "1s", env: { PID_FILE: pidFile } })));
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1000 + KILL_GRACE_MS - 50);
    expect(took).toBeLessThan(1000 + KILL_GRACE_MS + 5000);
    expect(rec.degraded).toEqual([`${BUN} ran past timeout (1s) and was stopped`]);
    expect(exists(pidsIn(pidFile)[0]!)).toBe(false);
  }, 20_000);

  test("a non-zero exit makes health degraded, with the code and the last stderr line; a good run makes it healthy again", async () => {
    const codeFile = join(makeTempDir("exec-code"), "code");
    writeFileSync(codeFile, "3");
    const run = runInBackground(new ExecCollector(execConfig({ command: program("exit-from", codeFile), interval: "50ms" })));
    await waitFor(() => run.rec.degraded.length > 0, "degraded");
    expect(run.rec.degraded[0]).toBe(`${BUN} exited with code 3; its last stderr line: exiting with 3`);
    expect(run.rec.healthyCalls).toBe(0);
    // its events still count
    expect(run.rec.events[0]?.event_data).toEqual({ custom: { code: "3" } });
    writeFileSync(codeFile, "0");
    await waitFor(() => run.rec.healthyCalls > 0, "healthy after a good run");
    await run.stop();
  });

  test("a program that cannot be started: degraded, naming the path and why", async () => {
    const dir = makeTempDir("exec-start");
    const notExecutable = join(dir, "check.ts");
    copyFileSync(PROGRAM, notExecutable);
    chmodSync(notExecutable, 0o644);
    const degraded = async (config: Record<string, unknown>) => (await runOnce(new ExecCollector(execConfig(config)))).degraded;
    expect(await degraded({ command: ["/nonexistent/nodecheck", "--json"] })).toEqual(["cannot start /nonexistent/nodecheck: no such file or directory"]);
    expect(await degraded({ command: [notExecutable] })).toEqual([`cannot start ${notExecutable}: permission denied (it needs the execute permission for the agent's user)`]);
    expect(await degraded({ command: ["tapio-no-such-program"] })).toEqual([expect.stringMatching(/^cannot start "tapio-no-such-program": no executable of that name on PATH \(.+\)$/)]);
    expect(await degraded({ command: [BUN, PROGRAM, "cwd"], working_dir: join(dir, "gone") })).toEqual([`cannot start ${BUN}: working_dir ${join(dir, "gone")}: no such file or directory`]);
  });
});

describe("exec: mode stream", () => {
  test("events while the program runs; stopping sends SIGTERM, and no process is left", async () => {
    const pidFile = join(makeTempDir("exec-stream"), "pids");
    const run = runInBackground(new ExecCollector(execConfig({ command: program("tick", "0", "20"), mode: "stream", env: { PID_FILE: pidFile } })));
    await waitFor(() => run.rec.events.length >= 3, "three events");
    const [pid] = pidsIn(pidFile);
    expect(running(pid!)).toBe(true);
    // SIGTERM ends a Bun program at once: no grace needed
    expect(await run.stop()).toBeLessThan(KILL_GRACE_MS);
    expect(exists(pid!)).toBe(false);
    expect(run.rec.events.slice(0, 3).map((e) => e.event_data)).toEqual([0, 1, 2].map((seq) => ({ custom: { seq: String(seq) } })));
  });

  test("a program that ends, well or not, is a failure for the runner to restart", async () => {
    const codeFile = join(makeTempDir("exec-stream-end"), "code");
    writeFileSync(codeFile, "3");
    const collector = () => new ExecCollector(execConfig({ command: program("exit-from", codeFile), mode: "stream" }));
    await expect(collector().run(recordingContext({ once: false }).ctx)).rejects.toThrow(`${BUN} exited with code 3; its last stderr line: exiting with 3`);
    writeFileSync(codeFile, "0");
    await expect(collector().run(recordingContext({ once: false }).ctx)).rejects.toThrow(`${BUN} exited with code 0; a stream program is restarted whenever it ends`);
    // --once: the program's run is the round, and an exit 0 ends it well
    const once = recordingContext({ once: true });
    await collector().run(once.ctx);
    expect(once.events.map((e) => e.type)).toEqual(["test.run"]);
  });

  test("what the program started goes with it: on stop, and when it exits", async () => {
    const dir = makeTempDir("exec-tree");
    const children = join(dir, "children");
    const pidFile = join(dir, "pids");
    const run = runInBackground(new ExecCollector(execConfig({ command: program("parent", children), mode: "stream", env: { PID_FILE: pidFile } })));
    await waitFor(() => pidsIn(children).length === 1 && pidsIn(pidFile).length === 2, "the program and its child");
    const [program_, child] = [pidsIn(pidFile)[0]!, pidsIn(children)[0]!];
    expect(running(child)).toBe(true);
    await run.stop();
    expect(exists(program_)).toBe(false);
    // SIGKILL is sent by then; the child's end follows as the kernel schedules it
    await waitFor(() => !running(child), "the child gone", 1000);

    // the program exits and leaves its child behind: the child is killed with it
    const exited = join(dir, "children-of-exited");
    await runOnce(new ExecCollector(execConfig({ command: program("parent", exited, "exit") })));
    expect(pidsIn(exited)).toHaveLength(1);
    await waitFor(() => !running(pidsIn(exited)[0]!), "the left child gone", 1000);
  });
});

describe("exec: what the program gets", () => {
  test("only PATH, HOME and the configured keys: the agent's environment never leaks", async () => {
    process.env[SECRET] = "hunter2";
    const rec = await runOnce(new ExecCollector(execConfig({ command: program("env"), env: { LEVEL: "3", HOME: "/nonexistent" } })));
    const env = rec.events[0]!.event_data.custom as Record<string, string>;
    expect(Object.keys(env).sort()).toEqual(["HOME", "LEVEL", "PATH"]);
    expect(env).toEqual({ PATH: process.env.PATH!, HOME: "/nonexistent", LEVEL: "3" });
    expect(JSON.stringify(rec.events)).not.toContain("hunter2");
  });

  test("working_dir is its working directory; a relative command is taken from it", async () => {
    const dir = makeTempDir("exec-cwd");
    const rec = await runOnce(new ExecCollector(execConfig({ command: [`./${basename(BUN)}`, PROGRAM, "cwd"], working_dir: dirname(BUN) })));
    expect(rec.events[0]!.event_data).toEqual({ custom: { cwd: dirname(BUN) } });
    expect((await runOnce(new ExecCollector(execConfig({ command: program("cwd"), working_dir: dir })))).events[0]!.event_data).toEqual({ custom: { cwd: dir } });
  });

  test("stderr lines are logged at warn with the instance name, at most 20 per 10 s", async () => {
    const rec = recordingContext({ name: "exec/nodecheck", once: true });
    const { log, lines } = capturingLogger();
    await new ExecCollector(execConfig({ command: program("stderr", "50") })).run({ ...rec.ctx, log });
    const warned = lines.filter((l) => l.level === 40);
    expect(warned).toHaveLength(20);
    expect(warned[0]).toMatchObject({ stderr: "complaint 0", msg: "collector exec/nodecheck stderr: complaint 0" });
    expect(warned[19]!.stderr).toBe("complaint 19");
  });

  test("the next stderr line logged after a held-back burst says how many were held back", async () => {
    let now = 0;
    const rec = recordingContext({ name: "exec" });
    const { log, lines } = capturingLogger();
    const stderr = new StderrLog({ ...rec.ctx, log }, 42, () => now);
    const enc = new TextEncoder();
    const reader = (text: string) => {
      let done = false;
      return { read: async () => (done ? { done: true } : ((done = true), { done: false, value: enc.encode(text) })) };
    };
    await stderr.read(reader(Array.from({ length: 25 }, (_, i) => `complaint ${i}\n`).join("")));
    expect(lines).toHaveLength(20);
    now += 10_000;
    await stderr.read(reader("later\n"));
    expect(lines.at(-1)).toMatchObject({ stderr: "later", suppressed: 5, pid: 42 });
    expect(stderr.last).toBe("later");
  });
});

describe("exec: tapio-collectors check", () => {
  test("the command exists and is executable", async () => {
    const dir = makeTempDir("exec-check");
    const notExecutable = join(dir, "check");
    writeFileSync(notExecutable, "");
    const probe = (command: string[]) => execFactory.sources!(execConfig({ command }))[0]!.probe(new AbortController().signal);
    await probe(program("print"));
    expect(execFactory.sources!(execConfig({ command: program("print") })).map((s) => s.source)).toEqual([BUN]);
    await expect(probe(["/nonexistent/nodecheck"])).rejects.toThrow("cannot start /nonexistent/nodecheck: no such file or directory");
    await expect(probe([notExecutable])).rejects.toThrow(`cannot start ${notExecutable}: permission denied`);
    await expect(probe([dir])).rejects.toThrow(`cannot start ${dir}: not a regular file`);
    const elsewhere = execFactory.sources!(execConfig({ command: program("print"), working_dir: join(dir, "gone") }))[0]!;
    await expect(elsewhere.probe(new AbortController().signal)).rejects.toThrow(`cannot start ${BUN}: working_dir ${join(dir, "gone")}: no such file or directory`);
  });
});

describe("exec: a failure of its own", () => {
  test("an emit that throws stops the program and fails the run, instead of leaving it blocked on its pipe", async () => {
    const pidFile = join(makeTempDir("exec-throw"), "pids");
    const rec = recordingContext({ once: false });
    const ctx = {
      ...rec.ctx,
      emit: () => {
        throw new Error("the queue broke");
      },
    };
    await expect(new ExecCollector(execConfig({ command: program("tick", "0", "10"), mode: "stream", env: { PID_FILE: pidFile } })).run(ctx)).rejects.toThrow("the queue broke");
    expect(exists(pidsIn(pidFile)[0]!)).toBe(false);
  });
});
