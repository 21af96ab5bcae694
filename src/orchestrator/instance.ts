// Collector instances. A key under `collectors:` is TYPE, or TYPE/NAME for
// one of several instances of a type (the OpenTelemetry Collector's
// convention: dns/cluster, dns/external). The whole key is the instance's
// name everywhere the agent names a collector: health, metrics, logs, spool
// rows, and the events' `source`.

/** What a type and an instance name are made of: each is one NATS subject token, and holds no "/". */
export const NAME_PATTERN = /^[a-z0-9_-]+$/;
export const NAME_EXPECTED = 'lowercase letters, digits, "_" and "-"';

export interface InstanceKey {
  readonly type: string;
  /** undefined for a bare TYPE key */
  readonly name: string | undefined;
}

/** The key's type and name, split at the first "/"; whether they are valid is for keyProblem to say. */
export function splitKey(key: string): InstanceKey {
  const slash = key.indexOf("/");
  return slash === -1 ? { type: key, name: undefined } : { type: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The key's type: what the registry knows it by. */
export function instanceType(key: string): string {
  return splitKey(key).type;
}

/** Why `key` is not TYPE/NAME with a valid NAME, or undefined; the type is the registry's to check. */
export function nameProblem(key: string): string | undefined {
  const { name } = splitKey(key);
  if (name === undefined) return undefined;
  if (name === "") return `"${key}" has no name after "/": write TYPE or TYPE/NAME`;
  if (name.includes("/")) return `"${key}" has more than one "/": write TYPE or TYPE/NAME`;
  if (!NAME_PATTERN.test(name)) return `instance name "${name}" may hold only ${NAME_EXPECTED}`;
  return undefined;
}

/**
 * Where an instance's events go: `<prefix>.<type>` for a bare type (as before
 * instances existed), `<prefix>.<type>.<name>` for a named one. Types and
 * names are single tokens without "/", so distinct keys get distinct subjects.
 */
export function collectorSubject(prefix: string, key: string): string {
  return `${prefix}.${key.replace("/", ".")}`;
}

/** Where an event emitted with a subject suffix goes: `<its collector's subject>.<suffix>`; without one, the collector's subject. */
export function eventSubject(prefix: string, key: string, suffix: string | null | undefined): string {
  const subject = collectorSubject(prefix, key);
  return suffix == null ? subject : `${subject}.${suffix}`;
}

/**
 * The spool routes (a key, or `<key>.<suffix>`) whose events go to `subject`
 * under `prefix`: tokens after the prefix read as TYPE[.SUFFIX] or as
 * TYPE.NAME[.SUFFIX]. Both readings give that same subject, so skipping both
 * skips exactly the rows bound for it.
 */
export function routesOfSubject(prefix: string, subject: string): string[] {
  const head = `${prefix}.`;
  if (!subject.startsWith(head)) return [];
  const tokens = subject.slice(head.length).split(".");
  const routes = [tokens.join(".")];
  if (tokens.length >= 2) routes.push([`${tokens[0]}/${tokens[1]}`, ...tokens.slice(2)].join("."));
  return routes;
}
