import * as v from "valibot";
import { LISTEN } from "../../config/schema.ts";
import { byteSize, duration, nonEmptyString, strictObject, text } from "../../config/kit.ts";

export const UNIX_PREFIX = "unix://";
/** Linux's sun_path holds 108 bytes, the last a NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
const MAX_BODY_LIMIT = 256 * 1024 * 1024;
/** Bun's per-request idle timeout goes up to 255 s; a wait must end before it. */
export const MAX_WAIT_MS = 240_000;

/** "unix:///abs/path.sock" or a TCP address as http.listen takes it; an empty host (":9091", all interfaces) only when written so. */
function isListen(s: string): boolean {
  if (s.startsWith(UNIX_PREFIX)) {
    const path = s.slice(UNIX_PREFIX.length);
    return path.startsWith("/") && !path.endsWith("/") && Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES;
  }
  return LISTEN.test(s) && Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535;
}

export const ingestConfigSchema = v.optional(
  strictObject({
    /** where the API listens: a unix socket (file permissions say who may send) or a TCP address */
    listen: v.optional(
      text(`"unix:///absolute/path.sock" (up to ${MAX_SOCKET_PATH_BYTES} bytes) or an address like 127.0.0.1:9091, [::1]:9091, or :9091 for all interfaces`, isListen),
      "unix:///run/tapio-collectors/ingest.sock",
    ),
    /** a file holding the bearer token senders must present; read at start and again whenever it changes */
    token_file: v.optional(nonEmptyString()),
    /** the largest request body; a larger one is refused (413) as soon as that many bytes arrived */
    max_body: v.optional(v.pipe(byteSize({ min: 1024 }), v.maxValue(MAX_BODY_LIMIT, `expected at most ${MAX_BODY_LIMIT / 1024 / 1024}MiB`)), "1MiB"),
    /** the unix socket's permissions, set once it listens */
    socket_mode: v.optional(text('an octal file mode in quotes, like "0660"', (s) => /^0?[0-7]{3}$/.test(s)), "0660"),
    /** how long a ?wait=published request waits for its events to be published or spooled before it is answered 504 */
    wait_timeout: v.optional(
      v.pipe(duration({ positive: true }), v.check((d) => d.ms <= MAX_WAIT_MS, `expected at most ${MAX_WAIT_MS / 1000}s`)),
      "30s",
    ),
  }),
  {},
);

export type IngestConfig = v.InferOutput<typeof ingestConfigSchema>;
