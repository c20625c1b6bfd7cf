/**
 * Entry point of the sandbox agent, the process the local container host runs inside each
 * bubblewrap namespace: `node agent.mjs (--socket <path> | --port <n>) [--contain] [--cwd <dir>]`,
 * or `node agent.mjs --socket <path> --relay <port> -- <server command>` to run Cloudflare's own
 * container server behind the socket instead (relay.ts).
 * Prints `{"ready":true}` (plus `"port"` for TCP) on stdout once it accepts connections.
 *   --contain  the agent is alone in its pid namespace: after each command, kill every process
 *              but pid 1 and itself (refused when the agent's pid shows it is not in one).
 *   --cwd      default working directory of sessions (default /workspace).
 *   --relay    start the server given after `--`, and forward the socket to that port.
 * Env COMMAND_TIMEOUT_MS: default timeout of /api/execute commands, as in the real container.
 */
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { CommandQueue, runningProcessGroups } from "./exec.ts";
import { ProcessRegistry } from "./processes.ts";
import { assertContainable, createReaper } from "./reaper.ts";
import { runRelay } from "./relay.ts";
import { createAgentServer } from "./server.ts";
import { SessionStore } from "./sessions.ts";

/** The container version the SDK's compatibility check expects (its SDK_VERSION). */
export const CONTAINER_VERSION = "0.12.10";

/**
 * Defaults for Cloudflare's server: the version the cloudflare/sandbox image sets (the SDK
 * compares it with its own); no pre-started code interpreters, whose executor scripts are not in
 * the bundle; and warnings only, as the agent logs nothing per command (the server logs each).
 */
const REFERENCE_SERVER_ENV = {
  SANDBOX_VERSION: CONTAINER_VERSION,
  SANDBOX_LOG_LEVEL: "warn",
  PYTHON_POOL_MIN_SIZE: "0",
  JAVASCRIPT_POOL_MIN_SIZE: "0",
  TYPESCRIPT_POOL_MIN_SIZE: "0",
};

function main(): void {
  const { values, positionals } = parseArgs({
    options: {
      socket: { type: "string" },
      port: { type: "string" },
      contain: { type: "boolean", default: false },
      cwd: { type: "string", default: "/workspace" },
      relay: { type: "string" },
    },
    allowPositionals: true,
  });
  if ((values.socket === undefined) === (values.port === undefined)) throw new Error("pass exactly one of --socket <path> or --port <n>");
  if (values.relay !== undefined) {
    if (values.socket === undefined) throw new Error("--relay forwards a --socket");
    rmSync(values.socket, { force: true });
    runRelay({
      socketPath: values.socket,
      port: Number(values.relay),
      command: positionals,
      env: REFERENCE_SERVER_ENV,
      onReady: () => process.stdout.write(`${JSON.stringify({ ready: true })}\n`),
    });
    return;
  }
  if (values.contain) assertContainable();
  const timeoutSetting = Number(process.env.COMMAND_TIMEOUT_MS ?? "0");
  const reaper = createReaper(values.contain);
  const sessions = new SessionStore(values.cwd, Number.isFinite(timeoutSetting) && timeoutSetting > 0 ? timeoutSetting : undefined, reaper);
  const server = createAgentServer({
    sessions,
    queue: new CommandQueue(),
    processes: new ProcessRegistry(),
    reaper,
    version: CONTAINER_VERSION,
  });
  const announce = () => {
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : undefined;
    process.stdout.write(`${JSON.stringify(values.port === undefined ? { ready: true } : { ready: true, port })}\n`);
  };
  if (values.socket !== undefined) {
    // A socket file left by a previous instance would make listen fail with EADDRINUSE.
    rmSync(values.socket, { force: true });
    server.listen(values.socket, announce);
  } else {
    server.listen(Number(values.port), "127.0.0.1", announce);
  }
  const stop = () => {
    // Contained, the namespace ends with the agent; uncontained, running commands must be ended here.
    for (const processGroupId of runningProcessGroups) {
      try {
        process.kill(-processGroupId, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    void sessions.destroyAll().finally(() => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main();
