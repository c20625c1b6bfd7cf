/**
 * Submitting jobs and waiting for them: shared by the v1 routes and the original synchronous
 * routes, which are the same pipeline plus a wait.
 */
import { decodeTime } from "ulid";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import type { AppConfig } from "../config";
import type { HandedJob } from "../coordinator/jobTable";
import { type CoordinatorStub, coordinatorFor } from "../coordinator/stubs";
import { type BatchEntry, type JobRecord, type JobRequest, type JobStatus, newJobRecord } from "../schemas/job";
import { INLINE_REQUEST_MAX_BYTES, type RunMessage } from "../schemas/queueMessages";
import { type BatchManifest, saveBatch } from "../storage/batches";
import { saveBatchRequest } from "../storage/batchRequests";
import { JobStore } from "../storage/jobStore";
import { JOB_ID_PATTERN, r2Keys, sandboxKey } from "../storage/layout";
import { ApiError, ErrorCode } from "./errors";
import { type IdSeed, submitIds } from "./jobIds";
import { inputSources, planBatch } from "./pipelinePlan";
import { sendRunMessages } from "./queueSender";

export const MAX_WAIT_SECONDS = 60;
/** Jobs outside a submit that its `inputs` may name by ID: each costs reads at submit (the operation budget). */
const MAX_SOURCE_JOBS = 50;

export class JobService {
  readonly store: JobStore;
  /** Serves one tenant (the caller's API key's): every job it reads or writes is that tenant's. */
  constructor(
    private readonly env: Env,
    readonly config: AppConfig,
    readonly tenant: string,
  ) {
    this.store = new JobStore(env.LOOKUPS, env.JOB_OUTPUT, config.retentionSeconds, tenant);
  }

  /**
   * Submits an archive upload: the body goes to R2 (streamed, `bytes` long) before the job that
   * unpacks it exists, so the job can never run without it.
   */
  async submitUpload(sandboxId: string, dir: string, body: ReadableStream<Uint8Array>, bytes: number): Promise<JobRecord> {
    // Quotas first: a refused upload is not stored at all.
    await this.admit([sandboxId]);
    const ids = submitIds();
    const jobId = ids.nextJobId(ids.now);
    const sized = new FixedLengthStream(bytes);
    await Promise.all([body.pipeTo(sized.writable), this.env.JOB_OUTPUT.put(r2Keys.upload(this.tenant, jobId), sized.readable)]).catch(
      () => {
        throw new ApiError(400, ErrorCode.INVALID_REQUEST, `The upload ended before its Content-Length (${bytes} bytes) arrived`);
      },
    );
    return this.submit(sandboxId, { type: "file", op: "extract", path: dir, archiveBytes: bytes }, { jobId, admitted: true });
  }

  /**
   * Submits one job; its ID is `jobId`, or made from `seed` (an idempotency key's) when given.
   * `admitted`: the tenant's directory has counted it already (an upload is admitted before it is stored).
   */
  async submit(
    sandboxId: string,
    submitted: JobRequest,
    options: { jobId?: string; seed?: IdSeed; admitted?: boolean } = {},
  ): Promise<JobRecord> {
    const { now, nextJobId } = submitIds(options.seed);
    const { request, needs } = resolveInputs(submitted, () => undefined);
    await this.checkSources(needs);
    const pipeline = { batchId: null, name: null, needs };
    const [record] = await this.createAndQueue(
      [
        {
          sandboxId,
          request,
          record: newJobRecord(
            options.jobId ?? nextJobId(idTimeAfter(now, needs)),
            { tenant: this.tenant, sandboxId },
            request,
            now,
            this.config.retentionSeconds,
            pipeline,
          ),
        },
      ],
      { admitted: options.admitted },
    );
    if (!record) throw new Error("a submit of one job recorded none");
    return record;
  }

