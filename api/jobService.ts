/**
 * Submitting jobs and waiting for them: shared by the v1 routes and the original synchronous
 * routes, which are the same pipeline plus a wait.
 */
import { decodeTime, monotonicFactory, ulid } from "ulid";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import type { AppConfig } from "../config";
import { wakeDependents } from "../coordinator/dependents";
import { coordinatorFor } from "../coordinator/sandboxCoordinator";
import { type BatchEntry, isTerminal, type JobRecord, type JobRequest, newJobRecord } from "../schemas/job";
import { INLINE_REQUEST_MAX_BYTES, type RunMessage } from "../schemas/queueMessages";
import { type BatchManifest, saveBatch } from "../storage/batches";
import { JobStore, type VersionedRecord } from "../storage/jobStore";
import { JOB_ID_PATTERN, r2Keys, sandboxKey } from "../storage/layout";
import { ApiError, ErrorCode } from "./errors";
import { inputSources, planBatch } from "./pipelinePlan";
import { sendRunMessages } from "./queueSender";

export const MAX_WAIT_SECONDS = 60;
/** Longest single sleep of a long-poll before it re-reads the record anyway. */
const WAIT_SLICE_MS = 2000;

export class JobService {
  readonly store: JobStore;
  /** Serves one tenant (the caller's API key's): every job it reads or writes is that tenant's. */
  constructor(
    private readonly env: Env,
    readonly config: AppConfig,
    readonly tenant: string,
  ) {
    this.store = new JobStore(env.JOB_STATUS, env.JOB_OUTPUT, config.retentionSeconds, tenant);
  }

  /**
   * Submits an archive upload: the body goes to R2 (streamed, `bytes` long) before the job that
   * unpacks it exists, so the job can never run without it.
   */
  async submitUpload(sandboxId: string, dir: string, body: ReadableStream<Uint8Array>, bytes: number): Promise<JobRecord> {
    // Quotas first: a refused upload is not stored at all.
    await this.admit([sandboxId], 1);
    const jobId = monotonicFactory()(Date.now());
    const sized = new FixedLengthStream(bytes);
    await Promise.all([body.pipeTo(sized.writable), this.env.JOB_OUTPUT.put(r2Keys.upload(this.tenant, jobId), sized.readable)]).catch(
      () => {
        throw new ApiError(400, ErrorCode.INVALID_REQUEST, `The upload ended before its Content-Length (${bytes} bytes) arrived`);
      },
    );
    return this.submit(sandboxId, { type: "file", op: "extract", path: dir, archiveBytes: bytes }, jobId);
  }

  /** Submits one job; answers 503 if it could not be queued (its record then says failed). */
  async submit(sandboxId: string, submitted: JobRequest, jobId?: string): Promise<JobRecord> {
    const now = Date.now();
    const { request, needs } = resolveInputs(submitted, () => undefined);
    const pipeline = { batchId: null, name: null, needs };
    const [record] = await this.createAndQueue([
      {
        sandboxId,
        request,
        record: newJobRecord(
          jobId ?? monotonicFactory()(idTimeAfter(now, needs)),
          { tenant: this.tenant, sandboxId },
          request,
          now,
          this.config.retentionSeconds,
          pipeline,
        ),
      },
    ]);
    if (!record || record.error?.code === ErrorCode.QUEUE_UNAVAILABLE) {
      throw new ApiError(503, ErrorCode.QUEUE_UNAVAILABLE, "The job queue is unavailable; nothing was run. Try again shortly.");
    }
    return record;
  }

