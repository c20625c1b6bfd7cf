/**
 * Job requests (what a client submits) and job records (what it polls). The API validates
 * with these, the consumer re-validates what it reads back from storage, and the OpenAPI
 * document is generated from them.
 */
import { z } from "@hono/zod-openapi";
import { CacheOutcome, CacheSpec } from "./cache";
import { SandboxId, TenantId, WorkspaceDirPath, WorkspaceFilePath } from "./ids";
import { SecretName } from "./secrets";

/**
 * A job runs inside one invocation of its sandbox coordinator's alarm, which Cloudflare limits to
 * 15 minutes of wall clock; a minute of that is kept for claiming the job and uploading outputs.
 */
export const MAX_TIMEOUT_MS = 14 * 60 * 1000;
export const DEFAULT_TIMEOUT_MS = 60 * 1000;
/** A run job's command runs at most this many more times after a failed try. */
export const MAX_RETRIES = 5;
/** Largest request body the API accepts: a file write's content travels through R2, not the queue. */
export const MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024;

/**
 * Every run's command gets this variable, its run id the value; what it leaves running usually
 * carries it too, and is ended by it (sandbox/childCommand.ts). A job's env may not set it.
 */
export const RUN_MARKER_VARIABLE = "ARTIFACT_SANDBOX_RUN";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const EnvVars = z.record(z.string(), z.string().max(100_000)).superRefine((env, ctx) => {
  for (const name of Object.keys(env)) {
    if (!ENV_NAME.test(name))
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `Environment variable names must match [A-Za-z_][A-Za-z0-9_]*; "${name}" does not`,
      });
    if (name === RUN_MARKER_VARIABLE)
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `${RUN_MARKER_VARIABLE} is set by the service for every run; choose another name`,
      });
  }
});

const GlobPattern = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith("/"), { message: "Artifact patterns are relative to cwd: drop the leading '/'" })
  .refine((p) => !p.split("/").includes(".."), { message: "Artifact patterns must not contain '..': they match inside cwd only" });

/**
 * Artifacts of another job of the same tenant, copied in before the command runs: `from` is a
 * job of the same batch by name, or any job by ID; it must have succeeded.
 */
export const JobInput = z
  .object({
    from: z.string().min(1).max(64),
    artifacts: z.array(GlobPattern).min(1).max(64).default(["**"]),
    path: WorkspaceDirPath.default("/workspace"),
  })
  .strict();
export type JobInput = z.infer<typeof JobInput>;

export const RunJobRequest = z
  .object({
    type: z.literal("run"),
    command: z.string().trim().min(1, "command must not be blank").max(100_000),
    cwd: WorkspaceDirPath.default("/workspace"),
    env: EnvVars.default({}),
    stdin: z.string().max(MAX_REQUEST_BODY_BYTES).optional(),
    // The limit first: only a field's first issue is reported (api/errors.ts), and int() also bounds a number.
    timeoutMs: z
      .number()
      .max(
        MAX_TIMEOUT_MS,
        "timeoutMs is at most 840000 (14 minutes: a job, its uploads included, must fit in the 15 minutes its runner is given)",
      )
      .int()
      .min(1)
      .default(DEFAULT_TIMEOUT_MS),
    /** Runs again after a non-zero exit or a kill by signal (never after a timeout), in the same sandbox. */
    retries: z
      .number()
      .max(MAX_RETRIES, `retries is at most ${MAX_RETRIES} (each retry runs the command again in the same sandbox)`)
      .int()
      .min(0)
      .default(0),
    artifacts: z.array(GlobPattern).max(64, "At most 64 artifact patterns").default([]),
    /** Artifacts of finished jobs copied into this job's sandbox before its command runs. */
    inputs: z.array(JobInput).max(16, "At most 16 inputs").default([]),
    /** The tenant's secrets (PUT /v1/secrets/{name}) the command gets as environment variables; masked in its output. */
    secrets: z.array(SecretName).max(32, "At most 32 secrets").default([]),
    /** Directories restored before the command and saved after a success that missed their key (schemas/cache.ts). */
    cache: z.array(CacheSpec).max(4, "At most 4 caches").default([]),
    /**
     * Kept so that older clients' requests still validate: every sandbox has outbound network (a
     * Cloudflare container always does), so only `true` is accepted.
     */
    network: z
      .literal(true, {
        error:
          "network cannot be switched off per job: sandboxes have outbound internet (never the host's loopback or private networks); " +
          "an operator turns it off for the whole local host with SANDBOX_NETWORK=none",
      })
      .optional(),
  })
  .strict()
  .refine((job) => !job.secrets.some((name) => Object.hasOwn(job.env, name)), {
    message: "A secret's name is also in env; a variable comes from one or the other",
    path: ["secrets"],
  })
  // Every try may use all of timeoutMs, and all of them must fit in the runner's 14 minutes.
  // Not said again when timeoutMs or retries alone is past its limit (that field says so).
  .refine((job) => commandBudgetMs(job) <= MAX_TIMEOUT_MS || job.timeoutMs > MAX_TIMEOUT_MS || job.retries > MAX_RETRIES, {
    message: `(retries + 1) * timeoutMs is at most ${MAX_TIMEOUT_MS} (14 minutes: every try may use all of timeoutMs, and all of them must fit in the 15 minutes a job's runner is given)`,
    path: ["retries"],
  })
  .openapi("RunJobRequest");
