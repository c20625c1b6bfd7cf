/** Idempotency-Key on submits: a replay returns the original job, never a second run. */
import { describe, expect, it } from "vitest";
import { BatchView, JobPageView, JobView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, uniqueTenant } from "./tenants";

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
});
