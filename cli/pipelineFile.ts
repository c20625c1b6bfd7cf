/**
 * A pipeline file (YAML or JSON): named jobs across sandboxes with `needs`, turned into one batch
 * (`POST /v1/jobs`), and directories to upload before it. Each step is either a `command` with
 * the run job's fields under the same names (`timeout` for `timeoutMs`), or a whole `job` as the
 * API takes it, beside the batch entry's own fields (`needs`, `when`, `allowFailure`, `matrix`).
 * A command step may take its stdin from a file (`stdinFile`, beside the pipeline file), read
 * when the file is.
 * Every field is the API's own schema, and the whole entry is checked with it too, so the file
 * takes what the API takes. `${RUN_ID}` and `${env:NAME}` are replaced first
 * (cli/interpolate.ts), and every problem is reported at its path (`jobs.2.timeout: ...`).
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type BatchSubmission, batchRequestBody } from "../client";
import { WorkspaceDirPath } from "../schemas/ids";
import { BatchEntry, JobName, MAX_REQUEST_BODY_BYTES, MAX_TIMEOUT_MS, matrixCopiesBytes, RunJobRequest } from "../schemas/job";
import { parseDuration } from "./duration";
import { UsageError } from "./failure";
import { type Interpolation, interpolate } from "./interpolate";
import { readStdinText } from "./jobStdin";

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

/**
 * The run job's fields a step may give beside `command`: all of them but `type`, `command`,
 * `timeoutMs` (written `timeout`, a duration) and `network` (kept in the API for older clients).
 * A new object from the shape, since zod refuses `.pick()` on a schema with refinements.
 */
const RunFields = z
  .object(RunJobRequest.shape)
  .pick({ cwd: true, env: true, stdin: true, retries: true, artifacts: true, inputs: true, secrets: true, cache: true })
  .partial();

const StepFields = BatchEntry.pick({ needs: true, when: true, allowFailure: true, matrix: true })
  .extend(RunFields.shape)
  .extend({
    name: JobName,
    sandbox: BatchEntry.shape.sandboxId,
    command: z.string().optional(),
    timeout: Duration.optional(),
    /** A file whose bytes (UTF-8 text) are the command's stdin, relative to the pipeline file's directory. */
    stdinFile: z.string().min(1).optional(),
    /** A job exactly as `POST /v1/sandboxes/{id}/jobs` takes it, instead of `command` and its fields. */
    job: BatchEntry.shape.job.optional(),
  })
  .strict();
type StepFields = z.infer<typeof StepFields>;

/** The run job's fields written beside `job`, which holds its own. */
function runFieldsBesideJob(raw: unknown): string[] {
  if (raw === null || typeof raw !== "object" || !("job" in raw)) return [];
  return [...Object.keys(RunFields.shape), "timeout"].filter((key) => Object.hasOwn(raw, key));
}

/** A step as the batch entry it stands for, checked whole by the API's schema (its cross-field rules included). */
const PipelineStep = z
  .preprocess((raw, ctx) => {
    const misplaced = runFieldsBesideJob(raw);
    if (misplaced.length > 0)
      ctx.addIssue({ code: "custom", path: [misplaced[0] ?? ""], message: `with job, write ${misplaced.join(", ")} inside job` });
    return raw;
  }, StepFields)
  .transform((step, ctx): PlannedStep => {
    if ((step.command === undefined) === (step.job === undefined)) {
      ctx.addIssue({ code: "custom", message: "give either command or job, not both" });
      return z.NEVER;
    }
    if (step.job !== undefined && step.stdinFile !== undefined) {
      ctx.addIssue({ code: "custom", path: ["stdinFile"], message: "stdinFile goes with command; with job, give stdin inside job" });
      return z.NEVER;
    }
    if (step.stdin !== undefined && step.stdinFile !== undefined) {
      ctx.addIssue({ code: "custom", path: ["stdinFile"], message: "give either stdin or stdinFile, not both" });
      return z.NEVER;
    }
    const checked = BatchEntry.safeParse(toBatchEntry(step));
    if (checked.success) return { entry: checked.data, stdinFile: step.stdinFile };
    for (const issue of checked.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: stepPath(step, issue.path) });
    return z.NEVER;
  });

/** A step's batch entry, and the file its stdin is still to be read from. */
interface PlannedStep {
  entry: BatchEntry;
  stdinFile: string | undefined;
}

/** Where a problem the API's schema found is in the step as written: `job.timeoutMs` of a command step is its `timeout`. */
function stepPath(step: StepFields, path: PropertyKey[]): PropertyKey[] {
  if (path[0] === "sandboxId") return ["sandbox", ...path.slice(1)];
  if (path[0] !== "job" || step.job !== undefined) return path;
  const [, field, ...rest] = path;
  if (field === undefined) return [];
  return [field === "timeoutMs" ? "timeout" : field, ...rest];
}

