import { describe, expect, test } from "bun:test";
import { coreScalar, expandEnv } from "../../src/config/env.ts";
import { errors, load } from "./helpers.ts";

describe("expandEnv", () => {
  test("${VAR}", () => {
    expect(expandEnv("nats://${HOST}:4222", { HOST: "nats-0" })).toEqual({ ok: true, value: "nats://nats-0:4222", expanded: true });
  });

  test("${VAR} unset is empty", () => {
    expect(expandEnv("a${NOPE}b", {})).toEqual({ ok: true, value: "ab", expanded: true });
  });

  test("${VAR:-default} when unset, empty and set", () => {
    expect(expandEnv("${W:-4}", {})).toMatchObject({ value: "4" });
    expect(expandEnv("${W:-4}", { W: "" })).toMatchObject({ value: "4" });
    expect(expandEnv("${W:-4}", { W: "8" })).toMatchObject({ value: "8" });
    expect(expandEnv("${W:-}", {})).toMatchObject({ value: "" });
  });

  test("a default is literal text, not expanded again", () => {
    expect(expandEnv("${A:-$B and $$}", { B: "no" })).toMatchObject({ value: "$B and $$" });
  });

  test("${VAR:?message} when unset or empty", () => {
    expect(expandEnv("${TOKEN:?set the NATS token}", {})).toEqual({
      ok: false,
      index: 0,
      message: "environment variable TOKEN is not set: set the NATS token",
    });
    expect(expandEnv("x ${TOKEN:?}", { TOKEN: "" })).toEqual({ ok: false, index: 2, message: "environment variable TOKEN is empty" });
    expect(expandEnv("${TOKEN:?set it}", { TOKEN: "t" })).toMatchObject({ ok: true, value: "t" });
  });

  test("$$ is a literal $ and does not count as an expansion", () => {
    expect(expandEnv("cost: $$5 $${HOME}", { HOME: "/root" })).toEqual({ ok: true, value: "cost: $5 ${HOME}", expanded: false });
  });

  test("a lone $ stays", () => {
    expect(expandEnv("5$ or $HOME or $", { HOME: "/root" })).toEqual({ ok: true, value: "5$ or $HOME or $", expanded: false });
  });

  test("an unterminated ${", () => {
    expect(expandEnv("abc ${HOST", {})).toMatchObject({ ok: false, index: 4, message: 'unterminated "${": missing "}" (write "$$" for a literal "$")' });
  });

  test("an invalid reference", () => {
    expect(expandEnv("${1X}", {})).toMatchObject({ ok: false, index: 0 });
    expect(expandEnv("${A-b}", {})).toMatchObject({ ok: false });
    expect(expandEnv("${}", {})).toMatchObject({ ok: false });
  });
});

describe("coreScalar", () => {
  test.each([
    ["", null],
    ["~", null],
    ["null", null],
    ["Null", null],
    ["NULL", null],
    ["true", true],
    ["True", true],
    ["TRUE", true],
    ["false", false],
    ["FALSE", false],
    ["4", 4],
    ["-17", -17],
    ["+3", 3],
    ["0o17", 15],
    ["0x1F", 31],
    ["1.5", 1.5],
    ["-2.5e3", -2500],
    [".5", 0.5],
    [".inf", Infinity],
    ["-.Inf", -Infinity],
    ["yes", "yes"],
    ["on", "on"],
    ["0b101", "0b101"],
    ["1_000", "1_000"],
    ["4 ", "4 "],
    ["{a: 1}", "{a: 1}"],
    ["[1, 2]", "[1, 2]"],
    ["- x", "- x"],
    ["a: b", "a: b"],
  ] as const)("%p", (text, value) => {
    expect(coreScalar(text)).toBe(value);
  });

  test(".nan", () => {
    expect(coreScalar(".NaN")).toBeNaN();
  });
});

