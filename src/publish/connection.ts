// One NATS connection shared by a publisher: makes the first connection,
// follows nc.status() to know whether it is up (and where, how often it
// reconnected, what went wrong last), and lets publishers wait until it is.
//
// The first connection is our own retry loop rather than nats.js'
// `waitOnFirstConnect`: that option retries silently (no status events exist
// before the first connect), cannot be interrupted by close(), and keeps the
// process alive; ours logs why it cannot connect, shows it in status(), stops
// on close() and fails at once on rejected credentials.
import type { Logger } from "pino";
import { AuthorizationError, PermissionViolationError, type NatsConnection, type Status } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { NatsConfig } from "../config/schema.ts";
import { connectionOptions } from "./connect.ts";
import { PublisherClosedError, PublisherError } from "./errors.ts";
import { redactUrlCredentials } from "../config/redact.ts";
import { LogThrottle } from "../log.ts";
import { sleep } from "../wait.ts";

export interface ConnectionState {
  readonly connected: boolean;
  /** gave up for good (reconnects exhausted, start failed) or closed */
  readonly closed: boolean;
  readonly server?: string;
  readonly reconnects: number;
  readonly lastError?: string;
  /** the server refused a subject we need (publish, stream API, reply inbox) and nothing has worked since */
  readonly permission?: string;
}


export class ConnectionManager {
  readonly #config: NatsConfig;
  readonly #log: Logger;
  readonly #closing = new AbortController();
  readonly #throttle = new LogThrottle();
  readonly #waiters = new Set<(connected: boolean) => void>();
  readonly #reconnectListeners: Array<() => void> = [];
  readonly #troubleListeners: Array<(event: { type: "disconnect" } | { type: "error"; error: Error }) => void> = [];
  /** a Set: removing one while they are told is safe */
  readonly #stateListeners = new Set<() => void>();
  #nc: NatsConnection | undefined;
  #watching: Promise<void> | undefined;
  #connected = false;
  /** start() gave up: rejected credentials, bad files, max_reconnects reached */
  #failed = false;
  #server: string | undefined;
  #reconnects = 0;
  #lastError: string | undefined;
  #permission: string | undefined;
  /** the server's last refusal of a subscription: requests answered on that inbox time out instead */
  #refusedSubscription: PermissionViolationError | undefined;

