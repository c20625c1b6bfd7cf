/**
 * Helpers for the tests that drive the whole local stack (`npm run dev` as a child process group):
 * free ports, submitting and polling jobs through the typed client the CLI uses (answers parsed
 * with the API's own zod schemas), streaming downloads, and the stack's memory read from /proc.
 */
import { createHash } from "node:crypto";
import { chmod, mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { z } from "zod";
import { ArtifactSandboxClient } from "../../client";
import type { JobRequest, JobView } from "../../schemas/job";
import { descendantsOf, portAcceptsConnections, processes } from "../../scripts/processes";

/** A job as a client writes it: defaults may be left out. */
export type JobSubmission = z.input<typeof JobRequest>;

/** A port nothing listens on now: the kernel's pick for port 0. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Resolves once nothing accepts connections on the port (a killed stack's sockets are gone). */
export async function waitUntilClosed(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await portAcceptsConnections(port))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`port ${port} still accepts connections after ${timeoutMs} ms`);
}

/** A fresh state dir; traversable by others, because each sandbox runs as its own uid and reaches its workspace below it. */
export async function tempStateDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** The typed client (client/) the CLI uses too, for a stack's API, with an API key or anonymously. */
export function apiClient(apiUrl: string, key?: string): ArtifactSandboxClient {
  return new ArtifactSandboxClient({ baseUrl: apiUrl, apiKey: key });
}

export async function submitBatch(apiUrl: string, jobs: { sandboxId: string; job: JobSubmission }[]): Promise<JobView[]> {
  return (await apiClient(apiUrl).submitBatch(jobs)).jobs;
}

/** The Authorization header for an API key, or none (a local stack lets anonymous requests in). */
export function authHeaders(key?: string): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

export function submitJob(apiUrl: string, sandboxId: string, job: JobSubmission, key?: string): Promise<JobView> {
  return apiClient(apiUrl, key).submit(sandboxId, job);
}

export function getJob(apiUrl: string, jobId: string, waitSeconds?: number, key?: string): Promise<JobView> {
  return apiClient(apiUrl, key).getJob(jobId, { wait: waitSeconds });
}

/** Long-polls until the job has finished, or throws after `timeoutMs`. */
export function awaitJob(apiUrl: string, jobId: string, timeoutMs: number, key?: string): Promise<JobView> {
  return apiClient(apiUrl, key).waitForJob(jobId, { timeoutMs });
}

/** Every job of the sandboxes, newest first per sandbox: one request per sandbox, not per job. */
export async function listJobs(apiUrl: string, sandboxIds: string[]): Promise<JobView[]> {
  const pages = await Promise.all(sandboxIds.map((sandboxId) => apiClient(apiUrl).listJobs(sandboxId, { limit: 100 })));
  return pages.flatMap((page) => page.jobs);
}

/** The SHA-256 (hex) and length of a download, hashed chunk by chunk as it arrives. */
export async function streamedSha256(url: string): Promise<{ sha256: string; bytes: number }> {
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const hash = createHash("sha256");
  let bytes = 0;
  const reader = response.body.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    hash.update(next.value);
    bytes += next.value.byteLength;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** The stack's own programs: the Node processes (tsx, dev script and host, wrangler, agents) and workerd. */
const STACK_PROGRAM = /(^|\/)(node|workerd)$/;

/**
 * Resident memory (KiB) of the stack's processes: the dev process group's root and every
 * descendant that is node or workerd (the container host's agents included). What jobs run
 * inside a sandbox (head, sha256sum) is the job's, not the stack's.
 */
export function stackRssKiB(rootPid: number): number {
  const all = processes();
  const members = [...all.filter((info) => info.pid === rootPid), ...descendantsOf(rootPid, all)];
  return members.filter((info) => STACK_PROGRAM.test(info.commandLine.split(" ")[0] ?? "")).reduce((sum, info) => sum + info.rssKiB, 0);
}
