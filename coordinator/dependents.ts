/**
 * Wakes the jobs that need a job that just finished: their coordinators check their needs again
 * at once, instead of at their next periodic look (a lost wake-up costs that much, no more).
 */
import type { JobRecord } from "../schemas/job";
import { type BatchManifest, readBatch } from "../storage/batches";
import { sandboxKey } from "../storage/layout";
import { coordinatorFor } from "./stubs";

/** Batch manifests read in one invocation, so a run of finishes reads each once. */
export type ManifestCache = Map<string, Promise<BatchManifest | undefined>>;

export async function wakeDependents(env: Env, record: JobRecord, manifests: ManifestCache = new Map()): Promise<void> {
  if (record.batchId === null) return;
  const key = `${record.tenant}/${record.batchId}`;
  let manifest = manifests.get(key);
  if (!manifest) {
    manifest = readBatch(env.JOB_OUTPUT, record.tenant, record.batchId);
    manifests.set(key, manifest);
  }
  const jobs = (await manifest)?.jobs ?? [];
  const sandboxes = new Set(jobs.filter((job) => job.needs.includes(record.id)).map((job) => job.sandboxId));
  await Promise.all(
    [...sandboxes].map((sandboxId) =>
      coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(record.tenant, sandboxId))
        .needsSettled()
        .catch((error: unknown) => console.warn(`sandbox ${sandboxId}: could not wake jobs waiting for ${record.id}`, error)),
    ),
  );
}
