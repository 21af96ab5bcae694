// Reading a config file: YAML with positions, environment expansion, then
// validation against the schema, with every problem reported at once.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import * as v from "valibot";
import type { CollectorRegistry } from "../orchestrator/registry.ts";
import type { Env } from "./env.ts";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { fallbackMessage } from "./kit.ts";
import { isPlainMapping, parseConfigYaml, type ParsedConfig, type Position } from "./parse.ts";
import { applyProfile } from "./profiles.ts";
import { COMMA_LIST_KEYS, configSchema, type Config } from "./schema.ts";

/** Far above any real config; a file past it is a mistake (or /dev/zero), not something to parse. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export async function loadConfigFile(file: string, registry: CollectorRegistry, env: Env = process.env): Promise<Config> {
  return loadConfigText(await readConfigFile(file), file, registry, env);
}

/**
 * The text of a config file: a regular file of at most MAX_CONFIG_BYTES,
 * else a ConfigError saying what it is. Opened non-blocking, so a FIFO
 * with no writer is refused instead of waited on, and read no further
 * than the limit, so a file that grows while read cannot grow the agent.
 * Read synchronously: a few local kilobytes, and the reloader starts
 * watching for changes right after its first read, with no gap for an
 * edit to slip through.
 */
export async function readConfigFile(file: string): Promise<string> {
  const cannot = (reason: string) => new ConfigError([{ file, line: 0, column: 0, path: "", message: `cannot read: ${reason}` }]);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw cannot(err instanceof Error ? err.message : String(err));
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw cannot(`not a regular file (${fileKind(stat)}); a config must be a regular file`);
    if (stat.size > MAX_CONFIG_BYTES) throw cannot(`${stat.size} bytes is more than the ${MAX_CONFIG_BYTES} bytes (4 MiB) a config may have`);
    // Room for one byte past the limit, to notice a file that grew past it while read.
    const buffer = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) throw cannot(`it grew past the ${MAX_CONFIG_BYTES} bytes (4 MiB) a config may have while it was read`);
      const read = readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) break;
      length += read;
    }
    return buffer.toString("utf8", 0, length);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw cannot(err instanceof Error ? err.message : String(err));
  } finally {
    closeSync(fd);
  }
}

/**
 * The text of a config read from a stream (standard input), named `name` in
 * messages; more than MAX_CONFIG_BYTES is refused as a file that large is.
 */
export async function readConfigStream(stream: AsyncIterable<Uint8Array | string>, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    length += bytes.length;
    if (length > MAX_CONFIG_BYTES) {
      throw new ConfigError([{ file: name, line: 0, column: 0, path: "", message: `cannot read: more than the ${MAX_CONFIG_BYTES} bytes (4 MiB) a config may have` }]);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function fileKind(stat: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (stat.isDirectory()) return "a directory";
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isSocket()) return "a socket";
  return "not a file";
}

/** `file` only names the source in messages. */
export function loadConfigText(text: string, file: string, registry: CollectorRegistry, env: Env = process.env): Config {
  const parsed = parseConfigYaml(text, file, env, { commaLists: COMMA_LIST_KEYS });
  const { value, expansionIssues } = parsed;
  // Validation runs even when some references could not be expanded, so every
  // problem is reported at once; what it finds where a value is missing
  // because its expansion failed only repeats the expansion error.
  const failedPaths = expansionIssues.map((issue) => issue.path);
  // A profile fills what the file leaves out; locations still come from the file as written.
  const result = v.safeParse(configSchema(registry), applyProfile(value), { abortEarly: false, message: fallbackMessage });
  const schemaIssues = (result.success ? [] : result.issues)
    .filter((issue) => !failedPaths.some((failed) => isAtOrBelow(issuePath(issue), failed)))
    .map((issue) => locate(issue, parsed, file));
  if (!result.success || expansionIssues.length > 0) throw new ConfigError([...expansionIssues, ...schemaIssues]);
  return result.output;
}

function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? []).map((item) => String(item.key)).join(".");
}

function isAtOrBelow(path: string, ancestor: string): boolean {
  return ancestor === "" || path === ancestor || path.startsWith(`${ancestor}.`);
}

function child(node: unknown, key: string): { found: boolean; value?: unknown } {
  if (!(isPlainMapping(node) || Array.isArray(node)) || !Object.hasOwn(node, key)) return { found: false };
  return { found: true, value: Reflect.get(node, key) };
}

/**
 * Where an issue belongs in the file: at the value for a bad value, at the key
 * for an unknown key (and for rules about a key's presence), at the enclosing
 * mapping's key for a missing key, at the key itself for one left out because
 * it expanded to nothing.
 */
function locate(issue: v.BaseIssue<unknown>, parsed: ParsedConfig, file: string): ConfigIssue {
  const { locations, emptied } = parsed;
  const keys = (issue.path ?? []).map((item) => String(item.key));
  let message = issue.message;
  let node: unknown = parsed.value;
  let depth = 0;
  for (const key of keys) {
    const next = child(node, key);
    if (!next.found) break;
    node = next.value;
    depth++;
  }
  const fullPath = keys.join(".");
  const foundPath = keys.slice(0, depth).join(".");
  const location = locations.get(foundPath);
  let path = fullPath;
  let position: Position | undefined;
  if (depth === keys.length) {
    position = issue.path?.at(-1)?.origin === "key" ? location?.key : location?.value;
  } else if (node !== null && typeof node !== "object") {
    // A path into a scalar comes from a schema that reads one value as a list
    // (`url: x` as `[x]`): the problem is the scalar itself.
    path = foundPath;
    position = location?.value;
  } else if (emptied.has(fullPath)) {
    // Written, but left out because it expanded to "": at the key, saying so.
    position = locations.get(fullPath)?.key;
    message = `${message} (${emptied.get(fullPath)} is empty)`;
  } else {
    position = location?.key;
  }
  const { line, column } = position ?? location?.value ?? { line: 1, column: 1 };
  return { file, line, column, path, message };
}
