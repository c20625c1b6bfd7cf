/**
 * A typed client for the artifact-sandbox API, for CI scripts, other Workers and the CLI. Every
 * answer is parsed with the zod schemas the API itself validates and documents with
 * (schemas/), so a change to a route's answer breaks the client's typecheck or fails loudly at
 * run time instead of passing bad data on. Uses only fetch and web streams (Node 20, Workers).
 */
import { z } from "zod";
import { DeletedSandbox, SandboxList, type SandboxView } from "../schemas/api";
import { CacheList, DeletedCaches } from "../schemas/cache";
import {
  ArtifactPageView,
  BatchEntry,
  BatchView,
  isTerminal,
  JobPageView,
  JobRequest,
  type JobStatus,
  type JobView,
  JobView as JobViewSchema,
} from "../schemas/job";
import { DeletedSecret, SecretEntry, SecretList } from "../schemas/secrets";
import { type ClientOptions, Http } from "./http";
import { followLogs, type LogEvent } from "./logs";
import { Backoff, DEFAULT_RETRY, type RetryPolicy } from "./retry";

export { ApiError, ConnectionError, UnexpectedResponseError } from "./errors";
export type { ClientOptions } from "./http";
export type { LogEvent } from "./logs";
export type { RetryPolicy } from "./retry";
export type { ArtifactPageView, BatchView, JobView, SandboxView };

/** A job as a client writes it: defaults may be left out. */
export type JobSubmission = z.input<typeof JobRequest>;
/** One entry of a batch (`POST /v1/jobs`), as a client writes it. */
export type BatchSubmission = z.input<typeof BatchEntry>;

export const DEFAULT_BASE_URL = "http://localhost:8787";
/** The longest `?wait` the API takes is 60 s; 30 keeps each poll well inside proxies' idle timeouts. */
const POLL_WAIT_SECONDS = 30;

/** The environment variables the client reads (`process.env` in Node, `env` in a Worker). */
export interface ClientEnv {
  ARTIFACT_SANDBOX_URL?: string;
  ARTIFACT_SANDBOX_KEY?: string;
}

export function clientOptionsFromEnv(env: ClientEnv): ClientOptions {
  return { baseUrl: env.ARTIFACT_SANDBOX_URL || DEFAULT_BASE_URL, apiKey: env.ARTIFACT_SANDBOX_KEY || undefined };
}

const BatchSubmitRequest = z.object({ jobs: z.array(BatchEntry) });

/** The body `submit` sends for a job: checked with the API's own schema (a ZodError if it fails), as JSON. */
export function jobRequestBody(job: JobSubmission): string {
  return JSON.stringify(JobRequest.parse(job));
}

/** The body `submitBatch` sends for these jobs (the CLI measures it against the API's limit). */
export function batchRequestBody(jobs: BatchSubmission[]): string {
  return JSON.stringify(BatchSubmitRequest.parse({ jobs }));
}

export class ArtifactSandboxClient {
  private readonly http: Http;

  constructor(options: ClientOptions) {
    this.http = new Http(options);
  }

