/**
 * A small client for the Worker under test: real HTTP requests through SELF, parsed with the
 * API's own schemas so a shape drift fails the test.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { z } from "zod";
import { JobPageView, JobView } from "../../schemas/job";

export const BASE = "http://sandbox.test";

export const ErrorResponse = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export function api(path: string, init?: RequestInit): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, init);
}

export function postJson(path: string, body: unknown, method = "POST"): Promise<Response> {
  return api(path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

export async function submit(sandboxId: string, job: Record<string, unknown>): Promise<JobView> {
  const response = await postJson(`/v1/sandboxes/${sandboxId}/jobs`, job);
  expect(response.status, await response.clone().text()).toBe(202);
  return JobView.parse(await response.json());
}

export async function getJob(jobId: string, waitSeconds?: number): Promise<JobView> {
  const response = await api(`/v1/jobs/${jobId}${waitSeconds === undefined ? "" : `?wait=${waitSeconds}`}`);
  expect(response.status).toBe(200);
  return JobView.parse(await response.json());
}

/** Long-polls until the job is finished (or the test's own timeout hits). */
export async function waitForJob(jobId: string): Promise<JobView> {
  for (;;) {
    const job = await getJob(jobId, 10);
    if (!["queued", "running"].includes(job.status)) return job;
  }
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
