/**
 * Where a webhook may be sent (an SSRF guard): deployed, only `https` to a public host. A Worker
 * cannot resolve names itself, so this refuses what the URL itself shows to be internal (IP
 * literals in loopback, private, link-local, CGNAT, multicast and reserved ranges, and names
 * such as `localhost`, `*.internal` and cloud metadata hosts); deliveries are sent with redirects
 * off, so a public host cannot bounce one inward. `allowPrivate` (WEBHOOK_ALLOW_PRIVATE_DESTINATIONS=1,
 * set by `npm run dev` and the tests) lets `http` and local receivers through.
 */

export type DestinationCheck = { ok: true; url: URL } | { ok: false; reason: string };

const INTERNAL_NAMES = ["localhost", "metadata.google.internal", "metadata", "instance-data"];
const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".intranet", ".lan"];

export function checkDestination(raw: string, allowPrivate: boolean): DestinationCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "url is not an absolute URL" };
  }
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return { ok: false, reason: allowPrivate ? "url must be http or https" : "url must be https" };
  }
  if (url.username !== "" || url.password !== "") return { ok: false, reason: "url must not carry a user name or password" };
  if (url.hash !== "") return { ok: false, reason: "url must not have a #fragment" };
  if (allowPrivate) return { ok: true, url };
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const internal = internalHostReason(host);
  return internal ? { ok: false, reason: `url points at ${internal}; webhooks go to public hosts only` } : { ok: true, url };
}

/** Why a host (as the URL parser normalised it) is internal, or undefined when it may be public. */
function internalHostReason(host: string): string | undefined {
  if (INTERNAL_NAMES.includes(host) || INTERNAL_SUFFIXES.some((suffix) => host.endsWith(suffix))) return `an internal name (${host})`;
  if (host.startsWith("[")) return ipv6Reason(host.slice(1, -1));
  const ipv4 = parseIpv4(host);
  if (ipv4) return ipv4Reason(ipv4);
  // A single label (no dot) only resolves on a local network's search domains.
  if (!host.includes(".")) return `a single-label name (${host})`;
  return undefined;
}

function parseIpv4(host: string): number[] | undefined {
  // WHATWG URL parsing already turned decimal, octal and hex forms into dotted quads.
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!match) return undefined;
  const octets = match.slice(1).map(Number);
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

function ipv4Reason([a = 0, b = 0]: number[]): string | undefined {
  if (a === 0) return "the unspecified network 0.0.0.0/8";
  if (a === 127) return "loopback (127.0.0.0/8)";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "a private network";
  if (a === 169 && b === 254) return "link-local or cloud metadata (169.254.0.0/16)";
  if (a === 100 && b >= 64 && b <= 127) return "carrier-grade NAT (100.64.0.0/10)";
  if (a === 192 && b === 0) return "reserved (192.0.0.0/24)";
  if (a === 198 && (b === 18 || b === 19)) return "benchmarking (198.18.0.0/15)";
  if (a >= 224) return "multicast or reserved (224.0.0.0/3)";
  return undefined;
}

function ipv6Reason(address: string): string | undefined {
  const lower = address.toLowerCase();
  if (lower === "::" || lower === "::1") return "loopback or unspecified (::1, ::)";
  // IPv4-mapped and -translated forms reach the IPv4 address they carry.
  const mapped = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (mapped) {
    const high = Number.parseInt(mapped[1] ?? "0", 16);
    const low = Number.parseInt(mapped[2] ?? "0", 16);
    return ipv4Reason([high >> 8, high & 255, low >> 8, low & 255]) ?? undefined;
  }
  const first = Number.parseInt(lower.split(":")[0] || "0", 16);
  if ((first & 0xfe00) === 0xfc00) return "a unique local IPv6 network (fc00::/7)";
  if ((first & 0xffc0) === 0xfe80) return "link-local IPv6 (fe80::/10)";
  if ((first & 0xff00) === 0xff00) return "IPv6 multicast (ff00::/8)";
  return undefined;
}
