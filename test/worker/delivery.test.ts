/**
 * At-least-once delivery: the queue consumer hands every job to its sandbox's coordinator and
 * acks; duplicates never run a job twice, malformed messages are acked and recorded, and a
 * dead-lettered job ends failed instead of staying queued forever, unless its coordinator
 * holds it (then it runs).
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { JobView } from "../../schemas/job";
import { r2Keys, sandboxKey } from "../../storage/layout";
import worker from "../../worker";
import { api, getJob, runJob, submit, uniqueSandbox, waitForJob } from "./client";
import { DEAD_LETTER_QUEUE, deliver, JOB_QUEUE, recordOnly, TEST_TENANT } from "./support/jobs";

async function stdoutOf(sandboxId: string, command: string): Promise<string> {
  const job = await runJob(sandboxId, { type: "run", command });
  return (await api(`/v1/jobs/${job.id}/stdout`)).text();
}

describe("at-least-once delivery", () => {
  it("does not run a finished job again when its message is delivered again through the queue", async () => {
    const sandbox = uniqueSandbox("dup");
    const job = await runJob(sandbox, { type: "run", command: "echo ran >> runs.txt" });
    // Delivered through the queue handler itself, which returns once it has handled the duplicate.
    const { result } = await deliver(JOB_QUEUE, [{ kind: "run", jobId: job.id, sandboxKey: sandboxKey(TEST_TENANT, sandbox) }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await stdoutOf(sandbox, "cat runs.txt")).toBe("ran\n");
    // The same record; only the download URLs' signatures (fresh on each read) may differ.
    const unsigned = (view: unknown): unknown =>
      JSON.parse(
        JSON.stringify(view, (key, value: unknown) =>
          key === "urlsExpireAt" ? undefined : typeof value === "string" ? value.replace(/\?tenant=.*$/, "") : value,
        ),
      );
    expect(unsigned(await getJob(job.id))).toEqual(unsigned(job));
  });

  it("runs a job once when one batch holds its message twice", async () => {
    const sandbox = uniqueSandbox("twice");
    const message = await recordOnly(sandbox, { command: "echo once >> once.txt" });
    const { result } = await deliver(JOB_QUEUE, [message, message]);
    expect(result.explicitAcks).toHaveLength(2);
    expect(result.retryMessages).toEqual([]);
    const finished = await waitForJob(message.jobId);
    expect(finished.status).toBe("succeeded");
    expect(finished.attempts).toBe(1);
    expect(await stdoutOf(sandbox, "cat once.txt")).toBe("once\n");
  });

  it("acks a duplicate of a running job at once, and the job runs once", async () => {
    const sandbox = uniqueSandbox("running-dup");
    const job = await submit(sandbox, { type: "run", command: "echo ran >> runs.txt; sleep 2" });
    while ((await getJob(job.id)).status === "queued") await new Promise((resolve) => setTimeout(resolve, 20));
    const { result } = await deliver(JOB_QUEUE, [{ kind: "run", jobId: job.id, sandboxKey: sandboxKey(TEST_TENANT, sandbox) }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect((await waitForJob(job.id)).attempts).toBe(1);
    expect(await stdoutOf(sandbox, "cat runs.txt")).toBe("ran\n");
  });

  it("runs a job its coordinator took although the queue refused its message", async () => {
    const refusing: Queue = {
      metrics: async () => ({ backlogCount: 0, backlogBytes: 0 }),
      send: async () => {
        throw new Error("queue unavailable");
      },
      sendBatch: async () => {
        throw new Error("queue unavailable");
      },
    };
    const sandbox = uniqueSandbox("queue-down");
    const request = new Request(`http://sandbox.test/v1/sandboxes/${sandbox}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "run", command: "echo ran" }),
    });
    const response = await worker.fetch(request, { ...env, JOB_QUEUE: refusing }, createExecutionContext());
    expect(response.status).toBe(202);
    const job = await waitForJob(JobView.parse(await response.json()).id);
    expect(job.status).toBe("succeeded");
  });

  it("acks and records a malformed message instead of retrying it forever", async () => {
    const { batch, result } = await deliver(JOB_QUEUE, [{ hello: "world" }]);
    expect(result.explicitAcks).toEqual([batch.messages[0]?.id]);
    const recorded = await env.JOB_OUTPUT.get(r2Keys.malformedMessage(batch.messages[0]?.id ?? ""));
    expect(await recorded?.json()).toMatchObject({ body: { hello: "world" } });
  });

  it("lets a dead-lettered job run when its coordinator holds it", async () => {
    const sandbox = uniqueSandbox("dlq-held");
    const job = await submit(sandbox, { type: "run", command: "sleep 1; echo done" });
    const { result } = await deliver(DEAD_LETTER_QUEUE, [{ kind: "run", jobId: job.id, sandboxKey: sandboxKey(TEST_TENANT, sandbox) }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect((await waitForJob(job.id)).status).toBe("succeeded");
  });

  it("fails a dead-lettered job nobody holds instead of leaving it queued forever", async () => {
    const message = await recordOnly(uniqueSandbox("dlq-lost"), { command: "true" });
    const { result } = await deliver(DEAD_LETTER_QUEUE, [message]);
    expect(result.explicitAcks).toHaveLength(1);
    const failed = await getJob(message.jobId);
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("DELIVERY_FAILED");
  });
});
