/**
 * How a local container is isolated: the bubblewrap command line for one sandbox's namespace
 * (new user, pid, ipc, uts and cgroup namespaces, the network from network.ts; /usr read-only; a container's
 * /etc; only the workspace, /tmp and the agent's socket directory writable; the root itself
 * read-only), and the check that bubblewrap can run here.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { WORKSPACE_ROOT } from "../../schemas/ids";
import { AGENT_PORT } from "../../schemas/sandboxHost";
import type { ReferenceServer } from "./containerServer";
import { etcArgs } from "./etcView";
import type { SandboxNetwork } from "./network";

/** Where the agent, its node binary and its socket directory appear inside the sandbox. */
export const AGENT_DIR_IN_SANDBOX = "/run/sandbox-agent";
export const SOCKET_DIR_IN_SANDBOX = "/run/sandbox";
export const SOCKET_NAME = "agent.sock";
const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ContainerLayout {
  workspaceDir: string;
  /** Host directory bound at SOCKET_DIR_IN_SANDBOX, where the agent creates its socket. */
  socketDir: string;
  /** Host directory with the generated passwd, group, hosts and hostname. */
  generatedEtcDir: string;
  agentFile: string;
  nodeBinary: string;
  /** Cloudflare's container server to run behind the agent's relay, instead of the agent's own routes. */
  referenceServer?: ReferenceServer;
  /** Environment for the agent (and, through it, the container's processes). */
  env: Record<string, string>;
  /** Its network: bubblewrap arguments plus the wrapper (pasta) that outbound needs. */
  network: SandboxNetwork;
}

/** What root in a sandbox keeps of a container root's capabilities: those over its own files. */
export const FILE_PERMISSION_CAPABILITIES = ["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER"] as const;

/** bubblewrap's arguments, followed by the agent's own command line. */
export function containerArgs(layout: ContainerLayout): string[] {
  const args = ["--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"];
  args.push("--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox");
  // A container's root reads, removes and chmods its own files whatever their mode (a `chmod 000`
  // directory, Go's read-only module cache); in a user namespace of its own these reach only files
  // of the namespace's own uid, never the host's.
  for (const capability of FILE_PERMISSION_CAPABILITIES) args.push("--cap-add", capability);
  args.push("--ro-bind", "/usr", "/usr");
  for (const dir of ["bin", "lib", "lib32", "lib64", "libx32", "sbin"]) {
    if (existsSync(`/usr/${dir}`)) args.push("--symlink", `usr/${dir}`, `/${dir}`);
  }
  // The network's own arguments: --unshare-net for "none", and its resolv.conf for both.
  args.push(...etcArgs(layout.generatedEtcDir), ...layout.network.bubblewrapArgs);
  // /dev is a tmpfs of bubblewrap's: only its shm (POSIX semaphores, shared memory) stays writable.
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--remount-ro", "/dev");
  args.push("--tmpfs", "/tmp", "--dir", "/var", "--symlink", "../tmp", "/var/tmp");
  args.push("--bind", layout.workspaceDir, WORKSPACE_ROOT, "--bind", layout.socketDir, SOCKET_DIR_IN_SANDBOX);
  const agentFile = `${AGENT_DIR_IN_SANDBOX}/agent.mjs`;
  const nodeBinary = `${AGENT_DIR_IN_SANDBOX}/node`;
  args.push("--ro-bind", layout.agentFile, agentFile, "--ro-bind", layout.nodeBinary, nodeBinary);
  const bunBinary = `${AGENT_DIR_IN_SANDBOX}/bun`;
  const serverFile = `${AGENT_DIR_IN_SANDBOX}/sandbox-container.js`;
  if (layout.referenceServer) {
    args.push("--ro-bind", layout.referenceServer.bunBinary, bunBinary, "--ro-bind", layout.referenceServer.serverFile, serverFile);
  }
  // Everything not mounted above (/, /etc, /run, /var) is bubblewrap's own tmpfs: freeze it.
  args.push("--remount-ro", "/", "--chdir", WORKSPACE_ROOT, "--clearenv");
  // Node carries its own CA list; pointing it at the system store (bound read-only above) lets
  // `npm ci` and friends work on a machine whose egress re-signs TLS with a local CA.
  const caBundle = existsSync(SYSTEM_CA_BUNDLE) ? { NODE_EXTRA_CA_CERTS: SYSTEM_CA_BUNDLE } : {};
  const env = { PATH: SANDBOX_PATH, HOME: WORKSPACE_ROOT, LANG: "C.UTF-8", ...caBundle, ...layout.env };
  for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
  args.push("--", nodeBinary, agentFile, "--socket", `${SOCKET_DIR_IN_SANDBOX}/${SOCKET_NAME}`);
  // The agent serves the API itself and ends each command's processes; or it relays to
  // Cloudflare's server on the port a real container serves, which manages its own processes.
  if (layout.referenceServer) args.push("--relay", String(AGENT_PORT), "--", bunBinary, serverFile);
  else args.push("--contain");
  return args;
}