export type RunJobRequest = z.infer<typeof RunJobRequest>;

/** The longest a run job's command may take over all its tries. */
export function commandBudgetMs(job: { timeoutMs: number; retries: number }): number {
  return (job.retries + 1) * job.timeoutMs;
}

export const FileEncoding = z.enum(["utf-8", "base64"]);

export const FileMode = z.string().regex(/^0?[0-7]{3}$/, 'mode is octal permission bits, such as "644" or "755"');

const FileWriteRequest = z
  .object({
    type: z.literal("file"),
    op: z.literal("write"),
    path: WorkspaceFilePath,
    content: z.string({ error: 'content is required for a write (use "" for an empty file)' }),
    encoding: FileEncoding.default("utf-8"),
    /** Permission bits in octal, such as "755" for a script. */
    mode: FileMode.optional(),
  })
  .strict()
  .refine((job) => job.encoding !== "base64" || /^[A-Za-z0-9+/]*={0,2}$/.test(job.content), {
    message: "content is not valid base64",
    path: ["content"],
  });
const FileReadRequest = z.object({ type: z.literal("file"), op: z.literal("read"), path: WorkspaceFilePath }).strict();
const FileDeleteRequest = z.object({ type: z.literal("file"), op: z.literal("delete"), path: WorkspaceFilePath }).strict();
/**
 * Extracts the archive uploaded with `PUT /v1/sandboxes/{id}/archive` into `path`. Only that
 * route creates it (the archive travels in the request body, not in JSON).
 */
export const ArchiveExtractRequest = z
  .object({ type: z.literal("file"), op: z.literal("extract"), path: WorkspaceDirPath, archiveBytes: z.number().int().min(0) })
  .strict();
export type ArchiveExtractRequest = z.infer<typeof ArchiveExtractRequest>;

export const FileJobRequest = z
  .discriminatedUnion("op", [FileWriteRequest, FileReadRequest, FileDeleteRequest, ArchiveExtractRequest])
  .openapi("FileJobRequest");
export type FileJobRequest = z.infer<typeof FileJobRequest>;

export const JobRequest = z.discriminatedUnion("type", [RunJobRequest, FileJobRequest]).openapi("JobRequest");
export type JobRequest = z.infer<typeof JobRequest>;

/** Many jobs in one request, across sandboxes: what a CI pipeline submits for a whole build. */
export const MAX_JOBS_PER_BATCH = 100;

/** A job's name within its batch, for `needs`. */
export const JobName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "Job names are 1-64 letters, digits, '_', '.' and '-', starting with a letter or digit");

/**
 * On what outcome of its needs a job runs: `on_success` (every need succeeded, or failed with
 * `allowFailure`), `always` (once they have all finished, whatever their outcome), `on_failure`
 * (once they have all finished, if one did not succeed). Otherwise it ends `skipped`.
 */
