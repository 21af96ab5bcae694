// ingest emits what its senders send: no types of its own.
import { declareEvents } from "../../event/declare.ts";

export const ingestEvents = declareEvents("ingest", {}, { note: "The senders' own types: any event input Tapio's Go CollectorEvent takes (README, The ingest API)." });