  static fromEnv(env: ClientEnv): ArtifactSandboxClient {
    return new ArtifactSandboxClient(clientOptionsFromEnv(env));
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /** Submits one job; it is validated here first with the API's own schema, so a bad job fails before any request. */
  submit(sandboxId: string, job: JobSubmission, options: { idempotencyKey?: string } = {}): Promise<JobView> {
    return this.http.json(JobViewSchema, `/v1/sandboxes/${encodeURIComponent(sandboxId)}/jobs`, {
      method: "POST",
      headers: jsonHeaders(options.idempotencyKey),
      body: jobRequestBody(job),
    });
  }

  /** Submits up to 100 jobs at once; entries with `name` and `needs` form a pipeline. */
  submitBatch(jobs: BatchSubmission[], options: { idempotencyKey?: string } = {}): Promise<BatchView> {
    return this.http.json(BatchView, "/v1/jobs", {
      method: "POST",
      headers: jsonHeaders(options.idempotencyKey),
      body: batchRequestBody(jobs),
    });
  }

  /** The job now, or with `wait` (seconds, at most 60) as soon as it finishes or the wait ends. */
  getJob(jobId: string, options: { wait?: number; signal?: AbortSignal } = {}): Promise<JobView> {
    const query = options.wait === undefined ? "" : `?wait=${options.wait}`;
    return this.http.json(JobViewSchema, `/v1/jobs/${encodeURIComponent(jobId)}${query}`, { signal: options.signal });
  }

  /**
   * Long-polls until the job has finished. A restart of the service in between (refused
   * connections, 5xx) is ridden out with backoff for `retry.toleranceMs`; `timeoutMs` bounds the
   * whole wait (none by default: the job's own timeout ends it).
   */
  async waitForJob(jobId: string, options: { timeoutMs?: number; retry?: RetryPolicy; signal?: AbortSignal } = {}): Promise<JobView> {
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    const backoff = new Backoff(options.retry ?? DEFAULT_RETRY, options.signal);
    for (;;) {
      const leftSeconds = Math.ceil((deadline - Date.now()) / 1000);
      try {
        const job = await this.getJob(jobId, { wait: Math.max(1, Math.min(POLL_WAIT_SECONDS, leftSeconds)), signal: options.signal });
        backoff.succeeded();
        if (isTerminal(job.status)) return job;
        if (Date.now() >= deadline) throw new Error(`Job ${jobId} is still ${job.status} after ${options.timeoutMs} ms`);
      } catch (error) {
        await backoff.failed(error);
      }
    }
  }

  /** One page of a sandbox's jobs, newest first; pass `nextCursor` back as `cursor` for the next. */
  listJobs(
    sandboxId: string,
    options: { status?: JobStatus; limit?: number; cursor?: string } = {},
  ): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const query = new URLSearchParams();
    if (options.status) query.set("status", options.status);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    const search = query.size > 0 ? `?${query}` : "";
    return this.http.json(JobPageView, `/v1/sandboxes/${encodeURIComponent(sandboxId)}/jobs${search}`);
  }