  /**
   * Submits a batch: its jobs in array order, except that a job comes after the jobs it needs
   * (pipelinePlan.ts). Its manifest is stored before any job can run, for the wake-ups of the
   * jobs that need another. Returns the records in the request's order.
   */
  async submitBatch(entries: BatchEntry[]): Promise<{ batchId: string; createdAt: string; records: JobRecord[] }> {
    const plan = planBatch(entries);
    const now = Date.now();
    const batchId = ulid(now);
    // Monotonic within this call only: a batch keeps its order, while IDs from separate requests
    // share no sequence that one tenant could use to guess another's job IDs.
    const newJobId = monotonicFactory();
    const named = new Set(entries.flatMap((entry) => (entry.name === undefined ? [] : [entry.name])));
    const outside = entries.flatMap((entry) => inputSources(entry).filter((from) => !named.has(from) && JOB_ID_PATTERN.test(from)));
    const idTime = idTimeAfter(now, outside);
    const ids = new Map(plan.order.map((index) => [index, newJobId(idTime)]));
    const idOf = (index: number) => ids.get(index) ?? "";
    const byName = new Map(entries.flatMap((entry, index) => (entry.name === undefined ? [] : [[entry.name, idOf(index)] as const])));
    const resolved = entries.map((entry) => resolveInputs(entry.job, (name) => byName.get(name)));
    const manifest: BatchManifest = {
      batchId,
      createdAt: new Date(now).toISOString(),
      jobs: entries.map((entry, index) => ({
        jobId: idOf(index),
        sandboxId: entry.sandboxId,
        name: entry.name ?? null,
        needs: [...new Set([...(plan.needs[index] ?? []).map(idOf), ...(resolved[index]?.needs ?? [])])],
      })),
    };
    await saveBatch(this.env.JOB_OUTPUT, this.tenant, manifest);
    const prepared = plan.order.map((index) => {
      const entry = entries[index];
      const planned = manifest.jobs[index];
      const request = resolved[index]?.request;
      if (!entry || !planned || !request) throw new Error(`batch plan names job ${index}, which is not in the batch`);
      const pipeline = { batchId, name: planned.name, needs: planned.needs };
      return {
        sandboxId: entry.sandboxId,
        request,
        record: newJobRecord(
          planned.jobId,
          { tenant: this.tenant, sandboxId: entry.sandboxId },
          request,
          now,
          this.config.retentionSeconds,
          pipeline,
        ),
      };
    });
    const created = new Map((await this.createAndQueue(prepared)).map((record) => [record.id, record]));
    const records = manifest.jobs.map(({ jobId }) => created.get(jobId)).filter((record): record is JobRecord => record !== undefined);
    return { batchId, createdAt: manifest.createdAt, records };
  }

  /**
   * Records and queues jobs, in order (job IDs follow it, so a sandbox's jobs run in that order).
   * Each job is handed to its sandbox's coordinator at once, so it knows the order before any
   * queue message arrives, and then sent on the queue, the durable intake that delivers it
   * should the hand-over have failed (its request then waits in R2, so the sweeper can hand it
   * over too). Only a job that neither reached is failed, never lost.
   */
  private async createAndQueue(prepared: { sandboxId: string; request: JobRequest; record: JobRecord }[]): Promise<JobRecord[]> {
    await this.admit(
      prepared.map(({ sandboxId }) => sandboxId),
      prepared.length,
    );
    const created = new Map<string, VersionedRecord>();
    const messages = await Promise.all(
      prepared.map(async ({ sandboxId, request, record }) => {
        const inline = new TextEncoder().encode(JSON.stringify(request)).byteLength <= INLINE_REQUEST_MAX_BYTES;
        created.set(record.id, await this.store.create(record, inline ? undefined : request));
        // Submit writes nothing to KV, so the finished record may go there at once.
        const message: RunMessage = {
          kind: "run",
          jobId: record.id,
          sandboxKey: sandboxKey(this.tenant, sandboxId),
          kvWrittenAt: 0,
          ...(inline ? { request } : {}),
        };
        return message;
      }),
    );
    const handedOver = await this.handOver(messages, created);
    const toQueue = await Promise.all(
      messages.map(async (message) => {
        if (handedOver.has(message.jobId) || message.request === undefined) return message;
        const { request, ...withoutRequest } = message;
        await this.store.saveRequest(message.jobId, request);
        return withoutRequest;
      }),
    );
    const unqueued = await sendRunMessages(this.env.JOB_QUEUE, toQueue);
    return Promise.all(
      prepared.map(({ record }) => (unqueued.has(record.id) && !handedOver.has(record.id) ? this.failUnqueued(record) : record)),
    );
  }

