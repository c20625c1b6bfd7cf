/**
 * Ending a sandbox: its unfinished jobs cancelled, its container stopped with its workspace
 * emptied, its saved workspace deleted. What `DELETE /v1/sandboxes/{id}` does at once and the
 * tenant's directory does to a sandbox idle past SANDBOX_IDLE_TTL_SECONDS. Job records stay
 * until their retention ends, each read by its ID, but leave the sandbox's list.
 */
import { coordinatorFor } from "../coordinator/stubs";
import { sandboxFactory } from "../sandbox/select";
import { r2Keys, sandboxKey } from "../storage/layout";

/** How long a delete waits for its cancelled running jobs' runners to stop them. */
const RUNNER_STOP_WAIT_MS = 15_000;

async function destroyContainerAndWorkspace(env: Env, key: string): Promise<void> {
  await sandboxFactory(env)(key).destroy();
  await env.JOB_OUTPUT.delete(r2Keys.workspaceSnapshot(key));
}

/**
 * Cancels the sandbox's unfinished jobs (one call to its coordinator, however many there are)
 * and destroys its container and workspace; returns how many jobs it cancelled.
 */
export async function destroySandbox(env: Env, tenant: string, sandboxId: string): Promise<number> {
  const key = sandboxKey(tenant, sandboxId);
  const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, key);
  const { cancelled, running } = await coordinator.cancelAll();
  // A running job's runner ends its command itself: let it, so that it does not end ours.
  if (running.length > 0) await coordinator.waitForJobs(running, RUNNER_STOP_WAIT_MS);
  await destroyContainerAndWorkspace(env, key);
  await coordinator.unlistJobs();
  return cancelled;
}

/** A sandbox idle past its TTL is destroyed, unless a job of its own still runs or waits. */
export async function expireIdleSandbox(env: Env, tenant: string, sandboxId: string): Promise<"expired" | "busy"> {
  const key = sandboxKey(tenant, sandboxId);
  const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, key);
  if ((await coordinator.unfinishedCount()) > 0) return "busy";
  await destroyContainerAndWorkspace(env, key);
  await coordinator.unlistJobs();
  return "expired";
}
