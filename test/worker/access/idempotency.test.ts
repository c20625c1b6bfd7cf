/** Idempotency-Key on submits: a replay returns the original job, never a second run. */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { tenantDirectoryFor } from "../../../access/tenantDirectory";
import { BatchView, JobPageView, JobView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

/**
 * The coordinators' namespace as a request sees it when it dies after handing jobs to `handed`
 * sandboxes: the real coordinators take those, and every hand-over after them never returns.
 */
function diesAfterHandOvers(handed: number): Env["SANDBOX_COORDINATOR"] {
  const namespace = env.SANDBOX_COORDINATOR;
  let handOvers = 0;
  return new Proxy(namespace, {
    get(target, property) {
      if (property !== "get") return Reflect.get(target, property).bind(target);
      return (id: DurableObjectId) => {
        const stub = target.get(id);
        return new Proxy(stub, {
          get(stubTarget, stubProperty) {
            if (stubProperty === "enqueue" && ++handOvers > handed) return () => new Promise(() => undefined);
            return Reflect.get(stubTarget, stubProperty);
          },
        });
      };
    },
  });
}

function submitWithKey(key: string, idempotencyKey: string, body: unknown, path = "/v1/sandboxes/idem/jobs"): Promise<Response> {
  return deployed(path, { method: "POST", key, body: JSON.stringify(body), headers: { "idempotency-key": idempotencyKey } });
}

describe("idempotent submits", () => {
  it("replays the original job for the same key and body, and refuses the key with another body", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const job = { type: "run", command: "echo once >> runs.txt" };
    const first = await submitWithKey(key, "deploy-1", job);
    expect(first.status).toBe(202);
    const replay = await submitWithKey(key, "deploy-1", job);
    expect(replay.status).toBe(202);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(JobView.parse(await replay.json()).id).toBe(JobView.parse(await first.json()).id);
    await expectError(await submitWithKey(key, "deploy-1", { ...job, command: "echo other" }), 422, "IDEMPOTENCY_KEY_REUSED");
  });

  it("creates one job when identical requests arrive at once", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const body = { type: "run", command: "true" };
    const responses = await Promise.all(Array.from({ length: 6 }, () => submitWithKey(key, "burst", body, "/v1/sandboxes/burst/jobs")));
    const accepted = responses.filter((response) => response.status === 202);
    // The rest were told the first is still being accepted.
    for (const response of responses.filter((candidate) => candidate.status !== 202)) {
      await expectError(response, 409, "IDEMPOTENCY_KEY_IN_USE");
    }
    const ids = new Set(await Promise.all(accepted.map(async (response) => JobView.parse(await response.json()).id)));
    expect(ids.size).toBe(1);
    const listed = JobPageView.parse(await (await deployed("/v1/sandboxes/burst/jobs", { key })).json());
    expect(listed.jobs).toHaveLength(1);
  });

  it("scopes keys per tenant, and replays batches too", async () => {
    const acme = await createKey(uniqueTenant("acme"));
    const globex = await createKey(uniqueTenant("globex"));
    const batch = {
      jobs: [
        { sandboxId: "b", job: { type: "run", command: "true" } },
        { sandboxId: "c", job: { type: "run", command: "true" } },
      ],
    };
    const first = BatchView.parse(await (await submitWithKey(acme.key, "same-key", batch, "/v1/jobs")).json());
    const again = BatchView.parse(await (await submitWithKey(acme.key, "same-key", batch, "/v1/jobs")).json());
    expect(again.jobs.map((job) => job.id)).toEqual(first.jobs.map((job) => job.id));
    const otherTenant = BatchView.parse(await (await submitWithKey(globex.key, "same-key", batch, "/v1/jobs")).json());
    expect(otherTenant.jobs.map((job) => job.id)).not.toEqual(first.jobs.map((job) => job.id));
  });

  it("runs each job once when a submit that died after handing some jobs over is retried", async () => {
    const tenant = uniqueTenant("acme");
    const { key } = await createKey(tenant);
    const sandboxes = ["left-a", "left-b", "left-c"];
    const batch = { jobs: sandboxes.map((sandboxId) => ({ sandboxId, job: { type: "run", command: "echo ran >> runs.txt" } })) };
    const init = { method: "POST", key, body: JSON.stringify(batch), headers: { "idempotency-key": "dies-midway" } };

    // The first request hands two sandboxes their jobs, then dies (it never answers).
    void deployed("/v1/jobs", init, { SANDBOX_COORDINATOR: diesAfterHandOvers(2) });
    const handed = new Map<string, string>();
    for (const sandboxId of sandboxes.slice(0, 2)) {
      let listed: JobView[] = [];
      while (listed.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        listed = JobPageView.parse(await (await deployed(`/v1/sandboxes/${sandboxId}/jobs`, { key })).json()).jobs;
      }
      const [job] = listed;
      if (!job) throw new Error("listed no job");
      expect((await finishedAs(key, job.id)).status).toBe("succeeded");
      handed.set(sandboxId, job.id);
    }

    // While the dead request's claim lasts, a retry is told to wait; then the claim lapses.
    await expectError(await deployed("/v1/jobs", init), 409, "IDEMPOTENCY_KEY_IN_USE");
    await runInDurableObject(tenantDirectoryFor(env.TENANT_DIRECTORY, tenant), (_instance, state) => {
      state.storage.sql.exec("UPDATE idempotency_keys SET created_at = created_at - 61000");
    });

    const retry = await deployed("/v1/jobs", init);
    expect(retry.status, await retry.clone().text()).toBe(202);
    const retried = BatchView.parse(await retry.json());
    expect(retried.jobs.slice(0, 2).map((job) => job.id)).toEqual([handed.get("left-a"), handed.get("left-b")]);
    for (const job of retried.jobs) expect((await finishedAs(key, job.id)).status).toBe("succeeded");
    for (const sandboxId of sandboxes) {
      const listed = JobPageView.parse(await (await deployed(`/v1/sandboxes/${sandboxId}/jobs`, { key })).json()).jobs;
      expect(listed.map((job) => job.id)).toEqual([retried.jobs[sandboxes.indexOf(sandboxId)]?.id]);
      const count = await finishedAs(key, (await submitAs(key, sandboxId, { type: "run", command: "wc -l < runs.txt" })).id);
      expect((await (await deployed(`/v1/jobs/${count.id}/stdout`, { key })).text()).trim(), sandboxId).toBe("1");
    }
  }, 60_000);
});
