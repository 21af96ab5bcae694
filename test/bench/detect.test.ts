// A tiny run of `npm run bench:detect`, so the harness cannot rot unnoticed:
// two kmsg lines per column (the same binary as both, in alternating
// rounds) reach the subscriber and are timed, the idle check runs its eight
// agents, and the table and the JSON come out. As root only: it writes
// /dev/kmsg and creates cgroup v1 memory cgroups.
import { describe, expect, test } from "bun:test";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildAgent } from "../../bench/lib/build.ts";
import { REPO } from "../../bench/lib/procs.ts";
import { killAtExit, makeTempDir, spare } from "../helpers/cleanup.ts";

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const canRun = process.getuid?.() === 0 && writable("/dev/kmsg") && existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes") && writable("/sys/fs/cgroup/memory");

describe("bench:detect", () => {
  test.skipIf(!canRun)(
    "a tiny run (kmsg, 2 repetitions per column; idle check of 5 s) prints its tables and writes its JSON",
    async () => {
      const dir = makeTempDir("bench-detect");
      const binary = join(dir, "tapio-collectors");
      buildAgent(binary);
      const out = join(dir, "detect.json");
      const args = ["--only", "kmsg,idle", "--repeats", "2", "--rounds", "2", "--seconds", "5", "--idle-warmup", "1", "--binary", binary, "--base", binary, "--out", out];
      const proc = Bun.spawn([process.execPath, join(REPO, "bench/detect.ts"), ...args], { stdout: "pipe", stderr: "pipe" });
      killAtExit(proc.pid);
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      spare(proc.pid);
      expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });

      expect(stdout).toContain("| event | column | mode (reported) | n | missing | p50 | p99 | max | target p99 | result |");
      expect(stdout).toMatch(/^\| kmsg line -> kernel\.problem \| event \| (event|poll) \| 2 \| 0 \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| <= 10\.0 \| (PASS|FAIL) \|$/m);
      expect(stdout).toMatch(/^\| kmsg line -> kernel\.problem \| poll \| (event|poll) \| 2 \| 0 \| /m);
      expect(stdout).toContain("| column | event-driven sources | CPU s | CPU s above 0 sources | wake-ups/s | modes (reported) | result |");
      expect(stdout).toMatch(/^\| poll \| 3: kernel \+ memory \+ process/m);

      const json = JSON.parse(readFileSync(out, "utf8"));
      expect(json.rows.map((r: { series: string; column: string; n: number; missing: number }) => [r.series, r.column, r.n, r.missing])).toEqual([
        ["kmsg", "event", 2, 0],
        ["kmsg", "poll", 2, 0],
      ]);
      // The latency is from the record's own time: positive, and under the kernel collector's poll interval plus slack.
      for (const r of json.rows) expect(r.max).toBeGreaterThan(0);
      for (const r of json.rows) expect(r.max).toBeLessThan(5000);
      expect(json.idle.results).toHaveLength(8);
      // Everything it created is gone.
      const leftovers = Bun.spawnSync(["sh", "-c", "ls /sys/fs/cgroup/memory | grep '^tapio-detect-' || true"]).stdout.toString();
      expect(leftovers.split("\n").filter((l) => l.includes(`tapio-detect-${proc.pid}-`))).toEqual([]);
    },
    90_000,
  );
});