export const JobWhen = z.enum(["on_success", "always", "on_failure"]);
export type JobWhen = z.infer<typeof JobWhen>;

const MATRIX_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Env var name to its values: the job runs once per combination (at most the batch's size in all). */
export const Matrix = z
  .record(z.string(), z.array(z.string().min(1).max(256)).min(1).max(MAX_JOBS_PER_BATCH))
  .superRefine((matrix, ctx) => {
    const keys = Object.keys(matrix);
    if (keys.length === 0 || keys.length > 4) ctx.addIssue({ code: "custom", message: "A matrix has 1 to 4 variables" });
    for (const key of keys) {
      if (!MATRIX_KEY.test(key))
        ctx.addIssue({ code: "custom", path: [key], message: `Matrix variables are env var names; "${key}" is not` });
    }
  });
export type Matrix = z.infer<typeof Matrix>;

export const BatchEntry = z
  .object({
    sandboxId: SandboxId,
    job: JobRequest,
    /** Names this job for the `needs` of others in the batch. */
    name: JobName.optional(),
    /** Jobs of this batch that must finish before this one starts; `when` says on what outcome it then runs. */
    needs: z.array(JobName).max(MAX_JOBS_PER_BATCH).default([]),
    when: JobWhen.default("on_success"),
    /** Its failure neither skips its dependents nor fails the batch. */
    allowFailure: z.boolean().default(false),
    /** Runs the job once per combination of these values, each given as an env var; names get the values as a suffix. */
    matrix: Matrix.optional(),
  })
  .strict();
export type BatchEntry = z.infer<typeof BatchEntry>;

/**
 * The bytes of jobs a batch's matrix entries become: each copy is stored and run with the whole
 * job, stdin included. The API refuses a batch whose copies pass MAX_REQUEST_BODY_BYTES, and the
 * CLI checks the same before it submits.
 */
export function matrixCopiesBytes(entries: BatchEntry[]): number {
  let bytes = 0;
  for (const { matrix, job } of entries) {
    if (matrix === undefined) continue;
    const copies = Object.values(matrix).reduce((product, values) => product * values.length, 1);
    bytes += new TextEncoder().encode(JSON.stringify(job)).byteLength * copies;
  }
  return bytes;
}

export const BatchRequest = z
  .object({
    jobs: z
      .array(BatchEntry, {
        // A single job posted here (or to /v1/sandboxes/../jobs, which URLs resolve to this path) gets told where it goes.
        error: (issue) =>
          issue.input === undefined
            ? 'POST /v1/jobs takes a batch, {"jobs": [...]}; a single job goes to POST /v1/sandboxes/{sandboxId}/jobs'
            : undefined,
      })
      .min(1, "jobs must hold at least one job")
      .max(MAX_JOBS_PER_BATCH, `At most ${MAX_JOBS_PER_BATCH} jobs per batch`),
  })
  .strict()
  .openapi("BatchRequest");

/** `skipped`: a job it needs did not succeed, so it never ran. */
export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "timed_out", "skipped"]);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "timed_out", "skipped"];
export const isTerminal = (status: JobStatus): boolean => TERMINAL_STATUSES.includes(status);

/** What the record repeats of the request: never env values, stdin or file content. */
export const JobRequestSummary = z.union([
  z.object({
    type: z.literal("run"),
    command: z.string(),
    cwd: z.string(),
    envKeys: z.array(z.string()),
    stdinBytes: z.number().int(),
    timeoutMs: z.number().int(),
    retries: z.number().int().default(0),
    artifacts: z.array(z.string()),
    inputs: z.array(z.object({ from: z.string(), artifacts: z.array(z.string()), path: z.string() })).default([]),
    /** Names only: a secret's value is never in a record. */
    secrets: z.array(z.string()).default([]),
    cache: z.array(z.object({ key: z.string(), paths: z.array(z.string()), restoreKeys: z.array(z.string()) })).default([]),
  }),
  z.object({
    type: z.literal("file"),
    op: z.enum(["write", "read", "delete", "extract"]),
    path: z.string(),
    contentBytes: z.number().int().optional(),
    archiveBytes: z.number().int().optional(),
  }),
]);
export type JobRequestSummary = z.infer<typeof JobRequestSummary>;

