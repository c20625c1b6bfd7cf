/**
 * A burst on a fresh local stack (`npm run dev`): ten 100-job batches submitted back to back
 * across 100 new sandboxes, so that every sandbox's container starts while submits keep coming.
 * Every submit is accepted (202), the Worker runtime is the same process at the end (nothing
 * restarted it), and every job ends, succeeded.
 */
import { rm } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { BatchView } from "../../schemas/job";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { descendantsOf, processes } from "../../scripts/processes";
import { freePort, tempStateDir } from "./devStack";

const SANDBOXES = 100;
const BATCHES = 10;

/** The stack's workerd processes (the Worker runtime), by pid and command line. */
function workerdProcesses(rootPid: number): string[] {
  return descendantsOf(rootPid, processes())
    .filter((info) => /(^|\/)workerd$/.test(info.commandLine.split(" ")[0] ?? ""))
    .map((info) => `${info.pid} ${info.commandLine.slice(0, 80)}`)
    .sort();
}

interface Submit {
  status: number;
  ms: number;
  body: string;
}

async function submitBurstBatch(apiUrl: string): Promise<Submit> {
  const jobs = Array.from({ length: SANDBOXES }, (_, index) => ({ sandboxId: `burst-${index}`, job: { type: "run", command: "true" } }));
  const started = performance.now();
  const response = await fetch(`${apiUrl}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jobs }),
  });
  const body = await response.text();
  return { status: response.status, ms: performance.now() - started, body };
}

async function waitForBatch(apiUrl: string, batchId: string, timeoutMs: number): Promise<BatchView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${apiUrl}/v1/batches/${batchId}?wait=30`);
    const text = await response.text();
    expect(response.status, text.slice(0, 500)).toBe(200);
    const batch = BatchView.parse(JSON.parse(text));
    if (batch.status === "succeeded" || batch.status === "failed" || Date.now() > deadline) return batch;
  }
}

describe("a burst on a fresh local stack", () => {
  let stack: DevProcess | undefined;
  let stateDir: string | undefined;

  afterAll(async () => {
    await stack?.kill();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("accepts ten back-to-back 100-job batches across 100 new sandboxes, without a restart, and runs every job", {
    timeout: 300_000,
  }, async () => {
    stateDir = await tempStateDir("burst-");
    stack = await startDevProcess({
      apiPort: await freePort(),
      hostPort: await freePort(),
      stateDir,
      // One container per sandbox, for the host and for the tenant: under wrangler.jsonc's caps (20
      // containers, 10 of them for one tenant) the 100 sandboxes of tenant `local` would take turns
      // on 10 containers, each turn stopping one and starting another, and the test would measure
      // that, not the burst.
      env: {
        SANDBOX_MAX_CONTAINERS: String(SANDBOXES),
        TENANT_MAX_CONTAINERS: String(SANDBOXES),
        ARTIFACT_SANDBOX_LOG_LEVEL: "warn",
      },
    });
    const rootPid = stack.child.pid;
    if (rootPid === undefined) throw new Error("npm run dev has no pid");
    const runtimeBefore = workerdProcesses(rootPid);
    expect(runtimeBefore.length).toBeGreaterThan(0);

    const submits: Submit[] = [];
    for (let batch = 0; batch < BATCHES; batch++) submits.push(await submitBurstBatch(stack.apiUrl));
    console.log(`batch accept times: ${submits.map((submit) => `${Math.round(submit.ms)} ms`).join(", ")}`);
    expect(submits.map((submit) => (submit.status === 202 ? 202 : `${submit.status} ${submit.body.slice(0, 200)}`))).toEqual(
      Array(BATCHES).fill(202),
    );

    const apiUrl = stack.apiUrl;
    const batches = await Promise.all(
      submits.map((submit) => waitForBatch(apiUrl, BatchView.parse(JSON.parse(submit.body)).batchId, 180_000)),
    );
    const statuses: Record<string, number> = {};
    const errors: Record<string, number> = {};
    for (const job of batches.flatMap((batch) => batch.jobs)) {
      statuses[job.status] = (statuses[job.status] ?? 0) + 1;
      const error = job.error && `${job.status} ${job.error.code}: ${job.error.message.slice(0, 200)}`;
      if (error) errors[error] = (errors[error] ?? 0) + 1;
    }
    // What held or failed jobs said, so that a failure here says why.
    for (const [error, count] of Object.entries(errors)) console.log(`${count} x ${error}`);
    expect(statuses).toEqual({ succeeded: BATCHES * SANDBOXES });
    expect(workerdProcesses(rootPid)).toEqual(runtimeBefore);
  });
});
