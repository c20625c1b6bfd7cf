/**
 * Ending a sandbox: its unfinished jobs cancelled, its container stopped with its workspace
 * emptied, its saved workspace deleted. What `DELETE /v1/sandboxes/{id}` does at once and the
 * tenant's directory does to a sandbox idle past SANDBOX_IDLE_TTL_SECONDS. Job records stay
 * until their retention ends.
 */
import { JobService } from "../api/jobService";
import { readConfig } from "../config";
import { sandboxFactory } from "../sandbox/select";
import { r2Keys, sandboxKey } from "../storage/layout";

/** How long a delete waits for its cancelled running jobs' runners to stop them. */
const RUNNER_STOP_WAIT_MS = 15_000;

async function activeJobIds(bucket: R2Bucket, key: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const listing = await bucket.list({ prefix: `${r2Keys.activePrefix}${key}/`, cursor, limit: 1000 });
    ids.push(...listing.objects.map((object) => object.key.slice(object.key.lastIndexOf("/") + 1)));
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
  return ids;
}

async function destroyContainerAndWorkspace(env: Env, key: string): Promise<void> {
  await sandboxFactory(env)(key).destroy();
  await env.JOB_OUTPUT.delete(r2Keys.workspaceSnapshot(key));
}

/** Cancels the sandbox's unfinished jobs and destroys its container and workspace; returns how many jobs it cancelled. */
export async function destroySandbox(env: Env, tenant: string, sandboxId: string): Promise<number> {
  const key = sandboxKey(tenant, sandboxId);
  const jobs = new JobService(env, readConfig(env), tenant);
  const outcomes = await Promise.all(
    (await activeJobIds(env.JOB_OUTPUT, key)).map(async (jobId) => ({ jobId, outcome: await jobs.cancel(jobId).catch(() => undefined) })),
  );
  // A running job's runner ends its command itself: let it, so that it does not end ours.
  await Promise.all(
    outcomes
      .filter(({ outcome }) => outcome?.outcome === "cancelling")
      .map(({ jobId }) => jobs.waitFor(jobId, RUNNER_STOP_WAIT_MS).catch(() => undefined)),
  );
  await destroyContainerAndWorkspace(env, key);
  return outcomes.filter(({ outcome }) => outcome !== undefined).length;
}

/** A sandbox idle past its TTL is destroyed, unless a job of its own still runs or waits. */
export async function expireIdleSandbox(env: Env, tenant: string, sandboxId: string): Promise<"expired" | "busy"> {
  const key = sandboxKey(tenant, sandboxId);
  if ((await activeJobIds(env.JOB_OUTPUT, key)).length > 0) return "busy";
  await destroyContainerAndWorkspace(env, key);
  return "expired";
}
