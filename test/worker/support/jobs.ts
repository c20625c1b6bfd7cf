/**
 * Test helpers that reach under the API: a job recorded in storage but handed to nobody (as if
 * its queue message and its handover were lost), a direct call of the Worker's queue handler
 * with a batch the test builds (real storage, real coordinators, real sandbox host), and SQL run
 * in a sandbox's coordinator (to stage what a crashed runner leaves behind).
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult, runInDurableObject } from "cloudflare:test";
import { monotonicFactory } from "ulid";
import { vi } from "vitest";
import { readConfig } from "../../../config";
import { coordinatorFor } from "../../../coordinator/stubs";
import { LOCAL_TENANT } from "../../../schemas/ids";
import { newJobRecord, RunJobRequest } from "../../../schemas/job";
import type { RunMessage } from "../../../schemas/queueMessages";
import { JobStore } from "../../../storage/jobStore";
import { sandboxKey } from "../../../storage/layout";
import worker from "../../../worker";

export const JOB_QUEUE = "artifact-sandbox-jobs";
export const DEAD_LETTER_QUEUE = "artifact-sandbox-jobs-dlq";

/** The tests' API calls carry no key: the local stack serves them as this tenant. */
export const TEST_TENANT = LOCAL_TENANT;

export function jobStore(tenant = TEST_TENANT): JobStore {
  return new JobStore(env.LOOKUPS, env.JOB_OUTPUT, readConfig(env).retentionSeconds, tenant);
}

/** Monotonic across this test file: a later call's job sorts after an earlier one's. */
const newJobId = monotonicFactory();

/**
 * Records a queued run job in R2 as the API does when its coordinator cannot be reached (its
 * request and a worklist entry in R2, nothing in KV), and hands it to nobody.
 * `ageMs` backdates it (the sweeper leaves young jobs to the queue).
 */
export async function recordOnly(sandboxId: string, job: Record<string, unknown>, ageMs = 0): Promise<RunMessage> {
  const request = RunJobRequest.parse({ type: "run", ...job });
  const now = Date.now() - ageMs;
  const record = newJobRecord(newJobId(now), { tenant: TEST_TENANT, sandboxId }, request, now, readConfig(env).retentionSeconds);
  await jobStore().saveSubmitted([record]);
  await jobStore().saveRequest(record.id, request);
  await jobStore().markUndelivered(record);
  return { kind: "run", jobId: record.id, sandboxKey: sandboxKey(TEST_TENANT, sandboxId) };
}

/** Runs `statement` in the job table of a sandbox's coordinator (of the test tenant). */
export async function inCoordinator(sandboxId: string, statement: string, ...params: (string | number)[]): Promise<number> {
  const stub = coordinatorFor(env.SANDBOX_COORDINATOR, sandboxKey(TEST_TENANT, sandboxId));
  return runInDurableObject(stub, (_instance, state) => state.storage.sql.exec(statement, ...params).rowsWritten);
}

/** Calls the Worker's queue handler with one batch; reports acks, retries and retry delays. */
export async function deliver(queue: string, bodies: unknown[]) {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, index) => ({ id: `msg-${crypto.randomUUID()}-${index}`, timestamp: new Date(), attempts: 1, body })),
  );
  // getQueueResult reports which messages were retried but not their delay: record it here.
  const retryDelays = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  const delays = retryDelays.flatMap((spy) => spy.mock.calls.map(([options]) => options?.delaySeconds));
  return { batch, delays, result: await getQueueResult(batch, ctx) };
}