  /**
   * The tenant's quotas: queued plus running jobs, and live sandboxes. Checked before anything is
   * stored, so a refused submit leaves nothing behind. (Concurrent submits can each pass the job
   * count before either is stored: the job quota may be overshot by what arrives at once.)
   */
  private async admit(sandboxIds: string[], newJobs: number): Promise<void> {
    const { maxActiveJobs, maxSandboxes } = this.config.quotas;
    const [active, admission] = await Promise.all([
      this.store.countActive(maxActiveJobs + 1),
      tenantDirectoryFor(this.env.TENANT_DIRECTORY, this.tenant).admit(this.tenant, sandboxIds, maxSandboxes),
    ]);
    if (!admission.ok && "ending" in admission) {
      throw new ApiError(
        409,
        ErrorCode.SANDBOX_BUSY,
        `Sandbox ${admission.ending} is being deleted; submit again in a few seconds (it starts empty)`,
        undefined,
        { "retry-after": "5" },
      );
    }
    if (!admission.ok) {
      throw new ApiError(
        429,
        ErrorCode.QUOTA_EXCEEDED,
        `Quota MAX_SANDBOXES_PER_TENANT: the tenant has ${admission.liveSandboxes} live sandboxes of ${maxSandboxes}; delete one (DELETE /v1/sandboxes/{id}) or reuse one`,
      );
    }
    if (active + newJobs > maxActiveJobs) {
      throw new ApiError(
        429,
        ErrorCode.QUOTA_EXCEEDED,
        `Quota MAX_ACTIVE_JOBS_PER_TENANT: ${active} jobs are queued or running and ${newJobs} more would pass ${maxActiveJobs}; wait for some to finish`,
        undefined,
        { "retry-after": "10" },
      );
    }
  }

  /**
   * Gives each sandbox's coordinator its new jobs (with their records as created, so the first
   * claim need not read them back), one call per sandbox; returns the job IDs it took.
   */
  private async handOver(messages: RunMessage[], created: Map<string, VersionedRecord>): Promise<Set<string>> {
    const bySandbox = new Map<string, RunMessage[]>();
    for (const message of messages) bySandbox.set(message.sandboxKey, [...(bySandbox.get(message.sandboxKey) ?? []), message]);
    const taken = new Set<string>();
    await Promise.all(
      [...bySandbox].map(async ([key, group]) => {
        try {
          await coordinatorFor(this.env.SANDBOX_COORDINATOR, key).enqueue(
            group.map(({ jobId, kvWrittenAt, request }) => ({ jobId, sandboxKey: key, kvWrittenAt, request, created: created.get(jobId) })),
          );
          for (const { jobId } of group) taken.add(jobId);
        } catch (error) {
          // The queue still delivers these jobs; only their order relative to others may differ.
          console.warn(`sandbox ${key}: coordinator unreachable at submit`, error);
        }
      }),
    );
    return taken;
  }

  private async failUnqueued(record: JobRecord): Promise<JobRecord> {
    const failed: JobRecord = {
      ...record,
      status: "failed",
      finishedAt: new Date().toISOString(),
      error: { code: ErrorCode.QUEUE_UNAVAILABLE, message: "The job could not be queued; nothing was run. Submit it again." },
    };
    // Only a job still queued: whatever reached it meanwhile (a coordinator that did take it) wins.
    const version = await this.store.getVersioned(record.id);
    if (version?.record.status !== "queued") return version?.record ?? failed;
    return (await this.store.replace(version, failed)) ? failed : record;
  }