export const JobError = z.object({ code: z.string(), message: z.string() });
export type JobError = z.infer<typeof JobError>;

/** Stored output: `size` bytes kept; when truncated, the head and the tail with `droppedBytes` left out between. */
export const OutputRef = z.object({ size: z.number().int(), truncated: z.boolean(), droppedBytes: z.number().int().default(0) });
export type OutputRef = z.infer<typeof OutputRef>;

/** What a regular file's permission bits default to: records written before modes were kept have none. */
export const DEFAULT_ARTIFACT_MODE = 0o644;

export const ArtifactRef = z.object({
  path: z.string(),
  size: z.number().int(),
  contentType: z.string(),
  sha256: z.string(),
  /** Permission bits as a number (493 is 0o755); the archive download writes them into its tar headers. */
  mode: z.number().int().min(0).max(0o7777).default(DEFAULT_ARTIFACT_MODE).openapi({
    description: "Permission bits as a number (493 is 0o755, an executable); 420 (0o644) for jobs recorded before modes were kept",
  }),
});
export type ArtifactRef = z.infer<typeof ArtifactRef>;

/**
 * Where all of an attempt's artifacts are (storage/artifactIndex.ts): one pack object and index
 * pages of up to 1,000 entries in path order. The record lists only the first of them.
 */
export const ArtifactIndex = z.object({
  /** Every artifact collected, and their bytes together. */
  files: z.number().int(),
  bytes: z.number().int(),
  /** The first path of each index page, in order: which page holds a path, without reading them all. */
  pageFirstPaths: z.array(z.string()),
});
export type ArtifactIndex = z.infer<typeof ArtifactIndex>;

/** One run of a job's command; `signal` names the signal that killed it (exit code 128 + its number). */
export const CommandTry = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  durationMs: z.number().int(),
  timedOut: z.boolean(),
});
export type CommandTry = z.infer<typeof CommandTry>;

export const SkippedArtifact = z.object({ path: z.string(), reason: z.string() });
export type SkippedArtifact = z.infer<typeof SkippedArtifact>;

/** Entries an archive upload wrote (paths relative to its directory, at most 1,000 listed) and refused. */
export const Extracted = z.object({
  /** Entries in the archive; `written` lists the first 1,000 unpacked, `refused` the first 1,000 refused. */
  entries: z.number().int(),
  written: z.array(z.string()),
  refused: z.array(z.object({ path: z.string(), reason: z.string() })),
  /** Every entry refused, listed or not (absent from records made before it was counted). */
  refusedCount: z.number().int().optional(),
});
export type Extracted = z.infer<typeof Extracted>;

/** Where a job's output stands in bytes of stdout and of stderr (the ids of its live-log events). */
export const OutputOffsets = z.object({ stdout: z.number().int().min(0), stderr: z.number().int().min(0) });
export type OutputOffsets = z.infer<typeof OutputOffsets>;

