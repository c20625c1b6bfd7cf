/**
 * Wakes the jobs that need a job that just finished: their coordinators check their needs again
 * at once, instead of at their next periodic look (a lost wake-up costs that much, no more).
 */
import type { JobRecord } from "../schemas/job";
import { readBatch } from "../storage/batches";
import { sandboxKey } from "../storage/layout";
import { coordinatorFor } from "./sandboxCoordinator";

export async function wakeDependents(env: Env, record: JobRecord): Promise<void> {
  if (record.batchId === null) return;
  const manifest = await readBatch(env.JOB_OUTPUT, record.tenant, record.batchId);
  if (!manifest) return;
  const sandboxes = new Set(manifest.jobs.filter((job) => job.needs.includes(record.id)).map((job) => job.sandboxId));
  await Promise.all(
    [...sandboxes].map((sandboxId) =>
      coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(record.tenant, sandboxId))
        .needsSettled()
        .catch((error: unknown) => console.warn(`sandbox ${sandboxId}: could not wake jobs waiting for ${record.id}`, error)),
    ),
  );
}
