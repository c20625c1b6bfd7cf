/**
 * The test bindings enforce Cloudflare's limits that local simulation does not; these tests
 * prove the enforcement is active, so the other tests passing means the code respects them.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { countedEnv, OperationBudgetExceeded, operationBudget, withinBudget } from "../../platform/operationBudget";
import { JobRecord } from "../../schemas/job";
import { kvKeys } from "../../storage/layout";
import worker from "../../worker";
import { runJob, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";

describe("platform limits in the test environment", () => {
  it("KV rejects a second write to a key within a second", async () => {
    const key = `limit-probe-${crypto.randomUUID()}`;
    await env.LOOKUPS.put(key, "1");
    await expect(env.LOOKUPS.put(key, "2")).rejects.toThrow(/429/);
  });

  it("R2 rejects a second write to a key within a second, a delete included", async () => {
    const key = `limit-probe/${crypto.randomUUID()}`;
    await env.JOB_OUTPUT.put(key, "1");
    await expect(env.JOB_OUTPUT.put(key, "2")).rejects.toThrow(/429/);
    const other = `limit-probe/${crypto.randomUUID()}`;
    await env.JOB_OUTPUT.put(other, "1");
    await expect(env.JOB_OUTPUT.delete(other)).rejects.toThrow(/429/);
  });

  it("an invocation fails at its 1,001st storage, queue or Durable Object operation", async () => {
    const bindings = countedEnv(env);
    const probe = () => bindings.LOOKUPS.get("limit-probe");
    await withinBudget(operationBudget(env), "probe", async () => {
      for (let i = 0; i < 1000; i++) await probe();
      await expect(probe()).rejects.toThrow(OperationBudgetExceeded);
    });
    // Each invocation has its own count.
    await withinBudget(operationBudget(env), "next probe", () => probe());
  });

  it("counts a request's operations: a submit (three: admission, its record, the hand-over) fails over a budget of two", async () => {
    const request = (budget: string) => {
      const vars = { OPERATION_BUDGET: budget };
      return worker.fetch(
        new Request(`http://sandbox.test/v1/sandboxes/${uniqueSandbox("budget")}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: "run", command: "true" }),
        }),
        { ...env, ...vars },
        createExecutionContext(),
      );
    };
    expect((await request("2")).status).toBe(500);
    expect((await request("1000")).status).toBe(202);
  });

  it("the queue rejects a message over 128 KB", async () => {
    await expect(env.JOB_QUEUE.send({ padding: "x".repeat(130 * 1024) })).rejects.toThrow(/128 KB/);
  });

  it("a job that finishes within a second gets its final record into KV", async () => {
    const job = await runJob(uniqueSandbox("kv"), { type: "run", command: "echo quick" });
    expect(job.status).toBe("succeeded");
    // The API's submit writes nothing to KV, so the finish writes it at once (strict KV would
    // refuse a second write within the second).
    let cached: JobRecord | undefined;
    for (let i = 0; i < 60 && cached?.status !== "succeeded"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const text = await env.LOOKUPS.get(kvKeys.job(TEST_TENANT, job.id));
      cached = text ? JobRecord.parse(JSON.parse(text)) : undefined;
    }
    expect(cached?.status).toBe("succeeded");
    expect(cached?.finishedAt).toBe(job.finishedAt);
  });
});
