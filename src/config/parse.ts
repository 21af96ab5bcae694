// YAML to a plain value, remembering where each key and value sits in the file
// so validation errors can point at them. Environment references in scalar
// values are expanded here, after parsing (see env.ts).
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Scalar } from "yaml";
import { coreScalar, expandEnv, type Env } from "./env.ts";
import { ConfigError, describeValue, type ConfigIssue } from "./errors.ts";
import { locateYamlErrors } from "./yaml-errors.ts";

export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface Location {
  /** where the key is written; absent for the top level and list items */
  readonly key?: Position;
  readonly value: Position;
}

export interface ParsedConfig {
  readonly value: Record<string, unknown>;
  /** by dotted path: `orchestrator.workers`, `nats.url.1`; "" is the top level */
  readonly locations: ReadonlyMap<string, Location>;
  /**
   * Environment references that could not be expanded (`${VAR:?message}` with
   * VAR unset, a malformed `${`). Their values are left out of `value`, so
   * validation can still run; it must not report on these paths or below them.
   */
  readonly expansionIssues: readonly ConfigIssue[];
  /**
   * Keys left out because their whole value was environment references that
   * expanded to "" (`token: ${NATS_TOKEN}` with NATS_TOKEN unset), by dotted
   * path, with the text as written.
   */
  readonly emptied: ReadonlyMap<string, string>;
}

export interface ParseOptions {
  /**
   * Dotted paths of list-typed keys whose scalar value, when it holds an
   * environment reference, is split on commas after expansion (items trimmed,
   * empty ones dropped), so one variable can give several items:
   * `url: ${NATS_URL}` with NATS_URL=nats://a:4222,nats://b:4222.
   */
  readonly commaLists?: ReadonlySet<string>;
}

// Each alias expansion copies its anchor; a few nested anchors referencing each
// other would otherwise grow exponentially ("billion laughs").
const MAX_ALIAS_EXPANSIONS = 1000;

/** How the config's YAML is parsed (tests parse as the loader does with these). */
export const YAML_OPTIONS = {
  prettyErrors: false,
  // Only the core schema (no !!binary, !!set...): other tags then fail loudly instead of producing odd values.
  resolveKnownTags: false,
  // The yaml package compares each key with every earlier one of its mapping
  // (50,000 keys took 14 s); the Walker finds duplicates in one pass with a
  // Set per mapping instead.
  uniqueKeys: false,
} as const;

function childPath(path: string, key: string | number): string {
  return path === "" ? String(key) : `${path}.${key}`;
}

export function parseConfigYaml(text: string, file: string, env: Env, options: ParseOptions = {}): ParsedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, ...YAML_OPTIONS });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const issues: ConfigIssue[] = [];
  const fail = (position: Position, path: string, message: string) => issues.push({ file, ...position, path, message });

  for (const problem of locateYamlErrors(text, [...doc.errors, ...doc.warnings])) fail(at(problem.offset), "", `invalid YAML: ${problem.message}`);
  if (issues.length > 0) throw new ConfigError(issues);

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null && root.range[0] === root.range[1])) {
    throw new ConfigError([
      { file, line: 1, column: 1, path: "", message: "the file is empty; expected a mapping with orchestrator, nats and collectors" },
    ]);
  }

  const locations = new Map<string, Location>();
  const emptied = new Map<string, string>();
  const expansionIssues: ConfigIssue[] = [];
  const failExpansion = (position: Position, path: string, message: string) => expansionIssues.push({ file, ...position, path, message });
  const walker = new Walker(doc, text, env, options.commaLists ?? new Set(), at, fail, failExpansion, locations, emptied);
  const value = walker.value(root, "", undefined);
  // A broken structure (aliases, keys) leaves nothing sound to validate.
  if (issues.length > 0) throw new ConfigError([...issues, ...expansionIssues]);
  if (!isPlainMapping(value)) {
    // Only a failed expansion of the whole file (`${CONFIG:?...}`) leaves no value here.
    if (expansionIssues.length > 0) throw new ConfigError(expansionIssues);
    const message = `the top level must be a mapping with orchestrator, nats and collectors, got ${describeValue(value)}`;
    throw new ConfigError([{ file, ...at(root.range[0]), path: "", message }]);
  }
  return { value, locations, expansionIssues, emptied };
}

/** A mapping as read from YAML or built by a schema: an object literal, not a list, Duration or other class instance. */
export function isPlainMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Marks a mapping value that counts as absent: its key is left out. */
const ABSENT = Symbol("absent");

// The whole text is references, nothing written around them: `${A}`, `${A:-}${B}`.
const ONLY_REFERENCES = /^(?:\$\{[^}]*\})+$/;

class Walker {
  #aliasExpansions = 0;
  /** where the alias being expanded is written, while its target is walked */
  #expandingAlias: Position | undefined = undefined;
  readonly #inProgress = new Set<unknown>();

