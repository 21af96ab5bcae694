// Credentials written in nats.url (user:password@ or token@, percent-encoded)
// become the username/password or token keys: the client reads only those.
// Conflicts and malformed ones are located errors that never quote them.
import { describe, expect, test } from "bun:test";
import { errors, load } from "./helpers.ts";

describe("credentials in nats.url", () => {
  test("user:password@ becomes username and password, percent-decoded; the URL keeps no credentials", () => {
    const { nats } = load('nats: { url: "nats://tapio:p%40ss%3Aw%2Frd%25@nats-0:4222" }');
    expect(nats).toMatchObject({ url: ["nats://nats-0:4222"], username: "tapio", password: "p@ss:w/rd%" });
    expect(nats.token).toBeUndefined();
  });

  test("token@ becomes token, also without a scheme and over tls://", () => {
    expect(load('nats: { url: "s3cret%20token@nats-0:4222" }').nats).toMatchObject({ url: ["nats-0:4222"], token: "s3cret token" });
    expect(load('nats: { url: "tls://tok@nats-0:4222" }').nats).toMatchObject({ url: ["tls://nats-0:4222"], token: "tok" });
  });

  test("the same credentials in several URLs, or in one of them, apply to all", () => {
    const { nats } = load('nats:\n  url: ${NATS_URL}\n', { NATS_URL: "nats://tapio:pw@a:4222,nats://b:4222,nats://tapio:pw@c:4222" });
    expect(nats).toMatchObject({ url: ["nats://a:4222", "nats://b:4222", "nats://c:4222"], username: "tapio", password: "pw" });
  });

  test("a URL's credentials and an authentication key are two methods: located at the key, naming both", () => {
    expect(errors('nats:\n  url: "nats://tapio:pw@a:4222"\n  token: abc\n')).toEqual([
      "test.yaml:3:3 nats.token: set only one authentication method, found credentials in url, token",
    ]);
    expect(errors('nats:\n  url: "tok@a:4222"\n  username: u\n  password: p\n')[0]).toBe(
      "test.yaml:3:3 nats.username: set only one authentication method, found credentials in url, username/password",
    );
    expect(errors('nats:\n  url: "tok@a:4222"\n  creds_file: /x.creds\n')[0]).toContain("found credentials in url, creds_file");
  });

  test("different credentials in two URLs, half a user:password, a bad %-escape: errors at url that quote no secret", () => {
    const cases: Array<[string, string]> = [
      ['["nats://u:Secret1@a:4222", "nats://u:Secret2@b:4222"]', "the URLs carry different credentials"],
      ['"nats://u:@a:4222"', "needs both a user and a password"],
      ['"nats://:Secret1@a:4222"', "needs both a user and a password"],
      ['"nats://Secret1%zz@a:4222"', "not valid percent-encoding"],
      ['"nats://@a:4222"', "empty token"],
    ];
    for (const [url, message] of cases) {
      const found = errors(`nats:\n  url: ${url}\n`);
      expect(found).toEqual([`test.yaml:2:3 nats.url: ${found[0]!.slice("test.yaml:2:3 nats.url: ".length)}`]);
      expect(found[0]).toContain(message);
      expect(found.join("\n")).not.toContain("Secret");
    }
  });
});
