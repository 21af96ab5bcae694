// exec emits what its program writes: no types of its own.
import { declareEvents } from "../../event/declare.ts";

export const execEvents = declareEvents("exec", {}, { note: "The program's own types: any event input Tapio's Go CollectorEvent takes (README, exec)." });