  /**
   * Submits a batch: its jobs in array order, except that a job comes after the jobs it needs
   * (pipelinePlan.ts). Its manifest is stored before any job can run, for the wake-ups of the
   * jobs that need another. Returns the records in the request's order. With `seed` (an
   * idempotency key's), the same entries get the same IDs every time.
   */
  async submitBatch(entries: BatchEntry[], seed?: IdSeed): Promise<{ batchId: string; createdAt: string; records: JobRecord[] }> {
    const plan = planBatch(entries);
    // Monotonic within this call only: a batch keeps its order, while IDs from separate requests
    // share no sequence that one tenant could use to guess another's job IDs.
    const { now, batchId, nextJobId: newJobId } = submitIds(seed);
    const named = new Set(entries.flatMap((entry) => (entry.name === undefined ? [] : [entry.name])));
    const outside = entries.flatMap((entry) => inputSources(entry).filter((from) => !named.has(from) && JOB_ID_PATTERN.test(from)));
    const idTime = idTimeAfter(now, outside);
    const ids = new Map(plan.order.map((index) => [index, newJobId(idTime)]));
    const idOf = (index: number) => ids.get(index) ?? "";
    const byName = new Map(entries.flatMap((entry, index) => (entry.name === undefined ? [] : [[entry.name, idOf(index)] as const])));
    const resolved = entries.map((entry) => resolveInputs(entry.job, (name) => byName.get(name)));
    await this.checkSources(outside);
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
    const prepared = plan.order.map((index) => {
      const entry = entries[index];
      const planned = manifest.jobs[index];
      const request = resolved[index]?.request;
      if (!entry || !planned || !request) throw new Error(`batch plan names job ${index}, which is not in the batch`);
      const pipeline = { batchId, name: planned.name, needs: planned.needs, when: entry.when, allowFailure: entry.allowFailure };
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
    // The manifest and the request are stored with the jobs' records: after admission (a refused
    // batch stores nothing), before any job is handed over (a finishing job reads the manifest).
    const stored = await this.createAndQueue(prepared, {
      alsoStore: () => [
        saveBatch(this.env.JOB_OUTPUT, this.tenant, manifest),
        saveBatchRequest(this.env.JOB_OUTPUT, this.tenant, batchId, entries, this.config.secretsKeys),
      ],
    });
    const created = new Map(stored.map((record) => [record.id, record]));
    const records = manifest.jobs.map(({ jobId }) => created.get(jobId)).filter((record): record is JobRecord => record !== undefined);
    return { batchId, createdAt: manifest.createdAt, records };
  }

  /**
   * Records and hands over jobs, in order (job IDs follow it, so a sandbox's jobs run in that
   * order). Once the tenant's quotas admit them (unless `admitted` says they were), the jobs'
   * records as submitted go to R2 in one object (written once: it names each job's sandbox for
   * later polls), beside what `alsoStore` writes, all at once; then each sandbox's coordinator
   * takes its jobs, durably, in one call. Only the jobs of a coordinator that could not be
   * reached go on the queue, the durable intake, with their request in R2 and an entry on the
   * sweeper's worklist (it delivers them should the queue fail too). Answers with the records as
   * submitted.
   */
  private async createAndQueue(
    prepared: { sandboxId: string; request: JobRequest; record: JobRecord }[],
    options: { admitted?: boolean; alsoStore?: () => Promise<unknown>[] } = {},
  ): Promise<JobRecord[]> {
    if (!options.admitted) await this.admit(prepared.map(({ sandboxId }) => sandboxId));
    // A request too large for a queue message (or a coordinator's table row) waits in R2.
    const large = new Set(prepared.filter(({ request }) => !fitsInline(request)).map(({ record }) => record.id));
    await Promise.all([
      ...(options.alsoStore?.() ?? []),
      this.store.saveSubmitted(prepared.map(({ record }) => record)),
      ...prepared.filter(({ record }) => large.has(record.id)).map(({ record, request }) => this.store.saveRequest(record.id, request)),
    ]);
    const handedOver = await this.handOver(prepared, large);
    const missed = prepared.filter(({ record }) => !handedOver.has(record.id));
    if (missed.length > 0) {
      const messages = await Promise.all(
        missed.map(async ({ sandboxId, request, record }): Promise<RunMessage> => {
          const inline = !large.has(record.id);
          // Stored whenever its coordinator did not take it, and put on the sweeper's worklist: it
          // hands such a job over should its message be lost too.
          await Promise.all([inline && this.store.saveRequest(record.id, request), this.store.markUndelivered(record)]);
          return { kind: "run", jobId: record.id, sandboxKey: sandboxKey(this.tenant, sandboxId), ...(inline ? { request } : {}) };
        }),
      );
      const unqueued = await sendRunMessages(this.env.JOB_QUEUE, messages);
      if (unqueued.size > 0) console.warn(`${unqueued.size} job(s) neither handed over nor queued: the sweeper hands them over`);
    }
    return prepared.map(({ record }) => record);
  }

  /**
   * Every job named by ID in `inputs` is one of this tenant's, within its retention: a typo, or
   * another tenant's job, is a 400 at submit rather than a job skipped later; nothing is stored.
   */
  private async checkSources(jobIds: string[]): Promise<void> {
    const distinct = [...new Set(jobIds)];
    if (distinct.length > MAX_SOURCE_JOBS) {
      throw new ApiError(
        400,
        ErrorCode.INVALID_REQUEST,
        `inputs name ${distinct.length} jobs outside this submit by ID; at most ${MAX_SOURCE_JOBS} may be named in one submit`,
      );
    }
    const found = await Promise.all(
      distinct.map(async (jobId) => {
        // Every job has a record as submitted (one object per submit); a final one is read only for a job without it.
        const record = (await this.store.readSubmitted(jobId)) ?? (await this.store.readFinished(jobId));
        return record !== undefined && live(record);
      }),
    );
    const unknown = distinct.filter((_, index) => !found[index]);
    if (unknown.length > 0) {
      throw new ApiError(
        400,
        ErrorCode.INVALID_REQUEST,
        `inputs: no job ${unknown.join(", ")} (unknown, another tenant's, or past its retention); name a job of this batch by its name, or one of yours by ID`,
      );
    }
  }

  /**
   * The tenant's quotas: unfinished jobs, and live sandboxes, checked and counted in one call to
   * the tenant's directory before anything is stored, so a refused submit leaves nothing behind.
   */
  private async admit(sandboxIds: string[]): Promise<void> {
    const { maxActiveJobs, maxSandboxes } = this.config.quotas;
    const jobsBySandbox: Record<string, number> = {};
    for (const sandboxId of sandboxIds) jobsBySandbox[sandboxId] = (jobsBySandbox[sandboxId] ?? 0) + 1;
    const admission = await tenantDirectoryFor(this.env.TENANT_DIRECTORY, this.tenant).admit(this.tenant, jobsBySandbox, {
      maxSandboxes,
      maxUnfinishedJobs: maxActiveJobs,
    });
    if (!admission.ok && "ending" in admission) {
      throw new ApiError(
        409,
        ErrorCode.SANDBOX_BUSY,
        `Sandbox ${admission.ending} is being deleted; submit again in a few seconds (it starts empty)`,
        undefined,
        { "retry-after": "5" },
      );
    }
    if (!admission.ok && "unfinishedJobs" in admission) {
      throw new ApiError(
        429,
        ErrorCode.QUOTA_EXCEEDED,
        `Quota MAX_ACTIVE_JOBS_PER_TENANT: ${admission.unfinishedJobs} jobs are queued or running and ${sandboxIds.length} more would pass ${maxActiveJobs}; wait for some to finish`,
        undefined,
        { "retry-after": "10" },
      );
    }
    if (!admission.ok) {
      throw new ApiError(
        429,
        ErrorCode.QUOTA_EXCEEDED,
        `Quota MAX_SANDBOXES_PER_TENANT: the tenant has ${admission.liveSandboxes} live sandboxes of ${maxSandboxes}, and this submit would add ${admission.newSandboxes} new ${admission.newSandboxes === 1 ? "one" : "ones"}; delete some (DELETE /v1/sandboxes/{id}) or reuse them`,
      );
    }
  }

  /** Gives each sandbox's coordinator its new jobs, one call per sandbox; returns the job IDs taken. */
  private async handOver(
    prepared: { sandboxId: string; request: JobRequest; record: JobRecord }[],
    large: Set<string>,
  ): Promise<Set<string>> {
    const bySandbox = new Map<string, HandedJob[]>();
    for (const { sandboxId, request, record } of prepared) {
      // A large request waits in R2 (and goes once the job ends); a small one travels with the job.
      const job: HandedJob = large.has(record.id)
        ? { submitted: record, leftovers: true }
        : { submitted: record, request, leftovers: false };
      bySandbox.set(sandboxId, [...(bySandbox.get(sandboxId) ?? []), job]);
    }
    const taken = new Set<string>();
    await Promise.all(
      [...bySandbox].map(async ([sandboxId, jobs]) => {
        try {
          await this.coordinator(sandboxId).enqueue(jobs);
          for (const { submitted } of jobs) taken.add(submitted.id);
        } catch (error) {
          // The queue delivers these jobs; only their order relative to others may differ.
          console.warn(`sandbox ${sandboxId}: coordinator unreachable at submit`, error);
        }
      }),
    );
    return taken;
  }

  private coordinator(sandboxId: string): CoordinatorStub {
    return coordinatorFor(this.env.SANDBOX_COORDINATOR, sandboxKey(this.tenant, sandboxId));
  }

  /**
   * Where a job stands: its final record when it has finished (KV, then R2), otherwise its
   * record as submitted, which names the coordinator that holds its state.
   */
  private async locate(jobId: string): Promise<{ final: JobRecord } | { submitted: JobRecord } | undefined> {
    const final = await this.store.readFinished(jobId);
    if (final) return live(final) ? { final } : undefined;
    const submitted = await this.store.readSubmitted(jobId);
    return submitted && live(submitted) ? { submitted } : undefined;
  }

  /**
   * Cancels a job: a queued one ends at once (it will never run). For a running one its
   * coordinator stores the cancel and ends the command now; its runner then ends the job.
   */
  async cancel(jobId: string): Promise<{ record: JobRecord; outcome: "cancelled" | "cancelling" }> {
    const found = await this.locate(jobId);
    if (!found) throw notFound(jobId);
    if ("final" in found) throw finishedAlready(found.final);
    const coordinator = this.coordinator(found.submitted.sandboxId);
    let result = await coordinator.cancel(jobId);
    if (result.outcome === "unknown") {
      // Still on its way through the queue: its coordinator takes it now, and ends it.
      await coordinator.enqueue([{ submitted: found.submitted, leftovers: true }]);
      result = await coordinator.cancel(jobId);
    }
    if (result.outcome === "unknown") throw notFound(jobId);
    if (result.outcome === "finished") throw finishedAlready(result.record);
    return { record: result.record, outcome: result.outcome };
  }

  /** A page of a sandbox's jobs, newest first, from its coordinator. */
  async list(sandboxId: string, options: { status?: JobStatus; limit: number; cursor?: string }) {
    return this.coordinator(sandboxId).list({ status: options.status, limit: options.limit, cursor: options.cursor });
  }

  async get(jobId: string): Promise<JobRecord> {
    const found = await this.locate(jobId);
    if (!found) throw notFound(jobId);
    if ("final" in found) return found.final;
    return (await this.coordinator(found.submitted.sandboxId).job(jobId)) ?? found.submitted;
  }

  /** Several jobs of known sandboxes as they stand: one call per sandbox, whatever their number. */
  async getMany(jobs: { jobId: string; sandboxId: string }[]): Promise<JobRecord[]> {
    return this.perSandbox(jobs, (coordinator, jobIds) => coordinator.jobs(jobIds));
  }

  /**
   * Waits until every one of the jobs (of known sandboxes) has finished or `waitMs` has passed:
   * one wait per sandbox, on the coordinator that holds their state and wakes it when they end.
   */
  async waitForMany(jobs: { jobId: string; sandboxId: string }[], waitMs: number): Promise<JobRecord[]> {
    const deadline = Date.now() + waitMs;
    return this.perSandbox(jobs, async (coordinator, jobIds) => {
      for (;;) {
        try {
          return await coordinator.waitForJobs(jobIds, Math.max(0, deadline - Date.now()));
        } catch (error) {
          // The coordinator was reset mid-wait: its table still holds the truth; ask again.
          if (Date.now() >= deadline) throw error;
          console.warn("coordinator unavailable during a wait; asking again", error);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    });
  }

  /** Cancels several jobs of known sandboxes: one call per sandbox. */
  async cancelMany(jobs: { jobId: string; sandboxId: string }[]): Promise<void> {
    const bySandbox = groupBySandbox(jobs);
    await Promise.all([...bySandbox].map(([sandboxId, jobIds]) => this.coordinator(sandboxId).cancelJobs(jobIds)));
  }

  /** Waits until the job has finished or `waitMs` has passed; its coordinator wakes the wait when it ends. */
  async waitFor(jobId: string, waitMs: number): Promise<JobRecord> {
    const found = await this.locate(jobId);
    if (!found) throw notFound(jobId);
    if ("final" in found) return found.final;
    const [record] = await this.waitForMany([{ jobId, sandboxId: found.submitted.sandboxId }], waitMs);
    return record ?? found.submitted;
  }

  /**
   * Asks each sandbox's coordinator about its jobs in one call, in the given order; a job a
   * coordinator does not know yet (still on its way through the queue) reads as submitted.
   */
  private async perSandbox(
    jobs: { jobId: string; sandboxId: string }[],
    ask: (coordinator: CoordinatorStub, jobIds: string[]) => Promise<(JobRecord | null)[]>,
  ): Promise<JobRecord[]> {
    const found = new Map<string, JobRecord>();
    await Promise.all(
      [...groupBySandbox(jobs)].map(async ([sandboxId, jobIds]) => {
        const records = await ask(this.coordinator(sandboxId), jobIds);
        await Promise.all(
          jobIds.map(async (jobId, index) => {
            const record = records[index] ?? (await this.store.readSubmitted(jobId));
            if (record) found.set(jobId, record);
          }),
        );
      }),
    );
    return jobs.flatMap(({ jobId }) => {
      const record = found.get(jobId);
      return record && live(record) ? [record] : [];
    });
  }
}

function fitsInline(request: JobRequest): boolean {
  return new TextEncoder().encode(JSON.stringify(request)).byteLength <= INLINE_REQUEST_MAX_BYTES;
}

function groupBySandbox(jobs: { jobId: string; sandboxId: string }[]): Map<string, string[]> {
  const bySandbox = new Map<string, string[]>();
  for (const { jobId, sandboxId } of jobs) bySandbox.set(sandboxId, [...(bySandbox.get(sandboxId) ?? []), jobId]);
  return bySandbox;
}

/** Within its retention. */
function live(record: JobRecord): boolean {
  return Date.parse(record.expiresAt) > Date.now();
}

function notFound(jobId: string): ApiError {
  return new ApiError(404, ErrorCode.JOB_NOT_FOUND, `No job ${jobId} (unknown, or past its retention)`);
}

function finishedAlready(record: JobRecord): ApiError {
  return new ApiError(409, ErrorCode.JOB_FINISHED, `Job ${record.id} has already finished (${record.status}); there is nothing to cancel`);
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
