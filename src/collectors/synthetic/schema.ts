import * as v from "valibot";
import { SEVERITIES } from "../../event/event.ts";
import { integer, nonEmptyString, number, picklist, strictObject } from "../../config/kit.ts";

export const syntheticConfigSchema = v.optional(
  strictObject({
    /** events per second; 0 = as fast as the queue takes them */
    rate: v.optional(number(0, 10_000_000), 10),
    /** events in all; 0 = unbounded (with --once: one second's worth) */
    count: v.optional(integer(0, Number.MAX_SAFE_INTEGER), 0),
    /** approximate size of each event's JSON; below about 250 bytes an event is just its envelope */
    payload_bytes: v.optional(integer(256, 1_000_000), 512),
    /** the event type */
    type: v.optional(nonEmptyString(), "synthetic.event"),
    severity: v.optional(picklist(SEVERITIES), "info"),
  }),
  {},
);

export type SyntheticConfig = v.InferOutput<typeof syntheticConfigSchema>;
