/**
 * The sweeper: finds every unfinished job and drives it on, so none is stranded when a queue
 * message is lost (locally, a restart drops undelivered ones) or a coordinator's alarm is (locally,
 * alarms are not kept across a restart): a kick makes a coordinator that is not running its jobs
 * take them over at once, and publish what it finished. A job no coordinator knows is handed to
 * its sandbox's coordinator once it is old enough not to be on its way through the queue.
 * Deployed, a cron trigger runs it every minute; locally `npm run dev` calls the same handler.
 */
import { decodeTime } from "ulid";
import type { AppConfig } from "../config";
import { JobStore, listActivePage } from "../storage/jobStore";
import { r2Keys, tenantOf } from "../storage/layout";
import { coordinatorFor } from "./stubs";

/** A job this young may still be on its way to its coordinator through the queue. */
const IN_FLIGHT_GRACE_MS = 60_000;
/** Kept under the 1,000 operations an invocation may make. */
const OPERATION_BUDGET = 900;

export interface SweepReport {
  sandboxes: number;
  redelivered: number;
}

export async function sweep(env: Env, config: AppConfig): Promise<SweepReport> {
  const report: SweepReport = { sandboxes: 0, redelivered: 0 };
  let budget = OPERATION_BUDGET;
  let cursor: string | undefined;
  do {
    const page = await listActivePage(env.JOB_OUTPUT, cursor);
    budget -= 1;
    cursor = page.cursor;
    // A random order reaches every sandbox over a few runs when one run's budget does not.
    const sandboxes = [...page.bySandbox].sort(() => Math.random() - 0.5);
    for (const [key, jobIds] of sandboxes) {
      if (budget < 3) return report;
      const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, key);
      const store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, config.retentionSeconds, tenantOf(key));
      report.sandboxes++;
      const unknown = await coordinator.reconcile(jobIds);
      budget -= 1;
      for (const jobId of unknown) {
        if (budget < 3) return report;
        budget -= 2;
        const submitted = await store.readSubmitted(jobId);
        if (!submitted) {
          // A worklist entry without its job (its submit failed half-way): nothing to drive on.
          // Job IDs are ULIDs, so the ID tells whether that submit may still be under way.
          if (Date.now() - decodeTime(jobId) > IN_FLIGHT_GRACE_MS) await env.JOB_OUTPUT.delete(r2Keys.activeEntry(key, jobId));
          continue;
        }
        if (Date.now() - Date.parse(submitted.createdAt) < IN_FLIGHT_GRACE_MS) continue;
        // Lost on its way (its hand-over failed and its message went with a restart): its request
        // waits in R2 (a failed hand-over stores it); were it gone, the job fails REQUEST_MISSING.
        await coordinator.enqueue([{ submitted }]);
        report.redelivered++;
      }
    }
  } while (cursor && budget > 3);
  return report;
}