describe("expansion in a config file", () => {
  test("an unquoted reference is typed as YAML would: ${WORKERS:-4} is 4", () => {
    expect(load("orchestrator:\n  workers: ${WORKERS:-4}\n").orchestrator.workers).toBe(4);
    expect(load("orchestrator:\n  workers: ${WORKERS:-4}\n", { WORKERS: "12" }).orchestrator.workers).toBe(12);
    expect(load("nats:\n  tls:\n    insecure_skip_verify: ${INSECURE:-false}\n", { INSECURE: "true" }).nats.tls?.insecure_skip_verify).toBe(true);
  });

  test("a quoted reference stays a string: \"${WORKERS:-4}\" is \"4\", a type error", () => {
    expect(errors('orchestrator:\n  workers: "${WORKERS:-4}"\n')).toEqual(['test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got "4"']);
    expect(errors("orchestrator:\n  workers: '${WORKERS:-4}'\n")).toEqual(['test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got "4"']);
  });

  test("an explicit !!str tag keeps the string", () => {
    expect(load("nats:\n  name: !!str ${N}\n", { N: "42" }).nats.name).toBe("42");
  });

  test("text without a reference is not retyped", () => {
    expect(load("nats:\n  name: $$42\n").nats.name).toBe("$42");
  });

  test("an unset variable in an unquoted list item is empty, so null", () => {
    expect(errors("nats:\n  url:\n    - ${URL}\n")).toEqual([
      "test.yaml:3:7 nats.url.0: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got null",
    ]);
  });

  test("${VAR:?message} is an error at the reference, naming the variable", () => {
    expect(errors("nats:\n  token: ${NATS_TOKEN:?the NATS auth token}\n")).toEqual([
      "test.yaml:2:10 nats.token: environment variable NATS_TOKEN is not set: the NATS auth token",
    ]);
    expect(errors('nats:\n  url: "nats://${HOST:?needed}:4222"\n')).toEqual(["test.yaml:2:16 nats.url: environment variable HOST is not set: needed"]);
  });

  test("an unterminated ${ is a located error", () => {
    expect(errors("nats:\n  subject: tapio.${ENV\n")).toEqual([
      'test.yaml:2:18 nats.subject: unterminated "${": missing "}" (write "$$" for a literal "$")',
    ]);
  });

  test("expansion errors are reported along with validation errors, in file order", () => {
    expect(errors("orchestrator:\n  workers: abc\n  log_level: ${UNSET:?msg}\nnats:\n  urll: x\n")).toEqual([
      'test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got "abc"',
      "test.yaml:3:14 orchestrator.log_level: environment variable UNSET is not set: msg",
      'test.yaml:5:3 nats.urll: unknown key "urll" (did you mean "url"?)',
    ]);
    expect(errors("orchestrator:\n  workers: nope\nnats:\n  name: ${A:?a}\n  subject: ${B:?b}\n")).toEqual([
      'test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got "nope"',
      "test.yaml:4:9 nats.name: environment variable A is not set: a",
      "test.yaml:5:12 nats.subject: environment variable B is not set: b",
    ]);
  });

  test("validation says nothing more where an expansion failed, at the path or below it", () => {
    // a required key: no "missing required key" on top of the expansion error
    expect(errors("collectors:\n  files:\n    config:\n      paths: ${PATHS:?where to read}\n")).toEqual([
      "test.yaml:4:14 collectors.files.config.paths: environment variable PATHS is not set: where to read",
    ]);
    // a list item, and a whole section given as one failed reference
    expect(errors('nats:\n  url: ["${A:?a}"]\ncollectors:\n  files: ${F:?f}\n')).toEqual([
      "test.yaml:2:10 nats.url.0: environment variable A is not set: a",
      "test.yaml:4:10 collectors.files: environment variable F is not set: f",
    ]);
  });

  test("a failed expansion at the top level", () => {
    expect(errors("${CONFIG:?no config}\n")).toEqual(["test.yaml:1:1 (root): environment variable CONFIG is not set: no config"]);
  });

  test("expansion errors come along with broken structure", () => {
    expect(errors("nats:\n  name: ${A:?a}\n  url: *nowhere\n")).toEqual([
      "test.yaml:2:9 nats.name: environment variable A is not set: a",
      "test.yaml:3:8 nats.url: unknown alias *nowhere",
    ]);
  });

  test("$$ and a lone $ in a file", () => {
    const { nats } = load("nats:\n  name: pay$$ment\n  token: a$b\n");
    expect([nats.name, nats.token]).toEqual(["pay$ment", "a$b"]);
  });

  test("keys are not expanded", () => {
    expect(errors("orchestrator:\n  ${KEY}: 4\n", { KEY: "workers" })).toEqual([
      'test.yaml:2:3 orchestrator.${KEY}: unknown key "${KEY}" (known keys: workers, batch_size, buffer_size, buffer_bytes, buffer, log_level, shutdown_timeout, health_interval, once_timeout, restart_backoff)',
    ]);
  });

  test("a key whose value is only references that expand to nothing is left out", () => {
    // optional secrets from variables that may be unset
    for (const token of ["${NATS_TOKEN}", "${NATS_TOKEN:-}", '"${NATS_TOKEN}"', "'${NATS_TOKEN}'", "${NATS_TOKEN}${OTHER}"]) {
      expect(load(`nats:\n  token: ${token}\n`).nats).not.toHaveProperty("token");
    }
    expect(load("nats:\n  token: ${NATS_TOKEN}\n", { NATS_TOKEN: "" }).nats).not.toHaveProperty("token");
    expect(load("nats:\n  token: ${NATS_TOKEN}\n", { NATS_TOKEN: "s3cret" }).nats.token).toBe("s3cret");
    // a default applies, as if the key were not written
    expect(load("orchestrator:\n  workers: ${WORKERS}\n").orchestrator.workers).toBe(4);
    expect(load("collectors:\n  files:\n    config: {paths: /x, api_token: '${API_TOKEN}'}\n").collectors.files?.config).toEqual({ paths: ["/x"] });
  });

  test("an empty value written in the file, or text around a reference, is still a value", () => {
    expect(errors('nats:\n  token: ""\n')).toEqual(['test.yaml:2:10 nats.token: expected a non-empty string, got ""']);
    expect(errors("nats:\n  token:\n")).toEqual(["test.yaml:2:9 nats.token: expected a non-empty string, got null"]);
    expect(errors('nats:\n  token: " ${NATS_TOKEN}"\n')).toEqual(["test.yaml:2:10 nats.token: expected a non-empty string, got a string of only spaces"]);
    expect(load("nats:\n  token: x${NATS_TOKEN}\n").nats.token).toBe("x");
  });

  test("a required key that expanded to nothing is missing, said at the key", () => {
    expect(errors("collectors:\n  files:\n    config:\n      paths: ${PATHS}\n")).toEqual([
      'test.yaml:4:7 collectors.files.config.paths: missing required key "paths" (${PATHS} is empty)',
    ]);
    // and rules see it absent
    expect(errors("nats:\n  username: tapio\n  password: ${NATS_PASSWORD}\n")).toEqual([
      "test.yaml:2:3 nats.username: username is set without password; set both or neither",
    ]);
  });

  test("a key left out still counts for duplicates", () => {
    expect(errors('collectors:\n  1: ${A}\n  "1": {}\n')).toEqual(['test.yaml:3:3 collectors.1: duplicate key "1"']);
  });

  test("nats.url takes several comma-separated URLs from one variable", () => {
    const env = { NATS_URL: "nats://a:4222,nats://b:4222" };
    expect(load("nats:\n  url: ${NATS_URL}\n", env).nats.url).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(load('nats:\n  url: "${NATS_URL}"\n', env).nats.url).toEqual(["nats://a:4222", "nats://b:4222"]);
    // trimmed, empty items dropped
    expect(load("nats:\n  url: ${NATS_URL}\n", { NATS_URL: " nats://a:4222 , ,tls://b:4222, " }).nats.url).toEqual(["nats://a:4222", "tls://b:4222"]);
    expect(load("nats:\n  url: nats://${HOST}:4222\n", { HOST: "n" }).nats.url).toEqual(["nats://n:4222"]);
    // unset: the default
    expect(load("nats:\n  url: ${NATS_URL}\n").nats.url).toEqual(["nats://127.0.0.1:4222"]);
  });

  test("each URL from a variable is validated, the error at the scalar", () => {
    expect(errors("nats:\n  url: ${NATS_URL}\n", { NATS_URL: "nats://a:4222,http://b:80" })).toEqual([
      'test.yaml:2:8 nats.url.1: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "http://b:80"',
    ]);
    expect(errors("nats:\n  url: ${NATS_URL}\n", { NATS_URL: " , " })).toEqual([
      "test.yaml:2:8 nats.url: expected at least one NATS server URL, got an empty list",
    ]);
  });

  test("commas split nothing else: not written ones, not other keys", () => {
    expect(errors("nats:\n  url: nats://a:4222,nats://b:4222\n")[0]).toStartWith('test.yaml:2:8 nats.url: expected a NATS server URL like');
    expect(errors("nats:\n  url:\n    - ${NATS_URL}\n", { NATS_URL: "a:1,b:2" })).toEqual([
      'test.yaml:3:7 nats.url.0: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "a:1,b:2"',
    ]);
    expect(load("collectors:\n  files:\n    config: {paths: '${P}'}\n", { P: "/a,/b" }).collectors.files?.config).toEqual({ paths: ["/a,/b"] });
  });

  test("a reference in a block list", () => {
    expect(load("nats:\n  url:\n    - ${A}\n    - nats://${B}:4222\n", { A: "nats://a:4222", B: "b" }).nats.url).toEqual(["nats://a:4222", "nats://b:4222"]);
  });
});

