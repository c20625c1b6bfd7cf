/**
 * The Worker's queue handler: the durable intake of jobs whose hand-over at submit failed. It
 * hands each message's job to its sandbox's coordinator (which runs it; a duplicate changes
 * nothing) and acks at once, so no batch is held open while commands run. A message that used up
 * its retries has its job ended DELIVERY_FAILED by that coordinator, unless it holds the job.
 */
import type { AppConfig } from "../config";
import { coordinatorFor } from "../coordinator/stubs";
import type { JobRecord } from "../schemas/job";
import { QueueMessage, type RunMessage } from "../schemas/queueMessages";
import { JobStore } from "../storage/jobStore";
import { r2Keys, tenantOf } from "../storage/layout";

export interface ConsumerDeps {
  config: AppConfig;
  deadLetterQueue: string;
}

interface Delivered {
  message: Message;
  body: RunMessage;
}

export async function handleJobBatch(batch: MessageBatch, env: Env, deps: ConsumerDeps): Promise<void> {
  const runs: Delivered[] = [];
  for (const message of batch.messages) {
    const parsed = QueueMessage.safeParse(message.body);
    if (parsed.success) {
      runs.push({ message, body: parsed.data });
    } else {
      // Retrying cannot fix a malformed message: record it and let it go.
      await recordMalformed(env.JOB_OUTPUT, batch.queue, message);
      message.ack();
    }
  }
  const readSubmitted = (body: RunMessage) =>
    new JobStore(env.LOOKUPS, env.JOB_OUTPUT, deps.config.retentionSeconds, tenantOf(body.sandboxKey)).readSubmitted(body.jobId);
  if (batch.queue === deps.deadLetterQueue) {
    await Promise.all(runs.map((run) => failUndeliverable(env, run, readSubmitted)));
  } else {
    await Promise.all(groupBySandbox(runs).map((group) => deliverToCoordinator(env, group, readSubmitted)));
  }
}

function groupBySandbox(runs: Delivered[]): Delivered[][] {
  const groups = new Map<string, Delivered[]>();
  for (const run of runs) groups.set(run.body.sandboxKey, [...(groups.get(run.body.sandboxKey) ?? []), run]);
  return [...groups.values()];
}

type ReadSubmitted = (body: RunMessage) => Promise<JobRecord | undefined>;

/** One call per sandbox; the coordinator orders its jobs by submission, whatever the delivery order. */
async function deliverToCoordinator(env: Env, group: Delivered[], readSubmitted: ReadSubmitted): Promise<void> {
  const first = group[0];
  if (!first) return;
  try {
    const jobs = await Promise.all(
      group.map(async ({ body }) => {
        const submitted = await readSubmitted(body);
        // Its request and worklist entry wait in R2 (a job is queued only when its hand-over failed).
        return submitted && { submitted, leftovers: true, ...(body.request ? { request: body.request } : {}) };
      }),
    );
    // A job whose record is gone (past its retention) has nothing left to run.
    await coordinatorFor(env.SANDBOX_COORDINATOR, first.body.sandboxKey).enqueue(jobs.flatMap((job) => job ?? []));
    for (const { message } of group) message.ack();
  } catch (error) {
    console.warn(`sandbox ${first.body.sandboxKey}: coordinator unreachable, retrying delivery`, error);
    for (const { message } of group) message.retry({ delaySeconds: 5 });
  }
}

/** A message that used up its retries: its job must not stay queued forever. */
async function failUndeliverable(env: Env, { message, body }: Delivered, readSubmitted: ReadSubmitted): Promise<void> {
  try {
    const submitted = await readSubmitted(body);
    if (submitted) {
      await coordinatorFor(env.SANDBOX_COORDINATOR, body.sandboxKey).failUndelivered(submitted, "the queue gave up delivering it");
    }
    message.ack();
  } catch (error) {
    // The coordinator may hold the job and could not be asked: ask again later rather than guess.
    console.warn(`job ${body.jobId}: dead letter not handled yet`, error);
    message.retry({ delaySeconds: 60 });
  }
}

async function recordMalformed(bucket: R2Bucket, queue: string, message: Message): Promise<void> {
  console.error(`queue ${queue}: malformed message ${message.id} acked without running`);
  await bucket.put(
    r2Keys.malformedMessage(message.id),
    JSON.stringify({ queue, id: message.id, body: message.body, receivedAt: new Date().toISOString() }),
  );
}
