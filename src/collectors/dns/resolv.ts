// Which servers to probe: configured `ip[:port]`s, or the nameservers of
// resolv.conf, read as glibc reads it.
import { isIP } from "node:net";

export type OnError = (detail: string) => void;

export interface Server {
  ip: string;
  port: number;
}

const DNS_PORT = 53;
/** glibc's MAXNS: nameserver lines after the third are ignored by every resolver on the node. */
const MAX_NAMESERVERS = 3;

/** An address, with an IPv6 zone ("fe80::1%eth0") allowed, as resolv.conf may hold link-local servers. */
function isAddress(text: string): boolean {
  const [address = "", zone] = text.split("%", 2);
  return isIP(address) === 4 ? zone === undefined : isIP(address) === 6 && zone !== "";
}

/** "10.96.0.10", "10.96.0.10:53", "fd00::a", "[fd00::a]:5353"; undefined if it is none of these. */
export function parseServer(text: string): Server | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4WithPort = /^([\d.]+):(\d{1,5})$/.exec(text);
  const [ip, port] = bracketed ? [bracketed[1]!, bracketed[2]] : v4WithPort ? [v4WithPort[1]!, v4WithPort[2]] : [text, undefined];
  const portNumber = port === undefined ? DNS_PORT : Number(port);
  if (!isAddress(ip) || portNumber < 1 || portNumber > 65535) return undefined;
  return { ip, port: portNumber };
}

/**
 * The nameservers of a resolv.conf, in order, at most three. Like glibc it
 * ignores other keywords; a nameserver line it cannot use is reported.
 */
export function parseResolvConf(text: string, fail: OnError): Server[] {
  const servers: Server[] = [];
  for (const line of text.split("\n")) {
    // Like glibc, only the first word after the keyword counts.
    const [keyword, value] = line.trim().split(/\s+/);
    if (keyword !== "nameserver") continue;
    if (value === undefined || !isAddress(value)) {
      fail(`unusable nameserver line: ${JSON.stringify(line.slice(0, 64))}`);
      continue;
    }
    if (servers.length < MAX_NAMESERVERS) servers.push({ ip: value, port: DNS_PORT });
  }
  return servers;
}
