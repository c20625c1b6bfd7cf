/**
 * Helpers for the access tests: API keys written as `npm run keys` writes them, and requests
 * through the Worker's own fetch handler with settings as deployed (keys required) plus any
 * overrides a test needs (a quota, a tight rate limit).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import { newApiKey } from "../../../access/apiKeys";
import { JobView } from "../../../schemas/job";
import { kvKeys } from "../../../storage/layout";
import worker from "../../../worker";
import { BASE } from "../client";

export async function createKey(tenant: string): Promise<{ key: string; keyId: string; hash: string }> {
  const { key, stored } = await newApiKey(tenant, "test");
  await env.LOOKUPS.put(kvKeys.apiKeyId(stored.keyId), JSON.stringify(stored));
  await env.LOOKUPS.put(kvKeys.apiKey(stored.hash), JSON.stringify(stored));
  return { key, keyId: stored.keyId, hash: stored.hash };
}

export async function revokeKey(created: { keyId: string; hash: string }): Promise<void> {
  await env.LOOKUPS.delete(kvKeys.apiKey(created.hash));
  await env.LOOKUPS.delete(kvKeys.apiKeyId(created.keyId));
}

/** A request to the Worker as deployed (API keys required), with `vars` overriding settings. */
export async function deployed(path: string, init: RequestInit & { key?: string } = {}, vars: Partial<Env> = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  if (init.body !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`${BASE}${path}`, { ...init, headers }), { ...env, REQUIRE_API_KEYS: "1", ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export async function submitAs(key: string, sandboxId: string, job: Record<string, unknown>, vars: Partial<Env> = {}): Promise<JobView> {
  const response = await deployed(`/v1/sandboxes/${sandboxId}/jobs`, { method: "POST", key, body: JSON.stringify(job) }, vars);
  expect(response.status, await response.clone().text()).toBe(202);
  return JobView.parse(await response.json());
}

export async function finishedAs(key: string, jobId: string): Promise<JobView> {
  for (;;) {
    const response = await deployed(`/v1/jobs/${jobId}?wait=10`, { key });
    expect(response.status).toBe(200);
    const job = JobView.parse(await response.json());
    if (job.status !== "queued" && job.status !== "running") return job;
  }
}

let tenantCounter = 0;
/** A tenant ID no other test uses. */
export function uniqueTenant(prefix: string): string {
  tenantCounter++;
  return `${prefix}-${Date.now().toString(36)}-${tenantCounter}`;
}
