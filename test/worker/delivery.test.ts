/**
 * At-least-once delivery: duplicates never run a job twice nor move its status backwards,
 * malformed messages are acked and recorded, sandbox faults retry with backoff and then fail,
 * and a dead-lettered job ends failed instead of staying queued forever.
 *
 * The consumer is driven both by the real local Queue and, where a test must control exactly
 * what one batch holds, by calling the Worker's queue handler with a built batch (real storage
 * and the real sandbox host either way).
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { r2Keys } from "../../storage/layout";
import worker from "../../worker";
import { api, getJob, runJob, submit, uniqueSandbox, waitForJob } from "./client";

const JOB_QUEUE = "artifact-sandbox-jobs";
const DEAD_LETTER_QUEUE = "artifact-sandbox-jobs-dlq";

async function deliver(queue: string, bodies: unknown[], testEnv: Env = env) {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, index) => ({ id: `msg-${crypto.randomUUID()}-${index}`, timestamp: new Date(), attempts: 1, body })),
  );
  // getQueueResult reports which messages were retried but not their delay: record it here.
  const retryDelays = batch.messages.map((message) => vi.spyOn(message, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, testEnv);
  const delays = retryDelays.flatMap((spy) => spy.mock.calls.map(([options]) => options?.delaySeconds));
  return { batch, delays, result: await getQueueResult(batch, ctx) };
}

async function stdoutOf(sandboxId: string, command: string): Promise<string> {
  const job = await runJob(sandboxId, { type: "run", command });
  return (await api(`/v1/jobs/${job.id}/stdout`)).text();
}

describe("at-least-once delivery", () => {
  it("does not run a finished job again when its message is delivered again through the queue", async () => {
    const sandbox = uniqueSandbox("dup");
    const job = await runJob(sandbox, { type: "run", command: "echo ran >> runs.txt" });
    await env.JOB_QUEUE.send({ kind: "run", jobId: job.id, sandboxId: sandbox, kvWrittenAt: Date.now() });
    // A later job in the same sandbox runs after the duplicate was handled.
    expect(await stdoutOf(sandbox, "cat runs.txt")).toBe("ran\n");
    const after = await getJob(job.id);
    expect(after).toEqual(job);
  });

  it("runs a job once when one batch holds its message twice", async () => {
    const { id, sandboxId, message } = await submitUnqueued(env);
    const { result } = await deliver(JOB_QUEUE, [message, message]);
    expect(result.explicitAcks).toHaveLength(2);
    expect(result.retryMessages).toEqual([]);
    const finished = await waitForJob(id);
    expect(finished.status).toBe("succeeded");
    expect(finished.attempts).toBe(1);
    expect(await stdoutOf(sandboxId, "cat once.txt")).toBe("once\n");
  });

  it("leaves a job that another consumer is running to it, retrying the duplicate later", async () => {
    const sandbox = uniqueSandbox("lease");
    const job = await submit(sandbox, { type: "run", command: "echo ran >> runs.txt; sleep 3" });
    while ((await getJob(job.id)).status === "queued") await new Promise((resolve) => setTimeout(resolve, 20));
    const { result, delays } = await deliver(JOB_QUEUE, [{ kind: "run", jobId: job.id, sandboxId: sandbox, kvWrittenAt: Date.now() }]);
    expect(result.retryMessages).toHaveLength(1);
    // Retried for when the running consumer's lease ends: the job's timeout plus a margin.
    expect(delays[0]).toBeGreaterThan(60);
    expect((await waitForJob(job.id)).attempts).toBe(1);
    expect(await stdoutOf(sandbox, "cat runs.txt")).toBe("ran\n");
  });

  it("acks and records a malformed message instead of retrying it forever", async () => {
    const { batch, result } = await deliver(JOB_QUEUE, [{ hello: "world" }]);
    expect(result.explicitAcks).toEqual([batch.messages[0]?.id]);
    const recorded = await env.JOB_OUTPUT.get(r2Keys.malformedMessage(batch.messages[0]?.id ?? ""));
    expect(await recorded?.json()).toMatchObject({ body: { hello: "world" } });
  });

  it("retries a sandbox fault with backoff, then fails the job with a code that says so", async () => {
    // Port 9 (discard) has no listener here: the sandbox host is "down".
    const hostDown: Env = { ...env, LOCAL_SANDBOX_URL: "http://127.0.0.1:9", MAX_JOB_ATTEMPTS: "3" };
    const target = await submitUnqueued(hostDown);
    const backoff: (number | undefined)[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const { result, delays } = await deliver(JOB_QUEUE, [target.message], hostDown);
      if (attempt < 3) {
        expect(result.retryMessages).toHaveLength(1);
        backoff.push(delays[0]);
        const requeued = await getJob(target.id);
        expect(requeued.status).toBe("queued");
        expect(requeued.error?.code).toBe("SANDBOX_UNAVAILABLE");
      } else {
        expect(result.explicitAcks).toHaveLength(1);
      }
    }
    expect(backoff).toEqual([2, 4]);
    const failed = await getJob(target.id);
    expect(failed.status).toBe("failed");
    expect(failed.attempts).toBe(3);
    expect(failed.error?.code).toBe("SANDBOX_UNAVAILABLE");
    expect(failed.error?.message).toMatch(/gave up after 3 attempts/);
  });

  it("does not fail a dead-lettered duplicate's job while another consumer still runs it", async () => {
    const sandbox = uniqueSandbox("dlq-lease");
    const job = await submit(sandbox, { type: "run", command: "sleep 3; echo done" });
    while ((await getJob(job.id)).status === "queued") await new Promise((resolve) => setTimeout(resolve, 20));
    const { result } = await deliver(DEAD_LETTER_QUEUE, [{ kind: "run", jobId: job.id, sandboxId: sandbox, kvWrittenAt: Date.now() }]);
    expect(result.retryMessages).toHaveLength(1);
    expect((await waitForJob(job.id)).status).toBe("succeeded");
  });

  it("fails a dead-lettered job instead of leaving it queued forever", async () => {
    const target = await submitUnqueued(env);
    const { result } = await deliver(DEAD_LETTER_QUEUE, [target.message]);
    expect(result.explicitAcks).toHaveLength(1);
    const failed = await getJob(target.id);
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("DELIVERY_FAILED");
  });
});

/**
 * A queued job whose message never reached the real queue, so only the test delivers it:
 * submitted through the API with a queue binding that keeps the message instead of sending it.
 */
async function submitUnqueued(testEnv: Env): Promise<{ id: string; sandboxId: string; message: unknown }> {
  const sandboxId = uniqueSandbox("manual");
  const kept: unknown[] = [];
  const metrics = { backlogCount: 0, backlogBytes: 0 };
  const accepted = { metadata: { metrics } };
  const keepingQueue: Queue = {
    metrics: async () => metrics,
    send: async (body) => {
      kept.push(body);
      return accepted;
    },
    sendBatch: async () => accepted,
  };
  const request = new Request(`http://sandbox.test/v1/sandboxes/${sandboxId}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "run", command: "echo once >> once.txt" }),
  });
  const response = await worker.fetch(request, { ...testEnv, JOB_QUEUE: keepingQueue }, createExecutionContext());
  expect(response.status).toBe(202);
  expect(kept).toHaveLength(1);
  return { id: (await response.json<{ id: string }>()).id, sandboxId, message: kept[0] };
}
