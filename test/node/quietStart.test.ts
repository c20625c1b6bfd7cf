/**
 * `npm run dev` starts quietly on a machine without internet: miniflare's fetch of the
 * `Request.cf` object (which fails there with a stack trace per Worker instance) is off. On a
 * machine with internet the fetch would succeed silently, so this test only bites offline, as
 * these machines are. Its first sweep for stranded jobs (the local stand-in for the cron trigger)
 * runs the Worker's scheduled handler successfully.
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, tempStateDir } from "./devStack";

describe("npm run dev", () => {
  const cleanup: string[] = [];
  afterAll(async () => {
    await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("starts without stack traces about Request.cf, and its sweeper runs", { timeout: 120_000 }, async () => {
    const stateDir = await tempStateDir("quiet-start-");
    cleanup.push(stateDir);
    // As a newcomer's shell has it: nothing set about the `cf` fetch, and no NODE_ENV=test (vitest
    // sets it, and miniflare skips the fetch under it).
    const { CLOUDFLARE_CF_FETCH_ENABLED: _unset, NODE_ENV: _test, ...environment } = process.env;
    const child = spawn(resolve("node_modules/.bin/tsx"), ["scripts/dev.ts"], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...environment,
        PORT: String(await freePort()),
        SANDBOX_HOST_PORT: String(await freePort()),
        ARTIFACT_SANDBOX_STATE_DIR: stateDir,
        // Every request is printed: the sweeper's call among them.
        ARTIFACT_SANDBOX_LOG_LEVEL: "info",
      },
    });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    try {
      await new Promise<void>((ready, fail) => {
        const timer = setInterval(() => {
          if (output.includes("artifact-sandbox is running at")) {
            clearInterval(timer);
            ready();
          }
        }, 100);
        void exited.then(() => {
          clearInterval(timer);
          fail(new Error(`npm run dev exited while starting:\n${output}`));
        });
      });
      // Both Worker instances have set up their `cf` by the time the API serves.
      expect(output).not.toContain("Request.cf");
      expect(output).not.toContain("ENOTFOUND");
      // The sweeper calls the scheduled handler once the API serves.
      await expect.poll(() => output, { timeout: 30_000 }).toMatch(/GET \/__scheduled\?cron=\S+ \d{3}/);
      expect(output).toMatch(/GET \/__scheduled\?cron=\S+ 200/);
      expect(output).not.toContain("local sweeper:");
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
      await exited;
    }
  });
});