/** Wraps a command so that it runs as `uid`/`gid` with no supplementary groups (then see boundToHost). */
export function asUser(uid: number, command: string, args: string[]): { command: string; args: string[] } {
  return { command: "setpriv", args: [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", command, ...args] };
}

/**
 * Binds a command's life to the host's. A guard shell gets SIGTERM when the host dies (set
 * after the last change of uid, which clears it), checks that the host is still its parent (a
 * host killed before the signal was set would otherwise leave the container running for good),
 * runs the command as its child and, on that SIGTERM, SIGKILLs its whole process group. A
 * parent-death signal reaches one process only: the group kill also ends what the command
 * forked and left without one, such as pasta's child waiting for pasta's go-ahead before it
 * starts the sandbox. The command gets SIGINT and SIGQUIT back, which the shell ignores for
 * what it runs in the background.
 */
export function boundToHost(command: string, args: string[], hostPid = process.pid): { command: string; args: string[] } {
  const script = [
    "trap 'kill -KILL 0' TERM",
    '[ "$PPID" = "$1" ] || exit 125',
    "shift",
    'env --default-signal=INT,QUIT "$@" &',
    'wait "$!"',
  ].join("\n");
  return {
    command: "setpriv",
    args: ["--pdeathsig", "TERM", "--", "/bin/sh", "-c", script, "sandbox-host-guard", String(hostPid), command, ...args],
  };
}

/** True when bubblewrap may create the namespaces we need on this kernel, as an unprivileged uid. */
export function bubblewrapWorks(probeUid: number): boolean {
  const bwrap = ["bwrap", "--unshare-all", "--uid", "0", "--ro-bind", "/", "/", "/bin/true"];
  const probe =
    process.getuid?.() === 0 ? asUser(probeUid, bwrap[0] ?? "bwrap", bwrap.slice(1)) : { command: "bwrap", args: bwrap.slice(1) };
  return spawnSync(probe.command, probe.args, { stdio: "ignore", timeout: 10_000 }).status === 0;
}

/**
 * Makes bubblewrap available: installs it with apt when running as root, otherwise explains the
 * one command to run. Returns an error message, or undefined when it is ready.
 */
export function ensureBubblewrap(probeUid: number, log: (line: string) => void): string | undefined {
  if (bubblewrapWorks(probeUid)) return undefined;
  const installed = spawnSync("bwrap", ["--version"], { stdio: "ignore" }).status === 0;
  if (!installed && process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    log("bubblewrap is missing; installing it with apt-get (once)...");
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    spawnSync("apt-get", ["install", "-y", "-qq", "bubblewrap"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (bubblewrapWorks(probeUid)) return undefined;
  }
  if (!installed)
    return "bubblewrap (bwrap) is required to isolate sandboxes. Install it with:\n\n    sudo apt-get install -y bubblewrap\n";
  return "bubblewrap is installed but an unprivileged user cannot create user namespaces here (check user.max_user_namespaces / kernel.unprivileged_userns_clone).";
}
