/**
 * A sandbox's network, the way a deployed Cloudflare container has it. "outbound": the public
 * internet and nothing of the host's: not its loopback, its own addresses, its LAN, link-local
 * metadata or private ranges. "none": loopback only, and name lookups that fail at once.
 *
 * Outbound goes through pasta (Debian's passt package), a user-mode TCP/IP stack: pasta starts
 * the sandbox in a new user and network namespace whose only way out is a tap device that pasta
 * serves with ordinary sockets of its own unprivileged uid. What a job can reach is therefore
 * decided by the namespace's routes, which a setup step writes (as root of pasta's user
 * namespace) before bubblewrap starts: every blocked range is a "prohibit" route, so a connect()
 * fails at once with EACCES. bubblewrap then nests the job in a user namespace of its own
 * without capabilities, so nothing in it can change those routes. pasta exits when the sandbox
 * does, and bubblewrap dies with pasta (see inPastaNamespace for the moments before it can).
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";

export type NetworkPolicy = "outbound" | "none";

/** The namespace's side of pasta's link, in ranges that are blocked for everything else. */
const LINK = { device: "eth0", address: "10.0.2.100", gateway: "10.0.2.2", resolver: "10.0.2.3" } as const;
/** The routing table that holds the one exception to the blocks: DNS (UDP 53) to pasta's forwarder. */
const DNS_TABLE = 53;

/** IPv4 destinations no sandbox may reach: this network, private, shared (CGNAT), loopback, link-local, multicast, reserved. */
export const BLOCKED_IPV4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/4",
  "240.0.0.0/4",
] as const;
/** pasta runs IPv4 only (-4); every IPv6 destination but the namespace's own ::1 is prohibited, these named for clarity. */
export const BLOCKED_IPV6 = ["fc00::/7", "fe80::/10", "::/0"] as const;

/** What the sandbox's /etc/resolv.conf says under each policy. */
const RESOLV_CONF: Record<NetworkPolicy, string> = {
  outbound: `# Name lookups go to the sandbox host's resolver, through pasta's DNS forwarder.\nnameserver ${LINK.resolver}\n`,
  // Nothing listens on port 53 here: the query is refused by the kernel, so a lookup fails in a millisecond.
  none: '# This sandbox has no network (policy "none"): every name lookup fails at once.\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n',
};

/** pasta's options: no port forwarding in either direction, no gateway-to-host-loopback mapping. */
const PASTA_ARGS = [
  "--foreground",
  "--quiet",
  "--ipv4-only",
  "--ns-ifname",
  LINK.device,
  "--address",
  LINK.address,
  "--gateway",
  LINK.gateway,
  "--dns-forward",
  LINK.resolver,
  "--no-map-gw",
  "--no-dhcp",
  "--tcp-ports",
  "none",
  "--udp-ports",
  "none",
  "--tcp-ns",
  "none",
  "--udp-ns",
  "none",
];

