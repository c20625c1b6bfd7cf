/**
 * The sweeper: drives on every unfinished job, so none is stranded when a coordinator's alarm is
 * lost (locally, alarms are not kept across a restart) or a job's queue message is (locally, a
 * restart drops undelivered ones). It kicks the coordinator of every sandbox whose tenant's
 * directory counts unfinished jobs (one not running its jobs takes them over at once, and
 * publishes what it finished), and hands each job that no coordinator took at submit and none
 * knows yet to its sandbox's coordinator, once it is old enough not to be on its way through the
 * queue. Deployed, a cron trigger runs it every minute; locally `npm run dev` calls the same handler.
 */
import { decodeTime } from "ulid";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import type { AppConfig } from "../config";
import { JobStore, listTenantsPage, listUndeliveredPage } from "../storage/jobStore";
import { r2Keys, sandboxKey, tenantOf } from "../storage/layout";
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
  const budget = { left: OPERATION_BUDGET };
  await handOverUndelivered(env, config, report, budget);
  await kickBusySandboxes(env, report, budget);
  return report;
}

/** Jobs no coordinator took at submit: handed to their sandbox's coordinator unless it knows them already. */
async function handOverUndelivered(env: Env, config: AppConfig, report: SweepReport, budget: { left: number }): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await listUndeliveredPage(env.JOB_OUTPUT, cursor);
    budget.left -= 1;
    cursor = page.cursor;
    for (const [key, jobIds] of page.bySandbox) {
      if (budget.left < 10) return;
      const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, key);
      const store = new JobStore(env.LOOKUPS, env.JOB_OUTPUT, config.retentionSeconds, tenantOf(key));
      const unknown = await coordinator.reconcile(jobIds);
      budget.left -= 2;
      for (const jobId of unknown) {
        if (budget.left < 10) return;
        budget.left -= 3;
        const submitted = await store.readSubmitted(jobId);
        if (!submitted) {
          // A worklist entry without its job (past its retention): nothing to drive on. Job IDs
          // are ULIDs, so the ID tells whether its submit may still be under way.
          if (Date.now() - decodeTime(jobId) > IN_FLIGHT_GRACE_MS) await env.JOB_OUTPUT.delete(r2Keys.undeliveredEntry(key, jobId));
          continue;
        }
        if (Date.now() - Date.parse(submitted.createdAt) < IN_FLIGHT_GRACE_MS) continue;
        // Lost on its way: its request waits in R2 (a failed hand-over stores it); were it gone,
        // the job would fail with REQUEST_MISSING rather than stay queued forever.
        await coordinator.enqueue([{ submitted, leftovers: true }]);
        report.redelivered++;
      }
    }
  } while (cursor && budget.left > 10);
}

/** Every sandbox with unfinished jobs has its coordinator kicked; a random order reaches all over a few runs. */
async function kickBusySandboxes(env: Env, report: SweepReport, budget: { left: number }): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await listTenantsPage(env.JOB_OUTPUT, cursor);
    budget.left -= 1;
    cursor = page.cursor;
    for (const tenant of page.tenants.sort(() => Math.random() - 0.5)) {
      if (budget.left < 3) return;
      const busy = await tenantDirectoryFor(env.TENANT_DIRECTORY, tenant).busySandboxes();
      budget.left -= 1;
      for (const sandboxId of busy.sort(() => Math.random() - 0.5)) {
        if (budget.left < 3) return;
        await coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(tenant, sandboxId)).reconcile([]);
        budget.left -= 2;
        report.sandboxes++;
      }
    }
  } while (cursor && budget.left > 3);
}
