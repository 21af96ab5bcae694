import { describe, expect, test } from "bun:test";
import { Duration } from "../../src/config/duration.ts";
import { isPlainMapping } from "../../src/config/parse.ts";
import { redactUrlCredentials } from "../../src/config/redact.ts";
import { load } from "./helpers.ts";

describe("redactUrlCredentials", () => {
  test("user:password@ keeps the user, a lone token is hidden", () => {
    expect(redactUrlCredentials("nats://tapio:hunter2@nats-0:4222")).toBe("nats://tapio:***@nats-0:4222");
    expect(redactUrlCredentials("tls://s3cret-token@nats-0:4222")).toBe("tls://***@nats-0:4222");
  });

  test("URLs without credentials and other text stay as they are", () => {
    for (const text of ["nats://nats-0:4222", "nats-0:4222", "tapio@example.com", "", "nats://h:4222/x@y"]) expect(redactUrlCredentials(text)).toBe(text);
  });

  test("every URL inside a longer text, as in a log message", () => {
    expect(redactUrlCredentials("cannot connect to nats://u:p1@a:4222 or tls://tok@b:4222: timeout")).toBe(
      "cannot connect to nats://u:***@a:4222 or tls://***@b:4222: timeout",
    );
    expect(redactUrlCredentials("nats://u:p1@a:4222,nats://v:p2@b:4222")).toBe("nats://u:***@a:4222,nats://v:***@b:4222");
  });

  test("the loaded nats.url holds no credentials: they moved to the keys print-config hides", () => {
    const { nats } = load("nats:\n  url: ${NATS_URL}\n", { NATS_URL: "nats://tapio:hunter2@a:4222,nats://b:4222" });
    expect(nats.url).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(nats).toMatchObject({ username: "tapio", password: "hunter2" });
  });
});

describe("isPlainMapping", () => {
  test("object literals only", () => {
    expect(isPlainMapping({})).toBe(true);
    expect(isPlainMapping(Object.create(null))).toBe(true);
    for (const value of [[], null, undefined, "x", 1, new Duration(1), new Map()]) expect(isPlainMapping(value)).toBe(false);
  });
});
