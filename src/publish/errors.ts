// The one error a publisher rejects with: a problem retrying cannot fix
// (unreadable credentials, credentials the server rejects, a stream that does
// not cover our subjects). Transient trouble is retried, never thrown.

export class PublisherError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** start() ended because close() was called first (shutdown while NATS was away): not a failure. */
export class PublisherClosedError extends PublisherError {}
