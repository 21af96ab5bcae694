// Where each collector stopped in its source (ctx.state), kept in the spool
// database so that a restart, of the collector or of the agent, resumes
// there. A saved value must never run ahead of the events: it is written
// only once every event the collector emitted before the save is durable
// (acknowledged by NATS, or in the spool), in memory mode as in disk mode.
// Delivery reports each event's fate here (settled); a save waits for the
// events before it, and a later save replaces one still waiting.
import type { Logger } from "pino";
import type { QueuedEvent } from "../event/event.ts";
import type { Spool } from "../spool/spool.ts";
import type { SpoolError } from "../spool/errors.ts";
import { LogThrottle } from "../log.ts";
import type { CollectorState } from "./collector.ts";

export interface CollectorStatesOptions {
  /** where values are kept; none: nothing is kept */
  spool: Spool | undefined;
  /** spool.enabled, but it could not be opened */
  spoolUnavailable?: SpoolError;
  /** spool.enabled: without a spool and without spoolUnavailable, none was opened on purpose (--dry-run) */
  spoolEnabled?: boolean;
}

/** A collector's side of its state: its ctx.state, and the runner's hook for each event it accepts. */
export interface StateHandle {
  readonly state: CollectorState;
  /** An event of this collector was accepted into the queue (tracked once the collector uses its state). */
  emitted(id: string): void;
  /** saves not written yet, waiting for events before them: at most one per epoch with open events */
  readonly waiting: number;
}

export class CollectorStates {
  readonly #o: CollectorStatesOptions;
  readonly #gates = new Map<string, SaveGate>();
  /** tracked events not settled yet, over every collector: while 0, settled() has nothing to look up */
  #open = 0;

  constructor(options: CollectorStatesOptions) {
    this.#o = options;
  }

  /**
   * The state of collector `name`: one per name for the agent's life, so a
   * collector restarted (after a failure, or by a reload) continues the
   * same sequence of saves and never writes an older value over a newer one.
   */
  for(name: string, log: Logger): StateHandle {
    let gate = this.#gates.get(name);
    if (!gate) {
      gate = new SaveGate(name, this.#o, log, (delta) => (this.#open += delta));
      this.#gates.set(name, gate);
    }
    return gate;
  }

  /**
   * These events are durable (published and acknowledged, or written to the
   * spool), or gone for good by a policy (a drop policy made room, NATS can
   * never take them): saves made after them may be written. Events lost
   * (shutdown deadline, no spool) are never reported, so saves after them stay unwritten.
   */
  settled(events: readonly QueuedEvent[]): void {
    if (this.#open === 0) return;
    for (const event of events) this.#gates.get(event.collector)?.settled(event.id);
  }
}

/**
 * One collector's saves, each held until the events emitted before it have
 * settled. Events are counted by epoch: a save closes the current epoch, and
 * a save can be written once no event of its epoch or an earlier one is open.
 * O(1) per event; ids may repeat (a collector's own ids), each copy counts.
 */
class SaveGate implements StateHandle {
  readonly state: CollectorState;
  readonly #name: string;
  readonly #spool: Spool | undefined;
  readonly #log: Logger;
  readonly #throttle = new LogThrottle();
  readonly #opened: (delta: number) => void;
  /** tracking starts at the collector's first load() or save(): collectors that keep no state cost nothing */
  #tracking = false;
  #noSpoolSaid = false;
  #epoch = 0;
  /** open events per epoch, oldest epoch first (epochs only grow, so insertion order is epoch order) */
  readonly #openByEpoch = new Map<number, number>();
  readonly #epochOf = new Map<string, number | number[]>();
  /** saves not written yet, oldest first: each covers the events of its epoch and before */
  #waiting: Array<{ readonly epoch: number; value: string }> = [];

  constructor(name: string, o: CollectorStatesOptions, log: Logger, opened: (delta: number) => void) {
    this.#name = name;
    this.#spool = o.spool;
    this.#log = log;
    this.#opened = opened;
    const why = o.spool
      ? undefined
      : o.spoolUnavailable
        ? `the spool could not be opened: ${o.spoolUnavailable.message}`
        : o.spoolEnabled
          ? "none is opened with --dry-run"
          : "spool.enabled is false";
    this.state = {
      load: () => {
        if (!this.#spool) {
          this.#sayNoSpool(why!);
          return undefined;
        }
        this.#tracking = true;
        try {
          return this.#spool.loadState(this.#name);
        } catch (err) {
          this.#warn("load", `cannot read where collector ${this.#name} stopped: ${(err as Error).message}; it starts afresh`);
          return undefined;
        }
      },
      save: (value) => {
        if (!this.#spool) return this.#sayNoSpool(why!);
        this.#tracking = true;
        if (this.#openByEpoch.size === 0) return this.#write(value);
        // No event of this epoch open: this save waits for exactly what the last waiting one waits
        // for, and replaces it. So saves wait in memory at most one per epoch with open events.
        const last = this.#waiting.at(-1);
        if (last && !this.#openByEpoch.has(this.#epoch)) {
          last.value = value;
          return;
        }
        this.#waiting.push({ epoch: this.#epoch, value });
        this.#epoch++;
      },
    };
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  readonly emitted = (id: string): void => {
    if (!this.#tracking) return;
    const epoch = this.#epoch;
    this.#openByEpoch.set(epoch, (this.#openByEpoch.get(epoch) ?? 0) + 1);
    const seen = this.#epochOf.get(id);
    if (seen === undefined) this.#epochOf.set(id, epoch);
    else if (typeof seen === "number") this.#epochOf.set(id, [seen, epoch]);
    else seen.push(epoch);
    this.#opened(1);
  };

  settled(id: string): void {
    const seen = this.#epochOf.get(id);
    if (seen === undefined) return;
    let epoch: number;
    if (typeof seen === "number") {
      epoch = seen;
      this.#epochOf.delete(id);
    } else {
      epoch = seen.shift()!;
      if (seen.length === 1) this.#epochOf.set(id, seen[0]!);
    }
    this.#opened(-1);
    const left = this.#openByEpoch.get(epoch)! - 1;
    if (left > 0) {
      this.#openByEpoch.set(epoch, left);
      return;
    }
    this.#openByEpoch.delete(epoch);
    this.#release();
  }

  /** Writes the newest save whose events have all settled, and forgets the older ones. */
  #release(): void {
    if (this.#waiting.length === 0) return;
    let oldestOpen = Infinity;
    for (const epoch of this.#openByEpoch.keys()) {
      oldestOpen = epoch;
      break;
    }
    let ready = -1;
    while (ready + 1 < this.#waiting.length && this.#waiting[ready + 1]!.epoch < oldestOpen) ready++;
    if (ready < 0) return;
    const { value } = this.#waiting[ready]!;
    this.#waiting = this.#waiting.slice(ready + 1);
    this.#write(value);
  }

  #write(value: string): void {
    try {
      this.#spool!.saveState(this.#name, value);
    } catch (err) {
      // The next save writes a newer value; until then a restart resumes from an older one (duplicates, which JetStream drops).
      this.#warn("save", `cannot save where collector ${this.#name} stopped: ${(err as Error).message}; a restart would resume from the last value saved`);
    }
  }

  #sayNoSpool(why: string): void {
    if (this.#noSpoolSaid) return;
    this.#noSpoolSaid = true;
    this.#log.info({ reason: why }, `no spool (${why}): where collector ${this.#name} stops in its source is not kept; after a restart it starts afresh`);
  }

  #warn(key: string, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#log.warn(suppressed > 0 ? { suppressed } : {}, message);
  }
}
