// The event types this collector emits and what each carries (README "Emits"); the published schema is built from them.
import { declareEvents, struct } from "../../event/declare.ts";
import { SEVERITIES } from "../../event/event.ts";

export const syntheticEvents = declareEvents(
  "synthetic",
  {
    "synthetic.event": {
      description: "A generated event: seq counts from 0 in each run, padding brings it to payload_bytes.",
      severities: SEVERITIES,
      event_data: { custom: struct("seq padding") },
    },
  },
  { note: "The config's `type` replaces synthetic.event; event_data is the same." },
);
