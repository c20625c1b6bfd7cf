/**
 * Starts the local sandbox host: checks isolation, then serves the host API on 127.0.0.1.
 * Used by `npm run dev`, the test setup and the benchmark.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { ensureBubblewrap, type IsolationMode } from "./isolation";
import { createHostApp } from "./server";
import { SessionPool } from "./session";
import { Workspaces } from "./workspace";

export interface StartHostOptions {
  /** Directory holding one workspace directory per sandbox ID. */
  root: string;
  token: string;
  /** 0 picks a free port. */
  port: number;
  isolation?: IsolationMode;
  maxOutputBytes?: number;
  /** "session" keeps one isolated namespace per sandbox; "spawn" creates one per exec. */
  execMode?: "session" | "spawn";
  log?: (line: string) => void;
}

export interface RunningHost {
  url: string;
  isolation: IsolationMode;
  close(): Promise<void>;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

export class HostStartError extends Error {
  override readonly name = "HostStartError";
}

export async function startHost(options: StartHostOptions): Promise<RunningHost> {
  const log = options.log ?? ((line: string) => console.error(line));
  const isolation = options.isolation ?? "bubblewrap";
  if (options.token.length < 16) throw new HostStartError("The local sandbox host needs a token of at least 16 characters");
  if (isolation === "none") {
    log("WARNING: SANDBOX_ISOLATION=none. Jobs run as plain processes on this machine with NO isolation: only run trusted code.");
  } else {
    const problem = ensureBubblewrap(log);
    if (problem) throw new HostStartError(problem);
  }
  const limits = { maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES };
  const sessions = options.execMode === "spawn" ? undefined : new SessionPool(limits);
  const app = createHostApp({ workspaces: new Workspaces(options.root), token: options.token, isolation, limits, sessions });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: options.port }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        isolation,
        close: () => {
          sessions?.closeAll();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
    server.on("error", reject);
  });
}
