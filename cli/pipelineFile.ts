/**
 * A pipeline file (YAML or JSON): named jobs across sandboxes with `needs`, turned into one batch
 * (`POST /v1/jobs`), and directories to upload before it. Each step is either a `command` with
 * the run job's fields under short names, or a whole `job` as the API takes it; the API's own
 * schemas check both. `${RUN_ID}` and `${env:NAME}` are replaced first (cli/interpolate.ts), and
 * every problem is reported at its path (`jobs.2.timeout: ...`).
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { BatchSubmission } from "../client";
import { SandboxId, WorkspaceDirPath } from "../schemas/ids";
import { JobInput, JobName, JobRequest, MAX_TIMEOUT_MS } from "../schemas/job";
import { parseDuration } from "./duration";
import { UsageError } from "./failure";
import { type Interpolation, interpolate } from "./interpolate";

/** `90s`, `5m`, `1h30m`, `1500ms`, or a number of milliseconds. */
const Duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === "number" ? value : parseDuration(value);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms <= 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration such as 90s, 5m or 1h30m (or milliseconds), got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  if (ms > MAX_TIMEOUT_MS) ctx.addIssue({ code: "custom", message: `at most 14m (${MAX_TIMEOUT_MS} ms), got ${JSON.stringify(value)}` });
  return ms;
});

const PipelineStep = z
  .object({
    name: JobName,
    sandbox: SandboxId,
    command: z.string().optional(),
    /** A job exactly as `POST /v1/sandboxes/{id}/jobs` takes it, instead of `command` and its fields. */
    job: JobRequest.optional(),
    needs: z.array(JobName).default([]),
    inputs: z.array(JobInput).optional(),
    artifacts: z.array(z.string()).optional(),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    timeout: Duration.optional(),
    retries: z.number().int().optional(),
  })
  .strict()
  .refine((step) => (step.command === undefined) !== (step.job === undefined), { message: "give either command or job, not both" });
type PipelineStep = z.infer<typeof PipelineStep>;

/** A local directory uploaded into a sandbox before the batch is submitted. */
const UploadStep = z
  .object({
    sandbox: SandboxId,
    /** Relative to the pipeline file's directory. */
    from: z.string().min(1),
    to: WorkspaceDirPath.default("/workspace"),
    exclude: z.array(z.string()).default([]),
    /** Remove what the sandbox has under `to` and the directory does not. */
    sync: z.boolean().default(false),
  })
  .strict();
export type UploadStep = z.infer<typeof UploadStep>;

/** `{ jobs: [...], upload: [...] }`, or the list of jobs itself. */
const PipelineFile = z.preprocess(
  (document) => (Array.isArray(document) ? { jobs: document } : document),
  z.object({ upload: z.array(UploadStep).default([]), jobs: z.array(PipelineStep).min(1) }).strict(),
);

export interface Pipeline {
  entries: BatchSubmission[];
  /** Directories to upload first, with `from` resolved against the pipeline file's directory. */
  uploads: UploadStep[];
}

export async function readPipeline(path: string, values: Interpolation): Promise<Pipeline> {
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new UsageError(`Cannot read pipeline file ${path}: ${error instanceof Error ? error.message : error}`);
  });
  let document: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    document = parseYaml(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid YAML or JSON: ${error instanceof Error ? error.message : error}`);
  }
  const interpolated = interpolate(document, values);
  const parsed = PipelineFile.safeParse(interpolated.value);
  const problems = [
    ...interpolated.problems.map((problem) => `${problem.path}: ${problem.message}`),
    // A value whose placeholder could not be filled is reported once, for that reason.
    ...(parsed.success ? [] : parsed.error.issues)
      .map((issue) => ({ path: issue.path.join(".") || "(file)", message: issue.message }))
      .filter((issue) => !interpolated.problems.some((problem) => problem.path === issue.path))
      .map((issue) => `${issue.path}: ${issue.message}`),
  ];
  if (!parsed.success || problems.length > 0) throw new UsageError(`${path} is not a valid pipeline:\n  ${problems.join("\n  ")}`);
  const base = dirname(resolve(path));
  return {
    entries: parsed.data.jobs.map(toBatchEntry),
    uploads: parsed.data.upload.map((upload) => ({ ...upload, from: resolve(base, upload.from) })),
  };
}

function toBatchEntry(step: PipelineStep): BatchSubmission {
  const job = step.job ?? {
    type: "run" as const,
    command: step.command ?? "",
    cwd: step.cwd,
    env: step.env,
    timeoutMs: step.timeout,
    retries: step.retries,
    artifacts: step.artifacts,
    inputs: step.inputs,
  };
  return { name: step.name, sandboxId: step.sandbox, needs: step.needs, job };
}
