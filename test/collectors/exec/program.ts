// The outside program of the exec collector's tests, run by the tests' own
// Bun (no shell: as in the distroless image): `bun program.ts <what> [args]`.
// With PID_FILE in its environment it appends its pid there first.
import { appendFileSync, readFileSync, writeFileSync, writeSync } from "node:fs";

const [what, ...args] = process.argv.slice(2);
// Before its pid is out: a test that sees the pid may count on SIGTERM being ignored.
if (what === "hang" && args[0] === "ignore-term") process.on("SIGTERM", () => {});
if (process.env.PID_FILE) appendFileSync(process.env.PID_FILE, `${process.pid}\n`);

const out = (line: string) => writeSync(1, `${line}\n`);
const event = (type: string, custom: Record<string, string> = {}) => JSON.stringify({ type, event_data: { custom } });
const forever = () => setInterval(() => {}, 1 << 30);

switch (what) {
  // each argument one line on stdout, then exit 0
  case "print":
    for (const line of args) out(line);
    break;
  // a file's lines on stdout, then exit 0
  case "cat":
    writeSync(1, readFileSync(args[0]!));
    break;
  // its environment as one event, then each argument one line
  case "env":
    out(JSON.stringify({ type: "test.env", event_data: { custom: { ...process.env } } }));
    for (const line of args) out(line);
    break;
  // its working directory as one event
  case "cwd":
    out(event("test.cwd", { cwd: process.cwd() }));
    break;
  // an event, a line on stderr, then the exit code read from a file
  case "exit-from": {
    const code = Number(readFileSync(args[0]!, "utf8"));
    out(event("test.run", { code: String(code) }));
    writeSync(2, `exiting with ${code}\n`);
    process.exit(code);
  }
  // stderr lines: args[0] of them
  case "stderr":
    for (let i = 0; i < Number(args[0]); i++) writeSync(2, `complaint ${i}\n`);
    break;
  // an event every args[1] ms, args[0] of them (0: forever), then exit 0
  case "tick": {
    const count = Number(args[0]);
    let seq = 0;
    const timer = setInterval(() => {
      out(event("test.tick", { seq: String(seq++) }));
      if (count > 0 && seq >= count) clearInterval(timer);
    }, Number(args[1]));
    break;
  }
  // an event, then nothing until killed; "ignore-term": SIGTERM is ignored
  case "hang":
    out(event("test.hang"));
    forever();
    break;
  // starts a child that hangs (its pid appended to args[0]), prints an event, then hangs too or ("exit") exits
  case "parent": {
    const child = Bun.spawn([process.execPath, import.meta.path, "hang"], { stdout: "ignore", stderr: "ignore" });
    appendFileSync(args[0]!, `${child.pid}\n`);
    out(event("test.parent"));
    if (args[1] === "exit") process.exit(0);
    forever();
    break;
  }
  // one run: "start <ms>" and "end <ms>" appended to args[0] around a wait of args[1] ms
  case "run": {
    appendFileSync(args[0]!, `start ${Date.now()}\n`);
    await Bun.sleep(Number(args[1]));
    appendFileSync(args[0]!, `end ${Date.now()}\n`);
    out(event("test.run"));
    break;
  }
  // 1 KB events as fast as stdout takes them; how many were written so far goes to args[0]
  case "flood": {
    const line = Buffer.from(`${event("test.flood", { pad: "x".repeat(960) })}\n`);
    for (let n = 1; ; n++) {
      writeSync(1, line);
      writeFileSync(args[0]!, String(n));
    }
  }
  default:
    writeSync(2, `program.ts: unknown "${what}"\n`);
    process.exit(2);
}
