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

  test("an unset variable in an unquoted scalar is empty, so null", () => {
    expect(errors("orchestrator:\n  workers: ${WORKERS}\n")).toEqual(["test.yaml:2:12 orchestrator.workers: expected an integer from 1 to 64, got null"]);
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

  test("every expansion error is reported, before validation", () => {
    expect(errors("orchestrator:\n  workers: nope\nnats:\n  name: ${A:?a}\n  subject: ${B:?b}\n")).toEqual([
      "test.yaml:4:9 nats.name: environment variable A is not set: a",
      "test.yaml:5:12 nats.subject: environment variable B is not set: b",
    ]);
  });

  test("$$ and a lone $ in a file", () => {
    const { nats } = load("nats:\n  name: pay$$ment\n  token: a$b\n");
    expect([nats.name, nats.token]).toEqual(["pay$ment", "a$b"]);
  });

  test("keys are not expanded", () => {
    expect(errors("orchestrator:\n  ${KEY}: 4\n", { KEY: "workers" })).toEqual([
      'test.yaml:2:3 orchestrator.${KEY}: unknown key "${KEY}" (known keys: workers, buffer_size, buffer_bytes, log_level, shutdown_timeout, restart_backoff)',
    ]);
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
