// The test and benchmark watchdog (cleanup.ts): once the process that made it
// dies, even by SIGKILL, the processes it registered are killed and its temp
// root removed; and while it waits it runs nothing (a `sleep` loop would be
// execs and exits that event-mode process collectors see).
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "./wait-for.ts";

const alive = (pid: number) => {
  try {
    // A zombie (killed, not yet reaped by its parent) counts as gone.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};

const script = `
import { killAtExit, makeTempDir } from ${JSON.stringify(join(import.meta.dir, "cleanup.ts"))};
const dir = makeTempDir("watchdog-test");
const child = Bun.spawn(["sleep", "300"], { stdio: ["ignore", "ignore", "ignore"] });
killAtExit(child.pid);
console.log(JSON.stringify({ dir, child: child.pid }));
setInterval(() => {}, 1000);
`;

let owner: Bun.Subprocess<"ignore", "pipe", "inherit"> | undefined;
afterEach(() => owner?.kill("SIGKILL"));

describe.skipIf(process.platform !== "linux")("the cleanup watchdog", () => {
  test("kills what was registered and removes the temp root when its process is SIGKILLed, and runs nothing while it waits", async () => {
    owner = Bun.spawn([process.execPath, "-e", script], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    const reader = owner.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the owner ended before it said its child: ${text}`);
      text += new TextDecoder().decode(value);
    }
    const { dir, child } = JSON.parse(text) as { dir: string; child: number };
    const root = join(dir, "..");
    // The watchdog: the owner's shell child.
    let watchdog: number | undefined;
    await waitFor(() => {
      const children = readFileSync(`/proc/${owner!.pid}/task/${owner!.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
      watchdog = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("while read"));
      return watchdog !== undefined;
    }, "the watchdog shell");
    // Waiting, it has no child of its own (a `sleep 0.5` loop would have one nearly all the time).
    for (let look = 0; look < 5; look++) {
      expect(readFileSync(`/proc/${watchdog}/task/${watchdog}/children`, "utf8").trim()).toBe("");
      await Bun.sleep(120);
    }
    expect(alive(child)).toBe(true);
    expect(existsSync(root)).toBe(true);

    owner.kill("SIGKILL");
    await owner.exited;
    await waitFor(() => !alive(child), "the registered child killed", 5000);
    await waitFor(() => !existsSync(root), "the temp root removed", 5000);
    await waitFor(() => !alive(watchdog!), "the watchdog ended", 5000);
  });
});
