// `destinations:` in the config file (issue 15): each mistake reported at its
// place (file:line:column and dotted path) with what to write instead, all at
// once, through the real loader.
import { describe, expect, test } from "bun:test";
import { errors, load } from "./helpers.ts";

describe("destinations: what loads", () => {
  test("each destination takes every key of nats; absent or empty is none", () => {
    expect(load("nats: {}\n").destinations).toEqual({});
    expect(load("destinations:\n").destinations).toEqual({});
    const { central } = load("destinations:\n  central: { url: [nats://c1:4222, nats://c2:4222], subject: tapio.central, stream: { name: TAPIO_CENTRAL } }\n").destinations;
    expect(central).toMatchObject({ url: ["nats://c1:4222", "nats://c2:4222"], subject: "tapio.central", mode: "jetstream", stream: { name: "TAPIO_CENTRAL" } });
  });
});

describe("destinations: each mistake located", () => {
  test('the name "default" is the nats section', () => {
    expect(errors("destinations:\n  default: { url: nats://x:4222 }\n")).toEqual([
      'test.yaml:2:3 destinations.default: the destination "default" is the nats section: configure it there',
    ]);
  });

  test("a name outside [a-z0-9_-]: upper case, a dot (it would be a subject token and a spool file part)", () => {
    expect(errors("destinations:\n  Central: { url: nats://x:4222 }\n  a.b: {}\n  ok_1-x: {}\n")).toEqual([
      'test.yaml:2:3 destinations.Central: destination name "Central" may hold only lowercase letters, digits, "_" and "-"',
      'test.yaml:3:3 destinations.a.b: destination name "a.b" may hold only lowercase letters, digits, "_" and "-"',
    ]);
  });

  test("a key written dotted at the top level is one unknown key: the message says how to nest it", () => {
    expect(errors("destinations.central.url: nats://x:4222\n")).toEqual([
      'test.yaml:1:1 destinations.central.url: unknown key "destinations.central.url": YAML does not nest a dotted key; write it nested: destinations: { central: { url: ... } }',
    ]);
    expect(errors("nats: {}\nnats.url: nats://x:4222\n")).toEqual([
      'test.yaml:2:1 nats.url: unknown key "nats.url": YAML does not nest a dotted key; write it nested: nats: { url: ... }',
    ]);
    // a dotted key whose first part is no known key gets the usual list
    expect(errors("central.url: x\n")[0]).toContain('unknown key "central.url" (known keys: profile, orchestrator, nats, destinations, spool, http, telemetry, collectors, routes)');
  });

  test("a bad key or value nested in a destination, at its path", () => {
    expect(errors("destinations:\n  central:\n    url: [nats://a:4222, http://b:4222]\n    subjct: tapio.central\n    stream: { nme: X }\n")).toEqual([
      'test.yaml:3:26 destinations.central.url.1: expected a NATS server URL like nats://host:4222, tls://host:4222 or host:4222, got "http://b:4222"',
      'test.yaml:4:5 destinations.central.subjct: unknown key "subjct" (did you mean "subject"?)',
      'test.yaml:5:15 destinations.central.stream.nme: unknown key "nme" (did you mean "name"?)',
    ]);
    expect(errors("destinations: [central]\n")).toEqual(["test.yaml:1:15 destinations: expected a mapping, got a list"]);
    expect(errors("destinations:\n  central: nats://c:4222\n")).toEqual(['test.yaml:2:12 destinations.central: expected a mapping, got "nats://c:4222"']);
  });

  test("routes naming a destination not configured: at its item, with the known ones or a did-you-mean", () => {
    expect(errors("destinations:\n  central: { url: nats://x:4222 }\nroutes:\n  - name: a\n    to: [default, centrl, regional]\n")).toEqual([
      'test.yaml:5:19 routes.0.to.1: unknown destination "centrl" (did you mean "central"?)',
      'test.yaml:5:27 routes.0.to.2: unknown destination "regional" (known destinations: default, central)',
    ]);
    // a destination removed from the file while a route still names it
    expect(errors("routes:\n  - name: problems\n    to: central\n")).toEqual(['test.yaml:3:9 routes.0.to: unknown destination "central" (known destinations: default)']);
  });

  test("every problem of destinations and routes at once, in file order", () => {
    expect(errors("destinations:\n  default: {}\n  central: { mode: stream }\nroutes:\n  - name: a\n    to: [elsewhere]\n")).toEqual([
      'test.yaml:2:3 destinations.default: the destination "default" is the nats section: configure it there',
      'test.yaml:3:20 destinations.central.mode: expected one of core, jetstream, got "stream"',
      'test.yaml:6:10 routes.0.to.0: unknown destination "elsewhere" (known destinations: default, central)',
    ]);
  });
});
