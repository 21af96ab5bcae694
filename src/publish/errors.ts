// The one error a publisher rejects with: a problem retrying cannot fix
// (unreadable credentials, credentials the server rejects, a stream that does
// not cover our subjects). Transient trouble is retried, never thrown.

export class PublisherError extends Error {
  override readonly name = "PublisherError";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
