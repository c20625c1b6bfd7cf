/** Submitting a batch over the API and waiting until every job of it has finished. */
import { expect } from "vitest";
import { BatchView, type JobView } from "../../../schemas/job";
import { api, postJson } from "../client";

export async function submitPipeline(jobs: unknown[]): Promise<BatchView> {
  const response = await postJson("/v1/jobs", { jobs });
  expect(response.status, await response.clone().text()).toBe(202);
  return BatchView.parse(await response.json());
}

export async function finishedBatch(batchId: string): Promise<BatchView> {
  for (;;) {
    const batch = BatchView.parse(await (await api(`/v1/batches/${batchId}?wait=20`)).json());
    if (batch.status === "succeeded" || batch.status === "failed") return batch;
  }
}

export function byName(batch: BatchView): Record<string, JobView> {
  return Object.fromEntries(batch.jobs.map((job) => [job.name ?? job.id, job]));
}

export function statuses(batch: BatchView): Record<string, string> {
  return Object.fromEntries(batch.jobs.map((job) => [job.name ?? job.id, job.status]));
}

export const run = (command: string, extra: Record<string, unknown> = {}) => ({ type: "run", command, ...extra });