/** The job as stored (KV and R2). URLs are added when the API answers, from the request's origin. */
export const JobRecord = z.object({
  id: z.string(),
  /** The tenant whose API key submitted the job: only its keys reach the job. */
  tenant: TenantId,
  sandboxId: SandboxId,
  type: z.enum(["run", "file"]),
  request: JobRequestSummary,
  status: JobStatus,
  exitCode: z.number().int().nullable(),
  /** The signal that killed the last try's command, e.g. "SIGSEGV"; null when it exited by itself. */
  signal: z.string().nullable().default(null),
  /** Every run of a run job's command, in order; outputs and artifacts are the last one's. Empty for file jobs. */
  tries: z.array(CommandTry).default([]),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().int().nullable(),
  attempts: z.number().int(),
  error: JobError.nullable(),
  stdout: OutputRef.nullable(),
  stderr: OutputRef.nullable(),
  /** The first artifacts in path order (up to 200; `artifactIndex` counts them all). */
  artifacts: z.array(ArtifactRef),
  skippedArtifacts: z.array(SkippedArtifact),
  /** Null when the job collected no artifacts. */
  artifactIndex: ArtifactIndex.nullable().default(null),
  expiresAt: z.string(),
  /** Until when the runner that set `running` owns the job; its heartbeat renews it while the command runs. */
  leaseUntil: z.string().nullable(),
  /** Set by a cancel while the job runs; checked when it is claimed, while it runs and when it finishes. */
  cancelRequested: z.boolean().default(false),
  /** What an archive upload wrote into the sandbox, and the entries it refused. */
  extracted: Extracted.nullable().default(null),
  /** The batch (`POST /v1/jobs`) the job came in, its name there, and the IDs of the jobs it needs. */
  batchId: z.string().nullable().default(null),
  name: z.string().nullable().default(null),
  needs: z.array(z.string()).default([]),
  /** When a batch job runs after its needs, and whether its failure is allowed (see BatchEntry). */
  when: JobWhen.default("on_success"),
  allowFailure: z.boolean().default(false),
  /** Each of a run job's caches: hit, partial hit or miss, and whether it was saved. */
  caches: z.array(CacheOutcome).default([]),
  /**
   * Why a queued job has not started: earlier jobs of its sandbox ahead of it, or jobs it needs
   * still unfinished. Null when nothing holds it (or `error` says what does, such as waiting for
   * a container), and once it runs.
   */
  waitingReason: z.string().nullable().default(null),
  /**
   * Internal: where the stored stdout and stderr (the last try's) begin among the offsets of the
   * job's live-log event ids, which run on across its tries and attempts (coordinator/liveLog.ts
   * says how far across attempts). Null: at 0.
   */
  storedOutputAt: OutputOffsets.nullable().default(null),
});
export type JobRecord = z.infer<typeof JobRecord>;

/** The record's fields that are bookkeeping (its runner's lease, live-log offsets): never in an API answer, event or webhook. */
export const INTERNAL_JOB_FIELDS = { leaseUntil: true, storedOutputAt: true } as const;
export const PublicJobRecord = JobRecord.omit(INTERNAL_JOB_FIELDS);
export type PublicJobRecord = z.infer<typeof PublicJobRecord>;

/** The record without its internal fields, for anything a user sees (parsing drops every field the mask leaves out). */
export function withoutInternals(record: JobRecord): PublicJobRecord {
  return PublicJobRecord.parse(record);
}

/** A just-submitted job's record: queued, nothing run yet. */
export function newJobRecord(
  id: string,
  sandbox: { tenant: string; sandboxId: string },
  request: JobRequest,
  now: number,
  retentionSeconds: number,
  pipeline: Pick<JobRecord, "batchId" | "name" | "needs"> & Partial<Pick<JobRecord, "when" | "allowFailure">> = {
    batchId: null,
    name: null,
    needs: [],
  },
): JobRecord {
  return {
    id,
    tenant: sandbox.tenant,
    sandboxId: sandbox.sandboxId,
    type: request.type,
    request: summarizeRequest(request),
    status: "queued",
    exitCode: null,
    signal: null,
    tries: [],
    createdAt: new Date(now).toISOString(),
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    attempts: 0,
    error: null,
    stdout: null,
    stderr: null,
    artifacts: [],
    skippedArtifacts: [],
    artifactIndex: null,
    expiresAt: new Date(now + retentionSeconds * 1000).toISOString(),
    leaseUntil: null,
    cancelRequested: false,
    extracted: null,
    when: "on_success",
    allowFailure: false,
    caches: [],
    waitingReason: null,
    storedOutputAt: null,
    ...pipeline,
  };
}

