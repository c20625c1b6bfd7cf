/**
 * The Worker's queue handler. Jobs of one batch run concurrently across sandboxes and in
 * submission order within a sandbox; each message is acked or retried on its own, so one bad
 * message never replays the batch.
 */
import type { AppConfig } from "../config";
import type { SandboxFactory } from "../sandbox/select";
import { isTerminal, type JobRecord } from "../schemas/job";
import { type CacheMessage, QueueMessage, type RunMessage } from "../schemas/queueMessages";
import { JobStore } from "../storage/jobStore";
import { jobWatchFor } from "../storage/jobWatch";
import { r2Keys } from "../storage/layout";
import { KvCacheScheduler } from "./kvCache";
import { finish, leaseRemainingMs, type ProcessDeps, processJob } from "./processJob";

/** Cloudflare gives a consumer invocation 15 minutes of wall clock; keep a margin for settling. */
const INVOCATION_BUDGET_MS = 14 * 60 * 1000;

export interface ConsumerDeps {
  config: AppConfig;
  sandboxFor: SandboxFactory;
  deadLetterQueue: string;
}

interface Delivered<T> {
  message: Message;
  body: T;
}

export async function handleJobBatch(batch: MessageBatch, env: Env, deps: ConsumerDeps): Promise<void> {
  const startedAt = Date.now();
  const store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, deps.config.retentionSeconds);
  const kvCache = new KvCacheScheduler(store, async (message: CacheMessage, delaySeconds) => {
    await env.JOB_QUEUE.send(message, { contentType: "json", delaySeconds });
  });

  const announceFinished = async (record: JobRecord) => {
    await jobWatchFor(env.JOB_WATCH, record.sandboxId)
      .jobFinished(record.id)
      .catch((error: unknown) => console.warn(`job ${record.id}: could not wake waiters`, error));
  };
  const watchForCancel = (record: JobRecord, timeoutMs: number) =>
    jobWatchFor(env.JOB_WATCH, record.sandboxId)
      .waitForCancel(record.id, timeoutMs)
      .catch(() => false);

  const runs: Delivered<RunMessage>[] = [];
  const cacheRefreshes: Delivered<CacheMessage>[] = [];
  for (const message of batch.messages) {
    const parsed = QueueMessage.safeParse(message.body);
    if (!parsed.success) {
      // Retrying cannot fix a malformed message: record it and let it go.
      await recordMalformed(env.JOB_OUTPUT, batch.queue, message);
      message.ack();
    } else if (parsed.data.kind === "cache") {
      cacheRefreshes.push({ message, body: parsed.data });
    } else {
      runs.push({ message, body: parsed.data });
    }
  }

  if (batch.queue === deps.deadLetterQueue) {
    await Promise.all(runs.map((run) => failUndeliverable({ store, kvCache, announceFinished }, run)));
    // A cache copy that could not be delivered loses nothing: R2 holds the record.
    for (const { message } of cacheRefreshes) message.ack();
  } else {
    const processDeps: ProcessDeps = {
      store,
      bucket: env.JOB_OUTPUT,
      sandboxFor: deps.sandboxFor,
      artifactLimits: { maxFiles: deps.config.artifactMaxFiles, maxTotalBytes: deps.config.artifactMaxTotalBytes },
      maxAttempts: deps.config.maxJobAttempts,
      kvCache,
      announceFinished,
      watchForCancel,
      remainingMs: () => INVOCATION_BUDGET_MS - (Date.now() - startedAt),
    };
    await Promise.all([
      ...groupBySandbox(runs).map((group) => runInOrder(group, processDeps)),
      ...cacheRefreshes.map(async ({ message, body }) => {
        await kvCache.refresh(body);
        message.ack();
      }),
    ]);
  }
  // Only the KV cache depends on this; R2 already holds every record, so a failure is logged, not retried.
  await kvCache.flush().catch((error: unknown) => console.warn("could not schedule KV cache copies", error));
}

function groupBySandbox(runs: Delivered<RunMessage>[]): Delivered<RunMessage>[][] {
  const groups = new Map<string, Delivered<RunMessage>[]>();
  for (const run of runs) {
    const group = groups.get(run.body.sandboxId) ?? [];
    group.push(run);
    groups.set(run.body.sandboxId, group);
  }
  // ULIDs sort by submission time, so this is submission order within each sandbox.
  return [...groups.values()].map((group) => group.sort((a, b) => (a.body.jobId < b.body.jobId ? -1 : 1)));
}

async function runInOrder(group: Delivered<RunMessage>[], deps: ProcessDeps): Promise<void> {
  for (const { message, body } of group) {
    const disposition = await processJob(body, deps).catch((error: unknown) => {
      console.error(`job ${body.jobId}: storage error, will retry`, error);
      return { action: "retry", delaySeconds: 5, reason: "storage error" } as const;
    });
    if (disposition.action === "ack") message.ack();
    else message.retry({ delaySeconds: disposition.delaySeconds });
  }
}

/** A message that used up its retries: its job must not stay queued or running forever. */
async function failUndeliverable(
  deps: Pick<ProcessDeps, "store" | "kvCache" | "announceFinished">,
  { message, body }: Delivered<RunMessage>,
): Promise<void> {
  const current = await deps.store.getVersioned(body.jobId);
  const leaseMs = current ? leaseRemainingMs(current.record) : 0;
  if (leaseMs > 0) {
    // A duplicate ran out of retries while another consumer still runs the job: let that one finish.
    message.retry({ delaySeconds: Math.ceil(leaseMs / 1000) });
    return;
  }
  if (current && !isTerminal(current.record.status)) {
    const reason = current.record.error?.message ?? "the queue gave up delivering it";
    await finish(deps, current, body, {
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
