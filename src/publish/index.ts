// Builds the publisher the config asks for; the rest of the agent knows
// publishers only through this function and the Publisher interface.
import type { Logger } from "pino";
import type { NatsConfig } from "../config/schema.ts";
import { ConnectionManager } from "./connection.ts";
import { CorePublisher } from "./core.ts";
import { JetStreamPublisher } from "./jetstream.ts";
import type { Publisher, PublishErrorListener } from "./publisher.ts";
import { StdoutPublisher } from "./stdout.ts";
import { BatchPolicy } from "./batch-policy.ts";

export interface CreatePublisherOptions {
  log: Logger;
  /** print events as NDJSON on stdout instead of publishing */
  dryRun?: boolean;
  onError?: PublishErrorListener;
}

export function createPublisher(config: NatsConfig, opts: CreatePublisherOptions): Publisher {
  if (opts.dryRun) return new StdoutPublisher();
  const log = opts.log.child({ component: "publisher", mode: config.mode });
  const connection = new ConnectionManager(config, log);
  const publisher = config.mode === "jetstream"
    ? new JetStreamPublisher(config, log, connection, opts.onError)
    : new CorePublisher(config, log, connection, opts.onError);
  return new BatchPolicy(config.batch).wrap(publisher, log);
}

export { PublisherError } from "./errors.ts";
export type { Publisher } from "./publisher.ts";
