/** API keys: what each kind of missing or bad key gets, and that a revoked key stops working. */
import { describe, expect, it } from "vitest";
import { newApiKey } from "../../../access/apiKeys";
import { expectError } from "../client";
import { createKey, deployed, revokeKey, submitAs, uniqueTenant } from "./tenants";

const JOB = JSON.stringify({ type: "run", command: "true" });

describe("API keys", () => {
  it("answers 401 naming the header when no key is sent, with a WWW-Authenticate challenge", async () => {
    const response = await deployed("/v1/sandboxes/build/jobs", { method: "POST", body: JOB });
    expect(response.headers.get("www-authenticate")).toContain("Bearer");
    expect(await expectError(response, 401, "UNAUTHENTICATED")).toContain("Authorization: Bearer");
  });

  it("answers 400 to an Authorization header that is not a bearer token", async () => {
    const response = await deployed("/v1/sandboxes/build/jobs", {
      method: "POST",
      body: JOB,
      headers: { authorization: "Basic dXNlcjpwYXNz" },
    });
    await expectError(response, 400, "UNAUTHENTICATED");
  });

  it("answers 401 to a malformed key, a key with a bad checksum, and an unknown key", async () => {
    const { key } = await createKey(uniqueTenant("acme"));
    const badChecksum = `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
    const unknown = await newApiKey("acme", "never stored");
    for (const candidate of ["as_live_short", badChecksum, unknown.key]) {
      await expectError(await deployed("/v1/sandboxes/build/jobs", { method: "POST", body: JOB, key: candidate }), 401, "UNAUTHENTICATED");
    }
  });

  it("lets a valid key in as its tenant, and refuses it once revoked", async () => {
    const tenant = uniqueTenant("acme");
    const created = await createKey(tenant);
    const job = await submitAs(created.key, "build", { type: "run", command: "true" });
    expect(job.tenant).toBe(tenant);
    await revokeKey(created);
    // This isolate trusts a key it verified for API_KEY_CACHE_SECONDS (5 s), then asks KV again.
    expect((await deployed(`/v1/jobs/${job.id}`, { key: created.key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    await expectError(await deployed(`/v1/jobs/${job.id}`, { key: created.key }), 401, "UNAUTHENTICATED");
  });

  it("keeps the OpenAPI document public", async () => {
    expect((await deployed("/v1/openapi.json")).status).toBe(200);
  });
});