  /** Cancels a job: a queued one never runs, a running one has its command ended. */
  cancel(jobId: string): Promise<JobView> {
    return this.http.json(JobViewSchema, `/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
  }

  /** The job's output as it is written, then a final `status` event; reconnects (Last-Event-ID) until then. */
  followLogs(jobId: string, options: { retry?: RetryPolicy; signal?: AbortSignal } = {}): AsyncGenerator<LogEvent> {
    return followLogs(this.http, jobId, options.retry ?? DEFAULT_RETRY, options.signal);
  }

  /**
   * One download as a stream: a URL from a job record (signed: no key needed), or a job and an
   * artifact path relative to its cwd.
   */
  async download(urlOrJob: string | JobView, artifactPath?: string): Promise<ReadableStream<Uint8Array>> {
    const url = typeof urlOrJob === "string" ? urlOrJob : artifactUrl(urlOrJob, artifactPath);
    return bodyOf(await this.http.send(url));
  }

  /** The last `bytes` bytes of a job's stdout or stderr (a Range request), as text. */
  async outputTail(jobId: string, stream: "stdout" | "stderr", bytes: number): Promise<string> {
    const response = await this.http.send(`/v1/jobs/${encodeURIComponent(jobId)}/${stream}`, { headers: { range: `bytes=-${bytes}` } });
    return response.status === 204 ? "" : response.text();
  }

  /** Every artifact of a job, with download URLs: its record lists only the first 200, the rest come a page at a time. */
  async listArtifacts(job: JobView): Promise<JobView["artifacts"]> {
    if (!job.artifactIndex || job.artifactIndex.files <= job.artifacts.length) return job.artifacts;
    const artifacts: JobView["artifacts"] = [];
    let cursor: string | undefined;
    do {
      const page = await this.artifactPage(job.id, cursor);
      artifacts.push(...page.artifacts);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return artifacts;
  }

  /** One page of a job's artifacts (up to 1,000, in path order, the first page from the first file); `cursor` is the page before's `nextCursor`. */
  artifactPage(jobId: string, cursor?: string): Promise<ArtifactPageView> {
    const search = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
    return this.http.json(ArtifactPageView, `/v1/jobs/${encodeURIComponent(jobId)}/artifacts${search}`);
  }

  /** Every artifact of a finished job as one .tar.gz stream. */
  async downloadArchive(jobId: string): Promise<ReadableStream<Uint8Array>> {
    return bodyOf(await this.http.send(`/v1/jobs/${encodeURIComponent(jobId)}/artifacts.tar.gz`));
  }

  /**
   * Uploads a .tar.gz and unpacks it into the sandbox at `path` (default /workspace), as a job of
   * its own. The API needs the body's length: a stream must come with `length`.
   */
  uploadArchive(
    sandboxId: string,
    archive: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
    options: { path?: string; length?: number } = {},
  ): Promise<JobView> {
    const length = archive instanceof Uint8Array ? archive.byteLength : options.length;
    if (length === undefined) throw new TypeError("uploadArchive: a streamed archive needs its length (options.length)");
    const query = options.path ? `?path=${encodeURIComponent(options.path)}` : "";
    // Node's fetch sends a stream body only with duplex "half"; Workers ignore the field.
    const init: RequestInit & { duplex?: "half" } = {
      method: "PUT",
      headers: { "content-type": "application/gzip", "content-length": String(length) },
      body: archive,
      duplex: "half",
    };
    return this.http.json(JobViewSchema, `/v1/sandboxes/${encodeURIComponent(sandboxId)}/archive${query}`, init);
  }

  getBatch(batchId: string, options: { wait?: number } = {}): Promise<BatchView> {
    const query = options.wait === undefined ? "" : `?wait=${options.wait}`;
    return this.http.json(BatchView, `/v1/batches/${encodeURIComponent(batchId)}${query}`);
  }

  /** Runs a finished batch again as a new batch: with `failed`, only what did not succeed and what needs it. */
  rerunBatch(batchId: string, options: { failed?: boolean } = {}): Promise<BatchView> {
    return this.http.json(BatchView, `/v1/batches/${encodeURIComponent(batchId)}/rerun?failed=${options.failed === true}`, {
      method: "POST",
    });
  }

  cancelBatch(batchId: string): Promise<BatchView> {
    return this.http.json(BatchView, `/v1/batches/${encodeURIComponent(batchId)}/cancel`, { method: "POST" });
  }

  async listSandboxes(): Promise<SandboxView[]> {
    return (await this.http.json(SandboxList, "/v1/sandboxes")).sandboxes;
  }

  deleteSandbox(sandboxId: string): Promise<DeletedSandbox> {
    return this.http.json(DeletedSandbox, `/v1/sandboxes/${encodeURIComponent(sandboxId)}`, { method: "DELETE" });
  }

  /** Stores a secret (write-only: its value never comes back). */
  setSecret(name: string, value: string): Promise<SecretEntry> {
    return this.http.json(SecretEntry, `/v1/secrets/${encodeURIComponent(name)}`, {
      method: "PUT",
      headers: jsonHeaders(undefined),
      body: JSON.stringify({ value }),
    });
  }

  async listSecrets(): Promise<SecretEntry[]> {
    return (await this.http.json(SecretList, "/v1/secrets")).secrets;
  }

  deleteSecret(name: string): Promise<DeletedSecret> {
    return this.http.json(DeletedSecret, `/v1/secrets/${encodeURIComponent(name)}`, { method: "DELETE" });
  }

  listCaches(): Promise<CacheList> {
    return this.http.json(CacheList, "/v1/caches");
  }

  /** Deletes the cache entry `key`, or every entry under `prefix` ("" for all). */
  deleteCaches(match: { key: string } | { prefix: string }): Promise<DeletedCaches> {
    const query = "key" in match ? `key=${encodeURIComponent(match.key)}` : `prefix=${encodeURIComponent(match.prefix)}`;
    return this.http.json(DeletedCaches, `/v1/caches?${query}`, { method: "DELETE" });
  }
}

function jsonHeaders(idempotencyKey: string | undefined): Record<string, string> {
  return { "content-type": "application/json", ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}) };
}

function artifactUrl(job: JobView, path: string | undefined): string {
  const artifact = job.artifacts.find((candidate) => candidate.path === path);
  if (!artifact)
    throw new Error(`Job ${job.id} has no artifact ${path ?? "(none named)"}; it has: ${job.artifacts.map((a) => a.path).join(", ")}`);
  return artifact.url;
}

function bodyOf(response: Response): ReadableStream<Uint8Array> {
  return response.body ?? new ReadableStream({ start: (controller) => controller.close() });
}