/** A local directory uploaded into a sandbox before the batch is submitted. */
const UploadStep = z
  .object({
    sandbox: BatchEntry.shape.sandboxId,
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
  /** Steps whose stdin comes from a file: the step's index in `entries` and the path as written (`readPipeline` reads them into the entries). */
  stdinFiles: Array<{ step: number; path: string }>;
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
  const pipeline = pipelineFrom(document, values);
  if ("problems" in pipeline) throw new UsageError(`${path} is not a valid pipeline:\n  ${pipeline.problems.join("\n  ")}`);
  const base = dirname(resolve(path));
  const entries = [...pipeline.entries];
  for (const { step, path: stdinPath } of pipeline.stdinFiles) {
    const entry = entries[step];
    // Only a command step takes stdinFile (the schema refuses it beside a job), and a command step is a run job.
    if (entry?.job.type !== "run") throw new Error(`jobs.${step}: a stdinFile on a step that is not a run job`);
    const file = resolve(base, stdinPath);
    const stdin = await readStdinText(createReadStream(file), `jobs.${step}.stdinFile ${file}`);
    entries[step] = { ...entry, job: { ...entry.job, stdin } };
  }
  refuseOversizedBatch(entries, path, pipeline.stdinFiles.length > 0);
  return { ...pipeline, entries, uploads: pipeline.uploads.map((upload) => ({ ...upload, from: resolve(base, upload.from) })) };
}

/** A batch the API would answer 413 is refused before anything is uploaded or submitted. */
function refuseOversizedBatch(entries: BatchSubmission[], path: string, withStdinFiles: boolean): void {
  const bytes = Buffer.byteLength(batchRequestBody(entries));
  if (bytes > MAX_REQUEST_BODY_BYTES) {
    throw new UsageError(
      `${path} makes a batch request of ${bytes} bytes${withStdinFiles ? " with its stdin files" : ""}, over the ${MAX_REQUEST_BODY_BYTES} the API takes ` +
        "(stdin travels JSON-escaped: a newline, tab, quote or backslash takes 2 bytes, another control character 6)",
    );
  }
  // As the API counts them: the jobs as it parses them, one copy per matrix combination.
  const parsed = z.array(BatchEntry).safeParse(entries);
  const copiesBytes = parsed.success ? matrixCopiesBytes(parsed.data) : 0;
  if (copiesBytes > MAX_REQUEST_BODY_BYTES) {
    throw new UsageError(
      `${path}: its matrix steps' copies come to ${copiesBytes} bytes of jobs (each copy carries the whole step, stdin included), over the ${MAX_REQUEST_BODY_BYTES} the API takes; ` +
        "write a large input to the sandbox once (an upload, or a step that fetches it) and read it from the workspace",
    );
  }
}

/** A parsed pipeline document as batch entries and uploads (`from` as written), or every problem with its path. */
export function pipelineFrom(document: unknown, values: Interpolation): Pipeline | { problems: string[] } {
  const interpolated = interpolate(document, values);
  const parsed = PipelineFile.safeParse(interpolated.value);
  const problems = [
    ...interpolated.problems.map((problem) => `${problem.path}: ${problem.message}`),
    // A value whose placeholder could not be filled is reported once, for that reason.
    ...(parsed.success ? [] : parsed.error.issues)
      .map((issue) => ({ path: issue.path.map(String).join(".") || "(file)", message: issue.message }))
      .filter((issue) => !interpolated.problems.some((problem) => problem.path === issue.path))
      .map((issue) => `${issue.path}: ${issue.message}`),
  ];
  if (!parsed.success || problems.length > 0) return { problems };
  const steps = parsed.data.jobs;
  return {
    entries: steps.map((step) => step.entry),
    uploads: parsed.data.upload,
    stdinFiles: steps.flatMap((step, index) => (step.stdinFile === undefined ? [] : [{ step: index, path: step.stdinFile }])),
  };
}

/** The step as a batch entry, before the API's schema has checked it whole. */
function toBatchEntry(step: StepFields): BatchSubmission {
  const { name, sandbox, needs, when, allowFailure, matrix, command, timeout, job, stdinFile: _readLater, ...runFields } = step;
  const entry: BatchSubmission = {
    name,
    sandboxId: sandbox,
    needs,
    when,
    allowFailure,
    job: job ?? { type: "run", command: command ?? "", ...runFields, ...(timeout === undefined ? {} : { timeoutMs: timeout }) },
  };
  return matrix === undefined ? entry : { ...entry, matrix };
}
