/**
 * The Worker under test, reached through SELF: the typed client (client/, the CLI's) for jobs,
 * and raw requests for the tests that look at statuses and error bodies themselves.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { z } from "zod";
import { ArtifactSandboxClient } from "../../client";
import { JobPageView, JobRequest, type JobView } from "../../schemas/job";

export const BASE = "http://sandbox.test";

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export function api(path: string, init?: RequestInit): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, init);
}

export function postJson(path: string, body: unknown, method = "POST"): Promise<Response> {
  return api(path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** The typed client over SELF: answers parsed with the API's own schemas, errors thrown with their code. */
export const sandboxClient = new ArtifactSandboxClient({ baseUrl: BASE, fetch: (input, init) => SELF.fetch(input, init) });

export function submit(sandboxId: string, job: Record<string, unknown>): Promise<JobView> {
  return sandboxClient.submit(sandboxId, JobRequest.parse(job));
}

export function getJob(jobId: string, waitSeconds?: number): Promise<JobView> {
  return sandboxClient.getJob(jobId, { wait: waitSeconds });
}

/** Long-polls until the job is finished (or the test's own timeout hits). */
export function waitForJob(jobId: string): Promise<JobView> {
  return sandboxClient.waitForJob(jobId);
}

export async function runJob(sandboxId: string, job: Record<string, unknown>): Promise<JobView> {
  return waitForJob((await submit(sandboxId, job)).id);
}

export async function listJobs(sandboxId: string, query = "") {
  const response = await api(`/v1/sandboxes/${sandboxId}/jobs${query}`);
  expect(response.status).toBe(200);
  return JobPageView.parse(await response.json());
}

export async function expectError(response: Response, status: number, code: string): Promise<string> {
  expect(response.status, await response.clone().text()).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = ErrorResponse.parse(await response.json());
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  return body.error.message;
}

export function uniqueSandbox(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
