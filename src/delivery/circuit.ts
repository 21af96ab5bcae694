// A circuit breaker per destination subject. After `failureThreshold`
// consecutive failures it opens: events for that subject go to the spool
// without trying NATS. After `openFor` one probe is let through (half-open);
// its success closes the circuit, its failure opens it again. A probe that
// never reports counts as failed after `probeTimeout`, so the breaker cannot
// stay half-open (the Go original's breaker could, rejecting everything while
// health said "healthy").

export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitOptions {
  failureThreshold: number;
  openForMs: number;
  probeTimeoutMs: number;
  now?: () => number;
  onChange?: (subject: string, from: CircuitState, to: CircuitState, reason: string) => void;
}

export interface CircuitSnapshot {
  subject: string;
  state: CircuitState;
  consecutive_failures: number;
  opened_at: string | undefined;
  /** how many times it opened since start */
  opens: number;
  last_failure: string | undefined;
}

export class CircuitBreaker {
  #state: CircuitState = "closed";
  #failures = 0;
  #openedAt = 0;
  #probeAt = 0;
  #opens = 0;
  /** why the last publish for this subject failed */
  #lastFailure: string | undefined;

  constructor(
    readonly subject: string,
    readonly options: CircuitOptions,
  ) {}

  get state(): CircuitState {
    this.#expireProbe();
    return this.#state;
  }

  #now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** May events for this subject be sent now? In half-open, true once: for the probe. */
  allow(): boolean {
    if (this.#state === "closed") return true;
    const now = this.#now();
    if (this.#state === "open") {
      if (now - this.#openedAt < this.options.openForMs) return false;
      this.#move("half_open", "probing after the open period");
      this.#probeAt = now;
      return true;
    }
    // half-open: one probe at a time; a probe that went silent is a failure
    this.#expireProbe();
    return false;
  }

  success(): void {
    this.#failures = 0;
    if (this.#state !== "closed") this.#move("closed", "a publish succeeded");
  }

  get lastFailure(): string | undefined {
    return this.#lastFailure;
  }

  failure(reason = "publish failed"): void {
    this.#failures++;
    this.#lastFailure = reason;
    if (this.#state === "half_open") this.#open(`probe failed: ${reason}`);
    else if (this.#state === "closed" && this.#failures >= this.options.failureThreshold) {
      this.#open(`${this.#failures} consecutive failures: ${reason}`);
    }
  }

  /** Returns true when a silent probe was just turned into an open circuit. */
  #expireProbe(): boolean {
    if (this.#state !== "half_open" || this.#now() - this.#probeAt < this.options.probeTimeoutMs) return false;
    this.#open("probe timed out");
    return true;
  }

  #open(reason: string): void {
    this.#openedAt = this.#now();
    this.#opens++;
    this.#move("open", reason);
  }

  #move(to: CircuitState, reason: string): void {
    const from = this.#state;
    this.#state = to;
    if (from !== to) this.options.onChange?.(this.subject, from, to, reason);
  }

  snapshot(): CircuitSnapshot {
    const state = this.state;
    return {
      subject: this.subject,
      state,
      consecutive_failures: this.#failures,
      opened_at: state === "closed" ? undefined : new Date(this.#openedAt).toISOString(),
      opens: this.#opens,
      last_failure: this.#lastFailure,
    };
  }
}

/** One breaker per destination subject, created on first use. */
export class CircuitBreakers {
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(readonly options: CircuitOptions) {}

  for(subject: string): CircuitBreaker {
    let b = this.#breakers.get(subject);
    if (!b) {
      b = new CircuitBreaker(subject, this.options);
      this.#breakers.set(subject, b);
    }
    return b;
  }

  /**
   * Subjects whose circuit lets nothing through now. An open circuit whose
   * period is over turns half-open here and is left out: the caller's next
   * publish of that subject is the probe.
   */
  blocked(): Set<string> {
    const out = new Set<string>();
    for (const [subject, b] of this.#breakers) if (!b.allow()) out.add(subject);
    return out;
  }

  all(): CircuitBreaker[] {
    return [...this.#breakers.values()];
  }
}
