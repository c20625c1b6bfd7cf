/**
 * Starts the local sandbox host: checks isolation, then serves the host API on 127.0.0.1.
 * Used by `npm run dev`, the test setup and the benchmark.
 */

import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { ensureBubblewrap, type IsolationMode } from "./isolation";
import { CgroupLimiter, DEFAULT_RESOURCE_LIMITS, type ResourceLimits } from "./limits";
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
  /** Memory and process caps per sandbox (cgroup v1, when the host may create cgroups). */
  resourceLimits?: ResourceLimits;
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
  let limiter: CgroupLimiter | undefined;
  if (isolation === "bubblewrap") {
    const resourceLimits = options.resourceLimits ?? DEFAULT_RESOURCE_LIMITS;
    const created = await CgroupLimiter.create(resourceLimits, `${process.pid}-${randomBytes(3).toString("hex")}`);
    if (typeof created === "string") log(`Resource limits are off: ${created}.`);
    else limiter = created;
  }
  const sessions = options.execMode === "spawn" ? undefined : new SessionPool(limits, limiter);
  const app = createHostApp({ workspaces: new Workspaces(options.root), token: options.token, isolation, limits, sessions, limiter });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: options.port }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        isolation,
        close: async () => {
          sessions?.closeAll();
          await new Promise<void>((done) => server.close(() => done()));
          // Give killed sessions a moment to exit so their cgroups can be removed.
          await new Promise((done) => setTimeout(done, 50));
          await limiter?.releaseAll();
        },
      });
    });
    server.on("error", reject);
  });
}