describe("values from the environment never add structure", () => {
  const attempts = [
    "line one\nworkers: 64",
    'quote " and \' quote',
    "key: value",
    "{workers: 64}",
    "[1, 2, 3]",
    "x # not a comment",
    "# only a comment",
    "- item",
    "*alias",
    "&anchor value",
    "!!binary aGk=",
    "--- \n...",
    "${OTHER}",
    "|\n  block",
  ];

  test.each(attempts)("unquoted: %p", (value) => {
    const config = load("nats:\n  name: ${NAME}\norchestrator:\n  workers: 2\n", { NAME: value, OTHER: "expanded" });
    expect(config.nats.name).toBe(value);
    expect(config.orchestrator.workers).toBe(2);
    expect(Object.keys(config.nats)).not.toContain("workers");
  });

  test.each(attempts)("quoted: %p", (value) => {
    expect(load('nats:\n  name: "${NAME}"\n', { NAME: value }).nats.name).toBe(value);
  });

  test("inside a collector's config", () => {
    const config = load("collectors:\n  synthetic:\n    config:\n      type: ${T}\n", { T: "x\n      rate: 999" });
    expect(config.collectors.synthetic?.config).toMatchObject({ type: "x\n      rate: 999", rate: 10 });
  });

  test("an injected key shows up as the bad value it is", () => {
    expect(errors("orchestrator:\n  log_level: ${LEVEL}\n", { LEVEL: "info\n  workers: 64" })).toEqual([
      'test.yaml:2:14 orchestrator.log_level: expected one of trace, debug, info, warn, error, fatal, got "info\\n  workers: 64"',
    ]);
  });
});