/** IPv4 network of an address with a prefix length, e.g. 192.0.2.7/24 -> 192.0.2.0/24. */
function ipv4Network(address: string, prefix: number): string {
  const value = address.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join(".")}/${prefix}`;
}

/** The host's own IPv4 addresses and the networks they sit on (its LAN, its gateway), read now. */
export function hostIpv4Destinations(): string[] {
  const destinations = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      if (entry.family !== "IPv4" || entry.internal || !isIPv4(entry.address)) continue;
      destinations.add(`${entry.address}/32`);
      const prefix = Number(entry.cidr?.split("/")[1]);
      if (Number.isInteger(prefix) && prefix >= 8 && prefix <= 32) destinations.add(ipv4Network(entry.address, prefix));
    }
  }
  return [...destinations];
}

/** `ip -batch` commands that give the namespace its link, its default route and its blocks. */
export function routeCommands(hostDestinations: string[] = hostIpv4Destinations()): string[] {
  // A host on, say, 10.1.2.3/8 repeats a blocked range: one route per destination, or ip -batch stops.
  const blocked = new Set([...BLOCKED_IPV4, ...hostDestinations, ...BLOCKED_IPV6]);
  return [
    "link set lo up",
    `link set ${LINK.device} mtu 65520 up`,
    `address add ${LINK.address}/32 dev ${LINK.device}`,
    // onlink: the gateway is a next hop only; the gateway address itself is blocked like 10/8.
    `route add default via ${LINK.gateway} dev ${LINK.device} onlink`,
    ...[...blocked].map((destination) => `route add prohibit ${destination}`),
    `route add ${LINK.resolver}/32 dev ${LINK.device} table ${DNS_TABLE}`,
    `rule add pref 100 to ${LINK.resolver}/32 ipproto udp dport 53 lookup ${DNS_TABLE}`,
  ];
}

/**
 * The setup step pasta runs in the new namespace: no IPv6 on the link (no link-local address),
 * the routes, then exec of the sandbox's own command. Any failure stops the sandbox from starting.
 */
function setupScript(commands: string[]): string {
  return [
    "set -e",
    `echo 1 > /proc/sys/net/ipv6/conf/${LINK.device}/disable_ipv6`,
    `ip -batch - <<'ROUTES'\n${commands.join("\n")}\nROUTES`,
    'exec "$@"',
  ].join("\n");
}

export interface SandboxNetwork {
  policy: NetworkPolicy;
  /** bubblewrap arguments: the network namespace (for "none") and the sandbox's resolv.conf. */
  bubblewrapArgs: string[];
  /** Wraps the bubblewrap command line; compose it inside setpriv (so pasta runs unprivileged). */
  wrap(command: string, args: string[]): { command: string; args: string[] };
}

/**
 * How to give one sandbox its network. `filesDir` is where `writeNetworkFiles` put the
 * resolv.conf files. For "outbound", bubblewrap must not get --unshare-net from elsewhere: it
 * joins pasta's namespace.
 */
export function sandboxNetwork(policy: NetworkPolicy, filesDir: string): SandboxNetwork {
  const resolvConf = ["--ro-bind", resolvConfPath(filesDir, policy), "/etc/resolv.conf"];
  if (policy === "none") {
    return { policy, bubblewrapArgs: ["--unshare-net", ...resolvConf], wrap: (command, args) => ({ command, args }) };
  }
  return { policy, bubblewrapArgs: resolvConf, wrap: inPastaNamespace };
}

/**
 * Runs a command in a new namespace served by pasta, after the setup step has written the routes.
 * pasta gets SIGKILL when the process that spawned it dies (set here, after any setpriv before
 * it: a uid change would clear it), and bubblewrap's --die-with-parent ends the sandbox with
 * pasta once bubblewrap has set it. Before that, pasta's child (pid 1 of the sandbox's pid
 * namespace) has no parent-death signal: it waits for pasta's go-ahead, then runs the setup
 * step. The host guard's process-group kill ends it with the host (boundToHost in isolation.ts).
 */
function inPastaNamespace(command: string, args: string[]): { command: string; args: string[] } {
  const setup = ["/bin/sh", "-c", setupScript(routeCommands()), "sandbox-network"];
  return { command: "setpriv", args: ["--pdeathsig", "KILL", "--", "pasta", ...PASTA_ARGS, "--", ...setup, command, ...args] };
}

function resolvConfPath(filesDir: string, policy: NetworkPolicy): string {
  return join(filesDir, `resolv.${policy}.conf`);
}

/** Writes the per-policy resolv.conf files, readable by the sandboxes' unprivileged host uid. */
export async function writeNetworkFiles(filesDir: string): Promise<void> {
  await mkdir(filesDir, { recursive: true, mode: 0o755 });
  await chmod(filesDir, 0o755);
  for (const [policy, content] of Object.entries(RESOLV_CONF)) {
    await writeFile(join(filesDir, `resolv.${policy}.conf`), content, { mode: 0o644 });
  }
}

/** The host-wide setting: operators set SANDBOX_NETWORK=none to give no sandbox any network. */
export function hostNetworkPolicy(value: string | undefined): NetworkPolicy {
  return value === "none" || value === "off" ? "none" : "outbound";
}

/** One sandbox's policy: outbound unless the host or the container's start request turns it off. */
export function containerNetworkPolicy(host: NetworkPolicy, enableInternet: boolean | undefined): NetworkPolicy {
  return host === "outbound" && enableInternet !== false ? "outbound" : "none";
}

const TUN_DEVICE = "/dev/net/tun";

/**
 * Whether outbound sandboxes can start here, probed as `probeUid` (the sandboxes' host uid):
 * undefined when they can, else the reason.
 */
export function networkSupport(probeUid: number): string | undefined {
  if (spawnSync("pasta", ["--version"], { stdio: "ignore" }).status !== 0) return "pasta is not installed (Debian package passt)";
  // pasta opens the tap device from inside its namespace, as the unprivileged uid.
  if (existsSync(TUN_DEVICE) && (statSync(TUN_DEVICE).mode & 0o006) !== 0o006) {
    return `${TUN_DEVICE} is not readable and writable by unprivileged users (mode 0666 is the usual setting)`;
  }
  // A route lookup sends nothing: this proves the namespace and its routes without any traffic.
  const probe = inPastaNamespace("ip", ["-4", "route", "get", "1.1.1.1"]);
  const asUser = process.getuid?.() === 0 ? ["setpriv", `--reuid=${probeUid}`, `--regid=${probeUid}`, "--clear-groups", "--"] : [];
  const [command = probe.command, ...args] = [...asUser, probe.command, ...probe.args];
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 10_000 });
  if (result.status === 0 && result.stdout.includes(`via ${LINK.gateway}`)) return undefined;
  const detail = `${result.stderr ?? ""}${result.error?.message ?? ""}`.replace(/Failed to send \d+ bytes to syslog\n?/g, "").trim();
  return `pasta could not set up a sandbox network${detail ? `: ${detail}` : ""}`;
}

/**
 * Makes outbound networking available: as root, installs passt with apt and opens the tap
 * device to unprivileged users (the usual 0666), then probes. Returns the reason it cannot, or undefined.
 */
export function ensureNetworkSupport(probeUid: number, log: (line: string) => void): string | undefined {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && spawnSync("pasta", ["--version"], { stdio: "ignore" }).status !== 0 && existsSync("/usr/bin/apt-get")) {
    log("pasta (passt) is missing; installing it with apt-get (once)...");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    spawnSync("apt-get", ["install", "-y", "-qq", "passt"], { stdio: "inherit", env });
    if (spawnSync("pasta", ["--version"], { stdio: "ignore" }).status !== 0) {
      spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
      spawnSync("apt-get", ["install", "-y", "-qq", "passt"], { stdio: "inherit", env });
    }
  }
  if (isRoot && existsSync(TUN_DEVICE) && (statSync(TUN_DEVICE).mode & 0o006) !== 0o006) {
    log(`making ${TUN_DEVICE} usable by unprivileged users (mode 0666, as udev sets it on most systems)`);
    spawnSync("chmod", ["0666", TUN_DEVICE], { stdio: "inherit" });
  }
  const reason = networkSupport(probeUid);
  if (reason === undefined) return undefined;
  return `${reason}. Install it with:\n\n    sudo apt-get install -y passt\n\nor set SANDBOX_NETWORK=none to give sandboxes no network.`;
}
