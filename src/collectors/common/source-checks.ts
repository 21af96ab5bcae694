// Probes for `tapio-collectors check` (SourceCheck): can the agent, with its
// own user and mounts, read what a collector reads? They read as little as
// possible: open and close, list a directory, one small HTTP request.
import { constants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import type { SourceCheck } from "../../orchestrator/collector.ts";
import type { K8sClient } from "./k8s-client.ts";

/** The file opens for reading (non-blocking: /dev/kmsg with no new record must not hang the check). */
export function readableFile(path: string): SourceCheck {
  return {
    source: path,
    async probe() {
      const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch((err) => {
        throw new Error(describe(err, path));
      });
      await file.close();
    },
  };
}

/** The directory can be listed. */
export function readableDirectory(path: string): SourceCheck {
  return {
    source: path,
    async probe() {
      await readdir(path).catch((err) => {
        throw new Error(describe(err, path));
      });
    },
  };
}

/** `GET path` through the collector's own client (token, CA) answers 2xx. */
export function readableEndpoint(client: K8sClient, baseUrl: string, path: string, timeoutMs: number): SourceCheck {
  return {
    source: `${baseUrl.replace(/\/$/, "")}${path}`,
    async probe(signal) {
      await client.getText(path, signal, timeoutMs);
    },
  };
}

function describe(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `${path} does not exist (is the host path mounted?)`;
  if (code === "EACCES" || code === "EPERM") return `${path}: permission denied for this user`;
  return `cannot read ${path}: ${(err as Error).message}`;
}
