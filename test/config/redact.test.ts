import { describe, expect, test } from "bun:test";
import { Duration } from "../../src/config/duration.ts";
import { isPlainMapping } from "../../src/config/parse.ts";
import { redactText, redactUrl, redactUrlCredentials, rememberSecret, rememberSecrets } from "../../src/config/redact.ts";
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

describe("redactUrl: one value meant as a URL, valid or not", () => {
  test("everything up to the last @ is credentials, even with spaces, / and @ in it", () => {
    expect(redactUrl("nats://u:pa ss/w@rd@host:4222")).toBe("nats://u:***@host:4222");
    expect(redactUrl("tls://tok en@host:4222/path")).toBe("tls://***@host:4222/path");
    expect(redactUrl("u:pw@host:4222")).toBe("u:***@host:4222");
    expect(redactUrl("nats://host:4222")).toBe("nats://host:4222");
  });
});

describe("redactText: the last guard on output", () => {
  test("a remembered secret is hidden as written, JSON-escaped and percent-encoded, before URL userinfo", () => {
    const secret = 'a"b\\c@d/e-remembered';
    rememberSecret(secret);
    expect(redactText(`x ${secret} y`)).toBe("x *** y");
    expect(redactText(JSON.stringify({ msg: `x ${secret}` }))).toBe('{"msg":"x ***"}');
    expect(redactText(`nats://u:${encodeURIComponent(secret)}@h`)).toBe("nats://u:***@h");
    // its "@" would otherwise end the userinfo early and leave the rest shown
    expect(redactText(`nats://u:${secret}@h:4222`)).toBe("nats://u:***@h:4222");
  });

  test("the secret keys of a loaded config are remembered; short ones are left to the first layer", () => {
    rememberSecrets(load('nats: { username: tapio, password: "from-the-config-1" }'));
    expect(redactText("said from-the-config-1")).toBe("said ***");
    rememberSecret("abc");
    expect(redactText("abc")).toBe("abc");
  });
});