  /**
   * Cancels a job: a queued one ends at once (it will never run). For a running one the cancel
   * is stored on its record (its runner checks it at every lease renewal and before it
   * finishes, and a runner that takes over a crashed one ends it) and its coordinator is told
   * at once, so the command ends now.
   */
  async cancel(jobId: string): Promise<{ record: JobRecord; outcome: "cancelled" | "cancelling" }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const version = await this.store.getVersioned(jobId);
      if (!version || Date.parse(version.record.expiresAt) <= Date.now()) {
        throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
      }
      const { record } = version;
      const coordinator = coordinatorFor(this.env.SANDBOX_COORDINATOR, sandboxKey(this.tenant, record.sandboxId));
      if (isTerminal(record.status)) {
        throw new ApiError(409, ErrorCode.JOB_FINISHED, `Job ${jobId} has already finished (${record.status}); there is nothing to cancel`);
      }
      if (record.status === "running") {
        const marked = record.cancelRequested ? version : await this.store.replace(version, { ...record, cancelRequested: true });
        if (!marked) continue;
        await coordinator.cancelJob(jobId).catch((error: unknown) => console.warn(`job ${jobId}: cancel signal not delivered`, error));
        return { record: marked.record, outcome: "cancelling" };
      }
      const cancelled: JobRecord = {
        ...record,
        status: "failed",
        finishedAt: new Date().toISOString(),
        leaseUntil: null,
        error: { code: ErrorCode.CANCELLED, message: "Cancelled before it ran" },
      };
      // Conditional: if a consumer claimed the job meanwhile, go round again as a running job.
      if (await this.store.replace(version, cancelled)) {
        // It never runs: its stored request (env values, stdin) and its place in line go now.
        await Promise.all([
          this.store.deleteRequest(jobId),
          this.store.markInactive(cancelled),
          coordinator.jobFinished(jobId).catch(() => {}),
          wakeDependents(this.env, cancelled),
        ]);
        return { record: cancelled, outcome: "cancelled" };
      }
    }
    throw new ApiError(409, ErrorCode.JOB_BUSY, `Job ${jobId} changed state while being cancelled; try again`);
  }

  async get(jobId: string): Promise<JobRecord> {
    const record = await this.store.get(jobId);
    if (!record) throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
    return record;
  }

  /**
   * Waits until the job has finished or `waitMs` has passed. The sandbox's coordinator wakes
   * the wait when the job finishes; the wake-up of its runner carries the final record it wrote
   * to R2 (a finished record never changes), any other is followed by reading R2 (the source of
   * truth). Waits come in slices, so a lost wake-up costs one slice at most.
   */
  async waitFor(jobId: string, waitMs: number): Promise<JobRecord> {
    const deadline = Date.now() + waitMs;
    // Straight to R2: a waited-for job is usually unfinished, which KV could not answer anyway.
    const first = await this.store.getVersioned(jobId);
    if (!first || Date.parse(first.record.expiresAt) <= Date.now()) {
      throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
    }
    let { record, etag } = first;
    const coordinator = coordinatorFor(this.env.SANDBOX_COORDINATOR, sandboxKey(this.tenant, record.sandboxId));
    while (!isTerminal(record.status) && Date.now() < deadline) {
      const slice = Math.min(WAIT_SLICE_MS, deadline - Date.now());
      const woken = await coordinator.waitForJob(jobId, slice).catch(async (error: unknown) => {
        console.warn(`job ${jobId}: coordinator unavailable, polling`, error);
        await new Promise((resolve) => setTimeout(resolve, Math.min(250, slice)));
        return undefined;
      });
      const carried = woken?.raised ? woken.value : undefined;
      if (carried?.id === jobId && isTerminal(carried.status)) return carried;
      const latest: VersionedRecord | "unchanged" | undefined = await this.store.getIfChanged(jobId, etag);
      if (latest === undefined) throw new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
      if (latest !== "unchanged") {
        record = latest.record;
        etag = latest.etag;
      }
    }
    return record;
  }
}

/**
 * A run job's inputs with each `from` as a job ID (a name of this batch resolved), and the IDs
 * they come from: the job needs those to succeed first. A `from` that is neither is a 400.
 */
function resolveInputs(request: JobRequest, idOfName: (name: string) => string | undefined): { request: JobRequest; needs: string[] } {
  if (request.type !== "run" || request.inputs.length === 0) return { request, needs: [] };
  const inputs = request.inputs.map((input) => {
    const from = idOfName(input.from) ?? (JOB_ID_PATTERN.test(input.from) ? input.from : undefined);
    if (from === undefined) {
      throw new ApiError(400, ErrorCode.INVALID_REQUEST, `inputs: from "${input.from}" is neither a job of this batch nor a job ID`);
    }
    return { ...input, from };
  });
  return { request: { ...request, inputs }, needs: [...new Set(inputs.map((input) => input.from))] };
}

/**
 * The time to mint new job IDs from: now, or later than every job they need, so that in a
 * sandbox's line (ordered by ID) a job never stands before one it waits for.
 */
function idTimeAfter(now: number, neededIds: string[]): number {
  // An ID from the future names no job there can be (it is skipped when it runs): ignored here.
  const times = neededIds.map((jobId) => decodeTime(jobId) + 1).filter((time) => time <= now + 60_000);
  return Math.max(now, ...times);
}
