/**
 * The sweeper: finds every unfinished job and drives it on, so none is stranded when a queue
 * message is lost (locally, a restart drops undelivered ones) or a runner dies: a kick makes a
 * coordinator that is not running its jobs take them over at once.
 * Deployed, a cron trigger runs it every minute; locally `npm run dev` calls the same handler.
 */
import type { AppConfig } from "../config";
import { isTerminal } from "../schemas/job";
import { jobStores, listActiveEverywhere } from "../storage/jobStore";
import { tenantOf } from "../storage/layout";
import { coordinatorFor } from "./sandboxCoordinator";

/** A job this young may still be on its way to its coordinator through the queue. */
const IN_FLIGHT_GRACE_MS = 60_000;
/** Kept under the 1,000 subrequests a scheduled invocation may make. */
const SUBREQUEST_BUDGET = 900;

export interface SweepReport {
  sandboxes: number;
  jobsHeld: number;
  redelivered: number;
}

export async function sweep(env: Env, config: AppConfig): Promise<SweepReport> {
  const stores = jobStores(env.JOB_STATUS, env.JOB_OUTPUT, config.retentionSeconds);
  const report: SweepReport = { sandboxes: 0, jobsHeld: 0, redelivered: 0 };
  // Within an invocation's subrequest limit; a random order reaches every sandbox over a few runs.
  const active = [...(await listActiveEverywhere(env.JOB_OUTPUT))]
    .map((entry) => ({ entry, order: Math.random() }))
    .sort((a, b) => a.order - b.order)
    .map(({ entry }) => entry);
  let budget = SUBREQUEST_BUDGET - Math.ceil(active.length / 1000);
  for (const [sandboxKey, jobIds] of active) {
    if (budget < 2) break;
    const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey);
    const store = stores(tenantOf(sandboxKey));
    report.sandboxes++;
    const candidates = await coordinator.notHeld(jobIds);
    budget -= 2;
    for (const jobId of candidates) {
      if (budget < 2) break;
      budget -= 2;
      const current = await store.getVersioned(jobId);
      if (!current || isTerminal(current.record.status)) {
        if (current) await store.markInactive(current.record);
        continue;
      }
      if (Date.now() - Date.parse(current.record.createdAt) < IN_FLIGHT_GRACE_MS) continue;
      // Lost on its way (its hand-over failed and its message went with a restart): hand it over
      // again. Its request waits in R2 (a failed hand-over stores it); were it gone, the job would
      // fail with REQUEST_MISSING rather than stay queued forever.
      await coordinator.enqueue([{ jobId, sandboxKey, kvWrittenAt: 0 }]);
      report.redelivered++;
    }
    report.jobsHeld += await coordinator.kick();
  }
  return report;
}
