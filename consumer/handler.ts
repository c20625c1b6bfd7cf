/**
 * The Worker's queue handler. Jobs of one batch run concurrently across sandboxes and in
 * submission order within a sandbox; each message is acked or retried on its own, so one bad
 * message never replays the batch.
 */
import type { AppConfig } from "../config";
import type { SandboxFactory } from "../sandbox/select";
import { isTerminal, JobMessage } from "../schemas/job";
import { JobStore } from "../storage/jobStore";
import { r2Keys } from "../storage/layout";
import { finish, type ProcessDeps, processJob, refreshCache } from "./processJob";

/** Cloudflare gives a consumer invocation 15 minutes of wall clock; keep a margin for settling. */
const INVOCATION_BUDGET_MS = 14 * 60 * 1000;

export interface ConsumerDeps {
  config: AppConfig;
  sandboxFor: SandboxFactory;
  deadLetterQueue: string;
}

export async function handleJobBatch(batch: MessageBatch, env: Env, deps: ConsumerDeps): Promise<void> {
  const startedAt = Date.now();
  const store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, deps.config.retentionSeconds);
  const bySandbox = new Map<string, { message: Message; body: JobMessage }[]>();
  const cacheRefreshes: { message: Message; body: JobMessage }[] = [];
  const enqueue = async (body: JobMessage, delaySeconds: number) => {
    await env.JOB_QUEUE.send(body, { contentType: "json", delaySeconds });
  };

  for (const message of batch.messages) {
    const parsed = JobMessage.safeParse(message.body);
    if (!parsed.success) {
      // Retrying cannot fix a malformed message: record it and let it go.
      await recordMalformed(env.JOB_OUTPUT, batch.queue, message);
      message.ack();
      continue;
    }
    if (parsed.data.purpose === "cache") {
      cacheRefreshes.push({ message, body: parsed.data });
      continue;
    }
    const group = bySandbox.get(parsed.data.sandboxId) ?? [];
    group.push({ message, body: parsed.data });
    bySandbox.set(parsed.data.sandboxId, group);
  }

  if (batch.queue === deps.deadLetterQueue) {
    await Promise.all(
      [...bySandbox.values(), cacheRefreshes].flat().map(({ message, body }) => failUndeliverable(store, enqueue, message, body)),
    );
    return;
  }

  const refreshes = cacheRefreshes.map(async ({ message, body }) => {
    const current = await store.getVersioned(body.jobId);
    if (current && isTerminal(current.record.status)) await refreshCache({ store, enqueue }, current);
    message.ack();
  });

  const processDeps: ProcessDeps = {
    store,
    bucket: env.JOB_OUTPUT,
    sandboxFor: deps.sandboxFor,
    artifactLimits: { maxFiles: deps.config.artifactMaxFiles, maxTotalBytes: deps.config.artifactMaxTotalBytes },
    maxAttempts: deps.config.maxJobAttempts,
    enqueue,
    remainingMs: () => INVOCATION_BUDGET_MS - (Date.now() - startedAt),
  };

  await Promise.all(
    [...bySandbox.values()].map(async (group) => {
      // ULIDs sort by submission time, so this is submission order within the sandbox.
      group.sort((a, b) => (a.body.jobId < b.body.jobId ? -1 : 1));
      for (const { message, body } of group) {
        const disposition = await processJob(body.jobId, processDeps).catch((error: unknown) => {
          console.error(`job ${body.jobId}: storage error, will retry`, error);
          return { action: "retry", delaySeconds: 5, reason: "storage error" } as const;
        });
        if (disposition.action === "ack") message.ack();
        else message.retry({ delaySeconds: disposition.delaySeconds });
      }
    }),
  );
  await Promise.all(refreshes);
}

/** A message that used up its retries: its job must not stay queued or running forever. */
async function failUndeliverable(store: JobStore, enqueue: ProcessDeps["enqueue"], message: Message, body: JobMessage): Promise<void> {
  const current = await store.getVersioned(body.jobId);
  if (current && !isTerminal(current.record.status)) {
    const reason = current.record.error?.message ?? "the queue gave up delivering it";
    await finish({ store, enqueue }, current, {
      status: "failed",
      error: { code: "DELIVERY_FAILED", message: `Job could not be run after repeated attempts: ${reason}` },
    });
  }
  message.ack();
}

async function recordMalformed(bucket: R2Bucket, queue: string, message: Message): Promise<void> {
  console.error(`queue ${queue}: malformed message ${message.id} acked without running`);
  await bucket.put(
    r2Keys.malformedMessage(message.id),
    JSON.stringify({ queue, id: message.id, body: message.body, receivedAt: new Date().toISOString() }),
  );
}