export function summarizeRequest(request: JobRequest): JobRequestSummary {
  if (request.type === "run") {
    return {
      type: "run",
      command: request.command,
      cwd: request.cwd,
      envKeys: Object.keys(request.env).sort(),
      stdinBytes: new TextEncoder().encode(request.stdin ?? "").byteLength,
      timeoutMs: request.timeoutMs,
      retries: request.retries,
      artifacts: request.artifacts,
      inputs: request.inputs,
      secrets: request.secrets,
      cache: request.cache,
    };
  }
  if (request.op === "write") {
    return { type: "file", op: "write", path: request.path, contentBytes: decodeFileContent(request).byteLength };
  }
  if (request.op === "extract") return { type: "file", op: "extract", path: request.path, archiveBytes: request.archiveBytes };
  return { type: "file", op: request.op, path: request.path };
}

export function decodeFileContent(request: { content: string; encoding: "utf-8" | "base64" }): Uint8Array {
  if (request.encoding === "utf-8") return new TextEncoder().encode(request.content);
  const binary = atob(request.content);
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** The job as the API answers it: the stored record without internals, with download URLs. */
export const JobView = JobRecord.omit({
  ...INTERNAL_JOB_FIELDS,
  stdout: true,
  stderr: true,
  artifacts: true,
  artifactIndex: true,
})
  .extend({
    stdout: OutputRef.extend({ url: z.string() }).nullable(),
    stderr: OutputRef.extend({ url: z.string() }).nullable(),
    /** The first artifacts in path order (up to 200); `artifactIndex.listUrl` pages through all of them. */
    artifacts: z.array(ArtifactRef.extend({ url: z.string() })),
    /** How many artifacts there are and their bytes, and where to list them all; null when there are none. */
    artifactIndex: z.object({ files: z.number().int(), bytes: z.number().int(), listUrl: z.string() }).nullable(),
    /** Every artifact as one .tar.gz (an empty archive when there are none); 409 until the job finishes. */
    archiveUrl: z.string(),
    /** When the download URLs above stop working (they need no API key until then); null when they are unsigned. */
    urlsExpireAt: z.string().nullable(),
  })
  .openapi("Job");
export type JobView = z.infer<typeof JobView>;

export const JobPageView = z.object({ jobs: z.array(JobView), nextCursor: z.string().nullable() }).openapi("JobPage");

/** A page of `GET /v1/jobs/{id}/artifacts`: up to 1,000 of a job's artifacts in path order. */
export const ArtifactPageView = z
  .object({
    artifacts: z.array(ArtifactRef.extend({ url: z.string() })),
    /** All of the job's artifacts, on every page. */
    files: z.number().int(),
    /** Pass as `cursor` for the next page; null on the last. */
    nextCursor: z.string().nullable(),
    urlsExpireAt: z.string().nullable(),
  })
  .openapi("ArtifactPage");
export type ArtifactPageView = z.infer<typeof ArtifactPageView>;
/** A batch as a whole: `succeeded` once every job has, `failed` once all have finished and one did not. */
export const BatchStatus = z.enum(["queued", "running", "succeeded", "failed"]);
export type BatchStatus = z.infer<typeof BatchStatus>;

export const BatchView = z
  .object({ batchId: z.string(), status: BatchStatus, createdAt: z.string(), jobs: z.array(JobView) })
  .openapi("Batch");
export type BatchView = z.infer<typeof BatchView>;

/** A skipped job whose `when` did not hold (an `on_failure` job when nothing failed): not a failure of its batch. */
export const WHEN_NOT_MET = "WHEN_NOT_MET";

/** Whether a finished job counts as a success for its batch: it succeeded, its failure is allowed, or its `when` did not hold. */
export function passedForBatch(job: Pick<JobRecord, "status" | "allowFailure" | "error">): boolean {
  if (job.status === "succeeded") return true;
  if (job.status === "skipped") return job.error?.code === WHEN_NOT_MET;
  return isTerminal(job.status) && job.allowFailure;
}

/** A batch's overall status from its jobs'. */
export function batchStatus(jobs: Pick<JobRecord, "status" | "allowFailure" | "error">[]): BatchStatus {
  const statuses = jobs.map((job) => job.status);
  if (statuses.every(isTerminal)) return jobs.every(passedForBatch) ? "succeeded" : "failed";
  return statuses.every((status) => status === "queued") ? "queued" : "running";
}