  constructor(config: NatsConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /** Aborted by close(): stops retry loops of the users of this connection. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** The connection; only after start() resolved. */
  get nc(): NatsConnection {
    if (!this.#nc) throw new Error("NATS connection used before start() resolved");
    return this.#nc;
  }

  state(): ConnectionState {
    return {
      connected: this.#connected,
      closed: this.#closing.signal.aborted || this.#failed || (this.#nc?.isClosed() ?? false),
      server: this.#server,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      permission: this.#permission,
    };
  }

  /** Records a publish failure, so status() shows the latest problem of either kind. */
  recordError(message: string): void {
    this.#lastError = message;
  }

  /**
   * A permission refusal: named in health, /readyz and circuit reasons until
   * a publish or stream check works again (the server's permissions may be
   * fixed by a reload without any reconnect).
   */
  recordPermission(message: string): void {
    const was = this.#permission;
    this.#permission = message;
    if (was === undefined) this.#stateChanged();
  }

  /** What was refused works now. */
  permissionRestored(): void {
    const was = this.#permission;
    this.#permission = undefined;
    this.#refusedSubscription = undefined;
    if (was !== undefined) this.#stateChanged();
  }

  /** The refusal that explains a request timing out: our reply inbox may not be subscribed to. */
  get refusedSubscription(): PermissionViolationError | undefined {
    return this.#refusedSubscription;
  }

  /** Called after every reconnect (JetStream re-checks its stream). */
  onReconnect(listener: () => void): void {
    this.#reconnectListeners.push(listener);
  }

  /**
   * Called when state() may say something else: connected or not, closed,
   * a permission refused or restored (not for each new lastError). Returns
   * what removes the listener.
   */
  onStateChange(listener: () => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  #stateChanged(): void {
    for (const listener of this.#stateListeners) listener();
  }

  /** Called on a disconnect (in-flight requests will get no reply) and on asynchronous server errors (permission violations). */
  onTrouble(listener: (event: { type: "disconnect" } | { type: "error"; error: Error }) => void): void {
    this.#troubleListeners.push(listener);
  }

  /**
   * Connects, retrying every reconnect_wait (with jitter) until it works,
   * max_reconnects retries ran out, or close() is called. Rejects with a
   * PublisherError for bad credential files, rejected credentials, running
   * out of retries and close().
   */
  async start(): Promise<NatsConnection> {
    try {
      return await this.#connectFirst();
    } catch (err) {
      this.#failed = true;
      this.#stateChanged();
      throw err;
    }
  }

  async #connectFirst(): Promise<NatsConnection> {
    const options = connectionOptions(this.#config);
    // URLs may carry user:password@; never let them reach a log line or an error.
    const servers = this.#config.url.map(redactUrlCredentials).join(", ");
    const max = this.#config.max_reconnects;
    for (let attempt = 0; ; attempt++) {
      let nc: NatsConnection;
      try {
        nc = await connect(options);
      } catch (err) {
        const message = (err as Error).message;
        this.#lastError = message;
        if (err instanceof AuthorizationError) {
          throw new PublisherError(`NATS at ${servers} rejected the credentials: ${message}`, { cause: err });
        }
        if (max !== -1 && attempt >= max) {
          throw new PublisherError(`cannot connect to NATS at ${servers} after ${attempt + 1} attempt${attempt === 0 ? "" : "s"}: ${message}`, { cause: err });
        }
        this.#warn("connect", { servers, attempt: attempt + 1, error: message }, "cannot connect to NATS yet; retrying");
        // up to 20% jitter spreads a node fleet's agents that all wait for the same server
        const wait = this.#config.reconnect_wait.ms * (1 + Math.random() / 5);
        if (await sleep(wait, this.#closing.signal)) continue;
        throw new PublisherClosedError("publisher closed before NATS was reached", { cause: err });
      }
      if (this.#closing.signal.aborted) {
        await nc.close();
        throw new PublisherClosedError("publisher closed before NATS was reached");
      }
      this.#nc = nc;
      this.#connected = true;
      this.#server = nc.getServer();
      this.#watching = this.#watch(nc);
      this.#log.info({ server: this.#server, name: this.#config.name }, "connected to NATS");
      this.#release(true);
      this.#stateChanged();
      return nc;
    }
  }

  /**
   * Resolves true once connected (at once if connected now), false if
   * `signal` aborts or the connection closes for good first.
   */
  waitConnected(signal: AbortSignal): Promise<boolean> {
    if (this.#connected) return Promise.resolve(true);
    if (signal.aborted || this.#closing.signal.aborted || this.#nc?.isClosed()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (connected: boolean) => {
        this.#waiters.delete(done);
        signal.removeEventListener("abort", onAbort);
        resolve(connected);
      };
      const onAbort = () => done(false);
      this.#waiters.add(done);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Sends what is buffered (bounded by `timeout`), closes the connection and ends all waits. */
  /**
   * Closes without a final flush: every delivered event was already confirmed
   * (a JetStream ack, or the flush of its core batch), and a flush to a hung
   * server would hold the shutdown for nats.timeout past its deadline.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#stateChanged();
    const nc = this.#nc;
    if (nc && !nc.isClosed()) await nc.close();
    this.#release(false);
    await this.#watching;
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) this.#onStatus(status);
  }

  #onStatus(status: Status): void {
    switch (status.type) {
      case "disconnect":
        this.#connected = false;
        this.#warn("disconnect", { server: status.server }, "disconnected from NATS; reconnecting");
        for (const listener of this.#troubleListeners) listener({ type: "disconnect" });
        this.#stateChanged();
        break;
      case "reconnect":
        this.#connected = true;
        this.#server = status.server;
        this.#reconnects++;
        this.#log.info({ server: status.server, reconnects: this.#reconnects }, "reconnected to NATS");
        for (const listener of this.#reconnectListeners) listener();
        this.#release(true);
        this.#stateChanged();
        break;
      case "error":
        this.#lastError = status.error.message;
        if (status.error instanceof PermissionViolationError) {
          const was = this.#permission;
          this.#permission = permissionMessage(status.error);
          if (status.error.operation === "subscription") this.#refusedSubscription = status.error;
          if (was === undefined) this.#stateChanged();
        }
        this.#warn(`error:${status.error.name}`, { error: status.error.message }, "NATS reported an error");
        for (const listener of this.#troubleListeners) listener({ type: "error", error: status.error });
        break;
      case "ldm":
        this.#log.info({ server: status.server }, "NATS server entering lame duck mode; will move to another");
        break;
      case "staleConnection":
        this.#warn("stale", {}, "NATS connection stale; reconnecting");
        break;
      case "close":
        this.#connected = false;
        if (!this.#closing.signal.aborted) {
          this.#lastError = `connection closed: ${this.#lastError ?? "gave up reconnecting"}`;
          this.#log.error({ error: this.#lastError }, "NATS connection closed for good; publishing stops");
        }
        this.#release(false);
        this.#stateChanged();
        break;
    }
  }

  #release(connected: boolean): void {
    for (const waiter of [...this.#waiters]) waiter(connected);
  }

  #warn(key: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.#throttle.take(key);
    if (suppressed === undefined) return;
    this.#log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}

/** The refusal and what to do about it: the server's words alone do not say why the agent needs that subject. */
export function permissionMessage(error: PermissionViolationError): string {
  if (error.operation === "publish") return `the NATS user may not publish to "${error.subject}"; see README "NATS permissions"`;
  // Only reply inboxes are subscribed to: <inbox_prefix>.<unique>.*
  const prefix = error.subject.split(".").slice(0, -2).join(".");
  return `the NATS user may not subscribe to "${error.subject}", the agent's reply inbox: allow "${prefix}.>" or set nats.inbox_prefix to a prefix it may use; see README "NATS permissions"`;
}
