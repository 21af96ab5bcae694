// Hot reload: on SIGHUP, and when the config file changes. It watches the
// directory, not the file: a ConfigMap update swaps a symlink (..data), and
// editors write a temporary file and rename it over the old one; both replace
// the inode a file watch would follow. Changes are debounced, and a file
// whose text did not change is not reloaded, unless the last reload failed.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { ConfigError } from "../config/errors.ts";
import { loadConfigFile, readConfigFile } from "../config/load.ts";
import { redactUrlCredentials, rememberSecrets } from "../config/redact.ts";
import type { Config } from "../config/schema.ts";
import type { CollectorRegistry } from "../orchestrator/registry.ts";

export interface ReloaderOptions {
  file: string;
  registry: CollectorRegistry;
  log: Logger;
  debounceMs?: number;
  /** applies a valid new config; a throw counts as a failed reload */
  apply: (next: Config) => Promise<void>;
  onResult: (result: "success" | "failure") => void;
}

export class ConfigReloader {
  readonly #o: ReloaderOptions;
  #watcher: FSWatcher | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastText: string | undefined;
  /** one reload at a time; a change during a reload runs another after it */
  #running: Promise<unknown> = Promise.resolve();
  readonly #onSignal = () => this.#schedule("SIGHUP", 0);

  constructor(options: ReloaderOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#lastText = await readConfigFile(this.#o.file).catch(() => undefined);
    process.on("SIGHUP", this.#onSignal);
    const name = basename(this.#o.file);
    try {
      this.#watcher = watch(dirname(this.#o.file), (_event, changed) => {
        // The file itself, or Kubernetes' ..data symlink swap, or a name we cannot tell.
        if (changed === null || changed === name || changed === "..data" || changed.startsWith("..")) this.#schedule("file change", this.#o.debounceMs ?? 300);
      });
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, `cannot watch ${dirname(this.#o.file)} for config changes; SIGHUP still reloads`);
    }
  }

  #schedule(reason: string, delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.#running.then(() => this.reload(reason, reason === "SIGHUP"));
    }, delayMs);
  }

  /** Loads, validates and applies the config file. A forced reload (SIGHUP) runs even if the text is unchanged. */
  async reload(reason: string, force = true): Promise<"success" | "failure" | "unchanged"> {
    const { file, registry, log } = this.#o;
    const text = await readConfigFile(file).catch(() => undefined);
    if (!force && text !== undefined && text === this.#lastText) return "unchanged";
    this.#lastText = text;
    let next: Config;
    try {
      next = await loadConfigFile(file, registry);
      rememberSecrets(next);
    } catch (err) {
      const lines = err instanceof ConfigError ? err.lines() : [(err as Error).message];
      const count = err instanceof ConfigError ? err.issues.length : 1;
      for (const line of lines) log.error({ reload: reason }, `config reload: ${line}`);
      log.error({ reload: reason, errors: count }, `config reload failed (${count} error(s)); still running on the previous config`);
      return this.#failed();
    }
    try {
      await this.#o.apply(next);
      this.#o.onResult("success");
      return "success";
    } catch (err) {
      const message = redactUrlCredentials((err as Error).message);
      log.error({ reload: reason, err: message }, `config reload rolled back: ${message}; still running on the previous config`);
      return this.#failed();
    }
  }

  /** Counts a failed reload; the next change event retries it even if the text is the same (a secret fixed elsewhere, a server back). */
  #failed(): "failure" {
    this.#lastText = undefined;
    this.#o.onResult("failure");
    return "failure";
  }

  stop(): void {
    clearTimeout(this.#timer);
    process.off("SIGHUP", this.#onSignal);
    this.#watcher?.close();
  }
}