  constructor(
    readonly doc: Document.Parsed,
    readonly text: string,
    readonly env: Env,
    readonly commaLists: ReadonlySet<string>,
    readonly at: (offset: number) => Position,
    readonly fail: (position: Position, path: string, message: string) => void,
    readonly failExpansion: (position: Position, path: string, message: string) => void,
    readonly locations: Map<string, Location>,
    readonly emptied: Map<string, string>,
  ) {}

  /** `key` is where the key is written when the node is a mapping's value; only such a value can be ABSENT. */
  value(node: unknown, path: string, key: Position | undefined): unknown {
    const start = this.#start(node);
    this.locations.set(path, key ? { key, value: start } : { value: start });
    return this.#resolve(node, path, start, key !== undefined);
  }

  #start(node: unknown): Position {
    if ((isScalar(node) || isMap(node) || isSeq(node) || isAlias(node)) && node.range) return this.at(node.range[0]);
    return { line: 1, column: 1 };
  }

  #resolve(node: unknown, path: string, start: Position, keyed: boolean): unknown {
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (!target) return this.#failed(start, path, `unknown alias *${node.source}`);
      if (this.#inProgress.has(target)) return this.#failed(start, path, `alias *${node.source} refers to itself`);
      this.#aliasExpansions++;
      // Said once, at the alias written outside any anchor's content (the one the
      // file shows expanding); the expansions after it are skipped silently.
      const outermost = this.#expandingAlias === undefined;
      if (this.#aliasExpansions === MAX_ALIAS_EXPANSIONS + 1) return this.#failed(this.#expandingAlias ?? start, path, `more than ${MAX_ALIAS_EXPANSIONS} alias expansions`);
      if (this.#aliasExpansions > MAX_ALIAS_EXPANSIONS) return undefined;
      if (outermost) this.#expandingAlias = start;
      try {
        return this.#resolve(target, path, start, keyed);
      } finally {
        if (outermost) this.#expandingAlias = undefined;
      }
    }
    if (isMap(node) || isSeq(node)) {
      this.#inProgress.add(node);
      try {
        return isMap(node) ? this.#mapping(node.items, path) : node.items.map((item, i) => this.value(item, childPath(path, i), undefined));
      } finally {
        this.#inProgress.delete(node);
      }
    }
    if (isScalar(node)) return this.#scalar(node, path, start, keyed);
    return null; // an absent node, as in `key:` with nothing after it
  }

  #mapping(pairs: readonly { key: unknown; value: unknown }[], path: string): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    const seen = new Set<string>(); // the keys written, including those left out as ABSENT
    for (const pair of pairs) {
      const keyPosition = this.#start(pair.key);
      const keyNode = isAlias(pair.key) ? pair.key.resolve(this.doc) : pair.key;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        this.fail(keyPosition, path, "keys must be plain words, not empty, lists or mappings");
        continue;
      }
      const key = String(keyNode.value);
      const childKey = childPath(path, key);
      if (seen.has(key)) {
        this.fail(keyPosition, childKey, `duplicate key "${key}"`);
        continue;
      }
      seen.add(key);
      const value = this.value(pair.value, childKey, keyPosition);
      if (value === ABSENT) continue;
      // defineProperty, not assignment: a key named __proto__ must stay a key.
      Object.defineProperty(result, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return result;
  }

  #scalar(node: Scalar, path: string, start: Position, keyed: boolean): unknown {
    if (typeof node.value !== "string") return node.value;
    const expansion = expandEnv(node.value, this.env);
    if (!expansion.ok) {
      this.failExpansion(this.#offsetWithin(node, expansion.index) ?? start, path, expansion.message);
      return undefined;
    }
    // An optional secret or setting can come from a variable that may be
    // unset: a value that is only references and expands to "" counts as not
    // written (the default applies, or "missing" for a required key). A ""
    // written in the file is still a value.
    if (keyed && expansion.value === "" && ONLY_REFERENCES.test(node.value)) {
      this.emptied.set(path, node.value);
      return ABSENT;
    }
    // An environment value can add no structure, except that a list-typed key
    // may take several comma-separated items from one variable.
    if (expansion.expanded && this.commaLists.has(path)) {
      const items = expansion.value.split(",").map((item) => item.trim()).filter((item) => item !== "");
      // Each item is where the scalar is: that is all the file shows of it.
      items.forEach((_, i) => this.locations.set(childPath(path, i), { value: start }));
      return items;
    }
    // Only unquoted, untagged scalars are typed from their text, as YAML would
    // have typed the expanded text; quoted and block scalars stay strings.
    if (expansion.expanded && node.type === "PLAIN" && !node.tag) return coreScalar(expansion.value);
    return expansion.value;
  }

  #failed(position: Position, path: string, message: string): undefined {
    this.fail(position, path, message);
    return undefined;
  }

  /** The exact position of a character of the value, when the source spells the value verbatim. */
  #offsetWithin(node: Scalar, index: number): Position | undefined {
    if (!node.range || typeof node.value !== "string") return undefined;
    const quote = node.type === "QUOTE_SINGLE" || node.type === "QUOTE_DOUBLE" ? 1 : 0;
    const start = node.range[0] + quote;
    if (this.text.slice(start, start + node.value.length) !== node.value) return undefined;
    return this.at(start + index);
  }
}
