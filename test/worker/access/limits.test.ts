/** Rate limits and quotas: 429s that say which limit was hit and when to come back. */
import { env } from "cloudflare:test";
import { packTar } from "modern-tar";
import { describe, expect, it } from "vitest";
import { JobView } from "../../../schemas/job";
import { expectError } from "../client";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./tenants";

/** The tight limiter vitest.config.ts adds beside the configured one (not in wrangler.jsonc, so not in Env). */
function tightRateLimit(): RateLimit {
  const binding: unknown = Reflect.get(env, "TIGHT_RATE_LIMIT");
  const isRateLimit = (value: unknown): value is RateLimit =>
    typeof value === "object" && value !== null && "limit" in value && typeof value.limit === "function";
  if (!isRateLimit(binding)) throw new Error("vitest.config.ts defines no TIGHT_RATE_LIMIT binding");
  return binding;
}

describe("rate limits and quotas", () => {
  it("answers 429 with Retry-After once a tenant passes its request rate, without slowing another tenant", async () => {
    const busy = await createKey(uniqueTenant("busy"));
    const calm = await createKey(uniqueTenant("calm"));
    // The configured limit swapped for one of 3 requests a minute.
    const tight = { TENANT_RATE_LIMIT: tightRateLimit() };
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await deployed("/v1/sandboxes", { key: busy.key }, tight)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await deployed("/v1/sandboxes", { key: busy.key }, tight);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    await expectError(refused, 429, "RATE_LIMITED");
    expect((await deployed("/v1/sandboxes", { key: calm.key }, tight)).status).toBe(200);
  });

  it("refuses a sandbox beyond the live-sandbox quota, naming it", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const quota = { MAX_SANDBOXES_PER_TENANT: "2" };
    await submitAs(key, "one", { type: "run", command: "true" }, quota);
    await submitAs(key, "two", { type: "run", command: "true" }, quota);
    // More jobs in a known sandbox are fine; a third sandbox is not.
    await submitAs(key, "one", { type: "run", command: "true" }, quota);
    const third = await deployed(
      "/v1/sandboxes/three/jobs",
      { method: "POST", key, body: JSON.stringify({ type: "run", command: "true" }) },
      quota,
    );
    expect(await expectError(third, 429, "QUOTA_EXCEEDED")).toContain("MAX_SANDBOXES_PER_TENANT");
  });

  it("stores nothing of a batch its quota refuses", async () => {
    const tenant = uniqueTenant("acme");
    const { key } = await createKey(tenant);
    const jobs = ["one", "two", "three"].map((sandboxId) => ({ sandboxId, job: { type: "run", command: "true" } }));
    const refused = await deployed("/v1/jobs", { method: "POST", key, body: JSON.stringify({ jobs }) }, { MAX_SANDBOXES_PER_TENANT: "2" });
    // It says how far over the batch would go, not only what the tenant has.
    expect(await expectError(refused, 429, "QUOTA_EXCEEDED")).toContain(
      "MAX_SANDBOXES_PER_TENANT: the tenant has 0 live sandboxes of 2, and this submit would add 3 new ones",
    );
    // Neither its manifest, nor its request, nor its jobs' records.
    const stored = await env.JOB_OUTPUT.list({ prefix: `tenants/${tenant}/` });
    expect(stored.objects.map((object) => object.key)).toEqual([]);
  });

  it("counts an upload as the one job it is against the queued-plus-running quota", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const tar = await packTar([{ header: { name: "a.txt", size: 2, type: "file" }, body: "a\n" }]);
    const body = await new Response(new Blob([tar]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    const upload = await deployed(
      "/v1/sandboxes/up/archive",
      { method: "PUT", key, body, headers: { "content-type": "application/gzip", "content-length": String(body.byteLength) } },
      { MAX_ACTIVE_JOBS_PER_TENANT: "1" },
    );
    expect(upload.status, await upload.clone().text()).toBe(202);
    expect((await finishedAs(key, JobView.parse(await upload.json()).id)).status).toBe("succeeded");
  });

  it("refuses jobs beyond the queued-plus-running quota, naming it", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const quota = { MAX_ACTIVE_JOBS_PER_TENANT: "2" };
    await submitAs(key, "slow", { type: "run", command: "sleep 3" }, quota);
    await submitAs(key, "slow", { type: "run", command: "sleep 3" }, quota);
    const third = await deployed(
      "/v1/sandboxes/slow/jobs",
      { method: "POST", key, body: JSON.stringify({ type: "run", command: "true" }) },
      quota,
    );
    expect(await expectError(third, 429, "QUOTA_EXCEEDED")).toContain("MAX_ACTIVE_JOBS_PER_TENANT");
  });
});
