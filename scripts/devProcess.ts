/**
 * `npm run dev` as a child process in its own process group, for what must stop the whole stack
 * at once (a SIGKILL of everything, as a crash would) and start it again on the same state: the
 * crash-restart test and the benchmark.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { waitUntilServing } from "./localStack";

export interface DevProcessOptions {
  apiPort: number;
  hostPort: number;
  stateDir: string;
  /** Extra environment, e.g. SANDBOX_MEMORY_MB. */
  env?: Record<string, string>;
  /** Where its output goes (default: nowhere). */
  output?: "inherit" | "ignore";
}

export interface DevProcess {
  apiUrl: string;
  child: ChildProcess;
  /** SIGKILLs every process of the stack (the Worker runtime, wrangler, the container host). */
  kill(): Promise<void>;
  /** Stops it the way Ctrl-C does. */
  stop(): Promise<void>;
}

export async function startDevProcess(options: DevProcessOptions): Promise<DevProcess> {
  const child = spawn(resolve("node_modules/.bin/tsx"), ["scripts/dev.ts"], {
    detached: true,
    stdio: ["ignore", options.output ?? "ignore", options.output ?? "ignore"],
    env: {
      ...process.env,
      PORT: String(options.apiPort),
      SANDBOX_HOST_PORT: String(options.hostPort),
      ARTIFACT_SANDBOX_STATE_DIR: options.stateDir,
      ...options.env,
    },
  });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const apiUrl = `http://localhost:${options.apiPort}`;
  const signalGroup = async (signal: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
    await exited;
  };
  // A stack that exits while starting (a bad state dir, a port in use) fails the start at once,
  // and one that never serves is killed: either way no process outlives the failed start.
  const exitedEarly = exited.then(() => {
    throw new Error(`npm run dev exited before serving (code ${child.exitCode}, signal ${child.signalCode})`);
  });
  // Handled by the race below while starting; later, exiting is what stop() and kill() are for.
  exitedEarly.catch(() => undefined);
  try {
    await Promise.race([waitUntilServing(apiUrl, 90_000), exitedEarly]);
  } catch (error) {
    await signalGroup("SIGKILL");
    throw error;
  }
  return { apiUrl, child, kill: () => signalGroup("SIGKILL"), stop: () => signalGroup("SIGINT") };
}
