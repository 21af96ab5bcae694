// `top`: a live view of the agent, like `vector top`. Polls /status every
// interval and shows per collector the rates since the previous frame.
import type { StatusDocument } from "../http/server.ts";
import { Duration } from "../config/duration.ts";
import { EXIT, HELP, UsageError, parseFlags } from "./usage.ts";
import { AgentUnreachableError, destinationsTable, droppedTotal, fetchStatus, resolveAgentUrl, STATUS_TIMEOUT_MS } from "./status.ts";
import { clockTime, formatAge, formatBytes, formatCount, formatDuration, formatPercent, formatRate, renderTable, truncate } from "./table.ts";

const MIN_INTERVAL_MS = 50;
/** Home the cursor and clear the screen (and the scrollback, so frames do not pile up). */
const CLEAR = "\x1b[H\x1b[2J\x1b[3J";

export async function topCommand(args: string[]): Promise<number> {
  const flags = parseFlags("top", args);
  if (flags.help) {
    process.stdout.write(`${HELP.top}\n`);
    return EXIT.ok;
  }
  const intervalMs = parseInterval(flags.interval ?? "1s");
  const iterations = flags.iterations === undefined ? Infinity : parseIterations(flags.iterations);
  const base = await resolveAgentUrl("top", flags.url, flags.config);
  const tty = process.stdout.isTTY === true;

  const { promise: interrupted, resolve: interrupt } = Promise.withResolvers<void>();
  let stopped = false;
  const onSignal = () => {
    stopped = true;
    interrupt();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let previous: Sample | undefined;
  let answered = false;
  const startedAt = performance.now();
  try {
    for (let i = 0; i < iterations && !stopped; i++) {
      let frame: string;
      try {
        const doc = await fetchStatus(base, Math.max(STATUS_TIMEOUT_MS, intervalMs));
        const sample: Sample = { doc, at: performance.now() };
        frame = renderTopFrame(base, sample, previous);
        previous = sample;
        answered = true;
      } catch (err) {
        if (!(err instanceof AgentUnreachableError)) throw err;
        frame = `tapio-collectors top  ${base}  ${clockTime(Date.now())}\n\n${err.message}\n(retrying every ${formatDuration(intervalMs / 1000)})`;
      }
      if (stopped) break;
      process.stdout.write(tty ? `${CLEAR}${frame}\n` : `${i > 0 ? "\n" : ""}${frame}\n`);
      if (i + 1 >= iterations) break;
      // keep the cadence: the next frame is due at start + (i+1) intervals
      const wait = startedAt + (i + 1) * intervalMs - performance.now();
      if (wait > 0) await Promise.race([Bun.sleep(wait), interrupted]);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (!answered && !stopped) {
    process.stderr.write(`tapio-collectors: top: the agent at ${base}/status never answered\n`);
    return EXIT.failure;
  }
  return EXIT.ok;
}

function parseInterval(text: string): number {
  // a bare number is seconds, as in `top -i 2`
  const d = /^\d+(?:\.\d+)?$/.test(text.trim()) ? new Duration(Math.round(Number(text) * 1000)) : Duration.parse(text);
  if (!d) throw new UsageError(`top: --interval: expected a duration like 1s, 500ms or 2, got "${text}"`);
  if (d.ms < MIN_INTERVAL_MS) throw new UsageError(`top: --interval: must be at least ${MIN_INTERVAL_MS}ms, got "${text}"`);
  return d.ms;
}

function parseIterations(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`top: --iterations: expected a whole number of at least 1, got "${text}"`);
  return n;
}

interface Sample {
  doc: StatusDocument;
  /** performance.now() when it arrived */
  at: number;
}

/**
 * One frame. Rates are over the agent's own clock between the two documents
 * (uptime_seconds); the first frame, or one after the agent restarted, shows
 * the average since the agent started.
 */
export function renderTopFrame(base: string, current: Sample, previous: Sample | undefined): string {
  const { doc } = current;
  const sameAgent = previous !== undefined && previous.doc.agent.pid === doc.agent.pid && previous.doc.agent.started_at === doc.agent.started_at;
  const before = sameAgent ? previous.doc : undefined;
  const seconds = before ? doc.agent.uptime_seconds - before.agent.uptime_seconds : doc.agent.uptime_seconds;
  const span = seconds > 0 ? seconds : (current.at - (previous?.at ?? current.at)) / 1000;
  const rate = (now: number, then: number) => (span > 0 ? Math.max(0, now - then) / span : 0);
  const prevOf = new Map((before?.collectors ?? []).map((c) => [c.name, c]));

  let totalIn = 0;
  let totalOut = 0;
  let totalDropRate = 0;
  const rows = doc.collectors.map((c) => {
    const p = prevOf.get(c.name);
    const inRate = rate(c.events_accepted, p?.events_accepted ?? 0);
    const outRate = rate(c.events_published, p?.events_published ?? 0);
    const drops = droppedTotal(c.events_dropped);
    const dropRate = rate(drops, p ? droppedTotal(p.events_dropped) : 0);
    totalIn += inRate;
    totalOut += outRate;
    totalDropRate += dropRate;
    return [
      c.name,
      c.state,
      formatRate(inRate),
      formatRate(outRate),
      formatRate(dropRate),
      formatCount(c.events_published),
      formatCount(drops),
      String(c.restarts),
      formatAge(c.last_event_time),
      c.last_error ? truncate(c.last_error, 40) : "",
    ];
  });

  const { agent, health, queue, delivery } = doc;
  const nats = delivery.nats;
  const natsState = nats.closed ? "closed" : nats.connected ? `connected${nats.server ? ` to ${nats.server}` : ""}` : "DISCONNECTED";
  const spool = delivery.spool ? `${formatCount(delivery.spool.depth)} (${formatBytes(delivery.spool.bytes)})` : "disabled";
  const openCircuits = delivery.circuits.filter((c) => c.state !== "closed").length;
  const window = before ? `rates over the last ${formatDuration(span)}` : "rates: average since start";

  const destinations = Object.entries(doc.destinations ?? {});
  // With several destinations, queue, spool and NATS of the document are the default one's: each is in the table instead.
  const several = destinations.length > 1;
  const out: string[] = [];
  out.push(`tapio-collectors ${agent.version}  ${base}  up ${formatDuration(agent.uptime_seconds)}  ${clockTime(Date.now())}`);
  out.push(`${health.state}, ${agent.ready ? "ready" : "NOT READY"} (${agent.ready_reason})  ${window}`);
  out.push(
    `publish ${formatRate(totalOut)}/s  in ${formatRate(totalIn)}/s  drops ${formatRate(totalDropRate)}/s` +
      (several ? "" : `  queue ${formatCount(queue.length)} (${formatPercent(queue.utilization)})  spool ${spool}`),
  );
  out.push(`NATS${several ? " (default)" : ""} ${nats.mode} ${natsState}, ${nats.reconnects} reconnect(s)${openCircuits ? `, ${openCircuits} circuit(s) open` : ""}${nats.lastError ? `, last error: ${truncate(nats.lastError, 60)}` : ""}`);
  for (const p of health.problems) out.push(`  ! ${truncate(p, 120)}`);
  if (several) out.push("", destinationsTable(destinations));
  out.push("");
  out.push(
    rows.length === 0
      ? "no collectors running"
      : renderTable(
          [
            { header: "COLLECTOR" },
            { header: "STATE" },
            { header: "IN/S", align: "right" },
            { header: "OUT/S", align: "right" },
            { header: "DROP/S", align: "right" },
            { header: "PUBLISHED", align: "right" },
            { header: "DROPPED", align: "right" },
            { header: "RESTARTS", align: "right" },
            { header: "LAST EVENT" },
            { header: "LAST ERROR" },
          ],
          rows,
        ),
  );
  return out.join("\n");
}
