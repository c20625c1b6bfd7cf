/**
 * The Worker's queue handler: the durable intake. It hands each run message's job to its
 * sandbox's coordinator (which runs it; a duplicate changes nothing) and acks at once, so no
 * batch is held open while commands run. It also copies finished records to KV when due, and
 * turns messages that used up their retries into failed jobs.
 */
import type { AppConfig } from "../config";
import { wakeDependents } from "../coordinator/dependents";
import { coordinatorFor } from "../coordinator/sandboxCoordinator";
import { finish } from "../runner/finish";
import { KvCacheScheduler } from "../runner/kvCache";
import { isTerminal } from "../schemas/job";
import { type CacheMessage, QueueMessage, type RunMessage } from "../schemas/queueMessages";
import { type JobStores, jobStores } from "../storage/jobStore";
import { r2Keys, tenantOf } from "../storage/layout";

export interface ConsumerDeps {
  config: AppConfig;
  deadLetterQueue: string;
}

interface Delivered<T> {
  message: Message;
  body: T;
}

export async function handleJobBatch(batch: MessageBatch, env: Env, deps: ConsumerDeps): Promise<void> {
  const stores = jobStores(env.JOB_STATUS, env.JOB_OUTPUT, deps.config.retentionSeconds);
  const kvCache = KvCacheScheduler.overQueue(stores, env.JOB_QUEUE);

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

  const handleRuns =
    batch.queue === deps.deadLetterQueue
      ? runs.map((run) => failUndeliverable(env, stores, kvCache, run))
      : groupBySandbox(runs).map((group) => deliverToCoordinator(env, group));
  await Promise.all([
    ...handleRuns,
    ...cacheRefreshes.map(async ({ message, body }) => {
      // A cache copy that could not be delivered loses nothing: R2 holds the record.
      if (batch.queue !== deps.deadLetterQueue) await kvCache.refresh(body);
      message.ack();
    }),
  ]);
  // Only the KV cache depends on this; R2 already holds every record, so a failure is logged, not retried.
  await kvCache.flush().catch((error: unknown) => console.warn("could not schedule KV cache copies", error));
}

function groupBySandbox(runs: Delivered<RunMessage>[]): Delivered<RunMessage>[][] {
  const groups = new Map<string, Delivered<RunMessage>[]>();
  for (const run of runs) groups.set(run.body.sandboxKey, [...(groups.get(run.body.sandboxKey) ?? []), run]);
  return [...groups.values()];
}

/** One call per sandbox; the coordinator orders its jobs by submission, whatever the delivery order. */
async function deliverToCoordinator(env: Env, group: Delivered<RunMessage>[]): Promise<void> {
  const first = group[0];
  if (!first) return;
  try {
    await coordinatorFor(env.SANDBOX_COORDINATOR, first.body.sandboxKey).enqueue(
      group.map(({ body }) => ({ jobId: body.jobId, sandboxKey: body.sandboxKey, kvWrittenAt: body.kvWrittenAt, request: body.request })),
    );
    for (const { message } of group) message.ack();
  } catch (error) {
    console.warn(`sandbox ${first.body.sandboxKey}: coordinator unreachable, retrying delivery`, error);
    for (const { message } of group) message.retry({ delaySeconds: 5 });
  }
}

/** A message that used up its retries: its job must not stay queued forever. */
async function failUndeliverable(env: Env, stores: JobStores, kvCache: KvCacheScheduler, { message, body }: Delivered<RunMessage>) {
  const coordinator = coordinatorFor(env.SANDBOX_COORDINATOR, body.sandboxKey);
  // The API handed the job over at submit: if the coordinator holds it, it will run. One that
  // cannot be asked now may hold it: ask again later rather than fail a job that would run.
  const held = await coordinator.holds(body.jobId).catch(() => undefined);
  if (held === undefined) {
    message.retry({ delaySeconds: 60 });
    return;
  }
  if (held) {
    message.ack();
    return;
  }
  const store = stores(tenantOf(body.sandboxKey));
  const current = await store.getVersioned(body.jobId);
  if (current && !isTerminal(current.record.status)) {
    const reason = current.record.error?.message ?? "the queue gave up delivering it";
    await finish(
      {
        store,
        kvCache,
        announceFinished: async (record) => {
          await coordinator.jobFinished(record.id);
          await wakeDependents(env, record);
        },
      },
      current,
      body,
      {
        status: "failed",
        error: { code: "DELIVERY_FAILED", message: `Job could not be run after repeated attempts: ${reason}` },
      },
    );
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
