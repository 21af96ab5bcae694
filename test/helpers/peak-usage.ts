// Preloaded into a child process (`bun --preload` this file, see usage-meter.ts)
// whose cost a test bounds: at exit it writes its own peak RSS (VmHWM) and CPU
// time to the file named by TAPIO_TEST_USAGE_FILE. Imports nothing else, so
// it adds nothing to what it measures.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.env.TAPIO_TEST_USAGE_FILE;
if (file) {
  process.on("exit", () => {
    const peakKb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
    const cpu = process.cpuUsage();
    writeFileSync(file, JSON.stringify({ rssMiB: peakKb / 1024, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
  });
}
