// Counts permits for unacknowledged publishes (max_in_flight), shared by all
// concurrent publish() calls. The fast path (a permit is free) allocates
// nothing; waiters are served first come, first served.

export class Semaphore {
  #free: number;
  readonly #waiters: Array<() => void> = [];

  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`permits must be a positive integer, got ${permits}`);
    this.#free = permits;
  }

  get available(): number {
    return this.#free;
  }

  tryAcquire(): boolean {
    if (this.#free === 0) return false;
    this.#free--;
    return true;
  }

  /** Waits for a permit (try tryAcquire() first to skip the promise). */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    // hand the permit straight to the next waiter, so a newcomer's tryAcquire cannot overtake it
    if (next) next();
    else this.#free++;
  }
}
