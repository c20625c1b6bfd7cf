/**
 * The agent's relay mode, for running Cloudflare's own container server instead of the agent:
 * it starts that server (which listens on TCP inside the sandbox's network namespace), waits
 * until it answers `GET /api/ping`, then forwards every connection to the agent's Unix socket
 * byte for byte to the server's port. Bytes are piped with backpressure, never parsed or
 * buffered, so streams pass as the server writes them. The relay exits with the server.
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { constants } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

export interface RelayOptions {
  socketPath: string;
  /** The port the server listens on, on 127.0.0.1 in the sandbox's own network namespace. */
  port: number;
  /** The server's command line. */
  command: string[];
  /** Extra environment for the server (its port is added here). */
  env: Record<string, string>;
  /** Called once the server answers and the socket accepts connections. */
  onReady: () => void;
}

/** How often readiness is probed while the server starts (Bun is up in about 100 ms). */
const READY_POLL_MS = 25;

export function runRelay(options: RelayOptions): void {
  const [command, ...args] = options.command;
  if (command === undefined) throw new Error("--relay needs the server's command line after --");
  // The server's stdout is its log: it goes to stderr, so stdout carries only our ready line.
  const server = spawn(command, args, {
    stdio: ["ignore", 2, 2],
    // The container's own environment wins over the defaults, as envVars override an image's ENV.
    env: { ...options.env, ...process.env, SANDBOX_CONTAINER_PORT: String(options.port) },
  });
  server.on("error", (error) => {
    console.error(`relay: cannot start ${command}: ${error.message}`);
    process.exit(127);
  });
  server.on("exit", (code, signal) => {
    console.error(`relay: the container server exited (${signal ?? `code ${code}`})`);
    process.exit(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
  });
  void waitUntilAnswering(options.port).then(() => listen(options));
}

async function waitUntilAnswering(port: number): Promise<void> {
  while (!(await pingAnswers(port))) await sleep(READY_POLL_MS);
}

function pingAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = request({ host: "127.0.0.1", port, path: "/api/ping", headers: { host: `localhost:${port}` } }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    probe.on("error", () => resolve(false));
    probe.end();
  });
}

function listen(options: RelayOptions): void {
  // Half-open on both sides: a client that ends its request body must still get the answer.
  const relay = createServer({ allowHalfOpen: true }, (client) => forward(client, options.port));
  relay.listen(options.socketPath, options.onReady);
}

/** Pipes one connection both ways; a side that fails or goes away takes the other down with it. */
function forward(client: Socket, port: number): void {
  const upstream = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  // The client left (a cancelled stream): the server must see its connection close too.
  client.on("close", () => upstream.destroy());
}
