/**
 * Runs one job's work in its sandbox and describes the outcome; it does not touch the job
 * record. Sandbox faults propagate as SandboxOperationError for the caller to retry or fail.
 */

import type { CapturedOutput } from "../sandbox/cappedOutput";
import { type ExecRequest, type ExecResult, SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { relativeTo, WORKSPACE_ROOT } from "../schemas/ids";
import {
  type ArchiveExtractRequest,
  decodeFileContent,
  type FileJobRequest,
  type JobRecord,
  type JobRequest,
  type OutputRef,
  type RunJobRequest,
} from "../schemas/job";
import { r2Keys } from "../storage/layout";
import { type JobAttempt, putOutput } from "../storage/outputs";
import { ArchiveTooLargeError, planExtraction } from "./archivePlan";
import { type ArtifactLimits, collectArtifacts, storeSingleArtifact } from "./artifacts";
import { type CacheContext, restoreCaches, saveCaches } from "./caches";
import { runCommandTries, succeeded } from "./commandTries";
import { checkInSandbox, extractedRecord, repackAccepted, unpackInSandbox } from "./extractArchive";
import { copyInputs, type InputContext } from "./inputs";
import { loadSecrets, maskedListener, type SecretMasker, type SecretSource } from "./secrets";

/** The fields of the record that running a job decides. */
export type JobOutcome = Pick<
  JobRecord,
  "status" | "exitCode" | "signal" | "tries" | "error" | "stdout" | "stderr" | "artifacts" | "skippedArtifacts" | "artifactIndex"
> &
  Partial<Pick<JobRecord, "extracted" | "caches">>;

export interface ExecuteContext {
  /** The job and the attempt this run is: outputs are stored under it. */
  at: JobAttempt;
  sandbox: SandboxPort;
  bucket: R2Bucket;
  artifactLimits: ArtifactLimits;
  /** Aborted when the job is cancelled while its command runs. */
  signal?: AbortSignal;
  /** Receives the command's output as it is written (live logs). */
  onOutput?: ExecRequest["onOutput"];
  /** Told as each try of the command starts, after the previous try's output has all gone to `onOutput`. */
  onTryStart?: () => void;
  /** Reads a job of the same tenant: the source of an input. */
  readJob: InputContext["readJob"];
  /** The tenant's secrets a run job names (execution/secrets.ts); none can be read without it. */
  secrets?: SecretSource;
  /** The tenant's cache index a run job's `cache` uses (execution/caches.ts); without it every cache misses. */
  caches?: CacheContext;
}

export async function executeJob(context: ExecuteContext, request: JobRequest): Promise<JobOutcome> {
  await context.sandbox.prepareWorkspace();
  return request.type === "run" ? executeRun(context, request) : executeFileOp(context, request);
}

function fileOutcome(fields: Partial<JobOutcome> & Pick<JobOutcome, "status">): JobOutcome {
  return {
    exitCode: null,
    signal: null,
    tries: [],
    error: null,
    stdout: null,
    stderr: null,
    artifacts: [],
    skippedArtifacts: [],
    artifactIndex: null,
    ...fields,
  };
}

async function executeRun(context: ExecuteContext, request: RunJobRequest): Promise<JobOutcome> {
  const { at, sandbox, bucket } = context;
  const secrets = await loadSecrets(context.secrets, request.secrets);
  if ("error" in secrets) return fileOutcome({ status: "failed", error: secrets.error });
  const inputError = await copyInputs(context, request.inputs);
  if (inputError) return fileOutcome({ status: "failed", error: inputError });
  const cacheRun = { sandbox, bucket, tenant: at.tenant, jobId: at.jobId, cwd: request.cwd, caches: context.caches };
  const restored = await restoreCaches(cacheRun, request.cache);
  const live = maskedListener(secrets.masker, context.onOutput);
  const withSecrets = { ...request, env: { ...request.env, ...secrets.values } };
  // A try's output held back by the masker (a possible start of a secret) goes out before the next try starts.
  const onTryStart = () => {
    live.flush();
    context.onTryStart?.();
  };
  const tried = await runCommandTries(sandbox, withSecrets, context.signal, live.onOutput, onTryStart).finally(() => live.flush());
  const { tries, cancelled, lost } = tried;
  const result = masked(tried.last, secrets.masker);
  // Empty output is not stored: its size in the record says it all.
  await Promise.all([
    result.stdout.bytes.byteLength > 0 && putOutput(bucket, at, "stdout", result.stdout.bytes),
    result.stderr.bytes.byteLength > 0 && putOutput(bucket, at, "stderr", result.stderr.bytes),
  ]);
  if (cancelled || lost) {
    // Its output so far, no artifacts: a cancelled job is not asked for more work, and a lost one's container is gone.
    const error = lost
      ? { code: lost.code, message: lost.message }
      : { code: "CANCELLED", message: "The job was cancelled while it ran; its command was ended" };
    return {
      ...fileOutcome({ status: "failed", error }),
      tries,
      stdout: outputRef(result.stdout),
      stderr: outputRef(result.stderr),
      caches: restored,
    };
  }
  // Artifacts are collected whatever the exit status: a failing test run's report is what you want.
  const collected = await collectArtifacts(sandbox, bucket, { at, cwd: request.cwd, patterns: request.artifacts }, context.artifactLimits);
  const status = runStatus(result, request, tries.length);
  const caches = status.status === "succeeded" ? await saveCaches(cacheRun, request.cache, restored) : restored;
  return {
    ...status,
    caches,
    exitCode: result.exitCode,
    signal: result.signal,
    tries,
    stdout: outputRef(result.stdout),
    stderr: outputRef(result.stderr),
    artifacts: collected.artifacts,
    artifactIndex: collected.index,
    skippedArtifacts: collected.skipped,
  };
}

/** The job's status and error from its last try. */
function runStatus(result: ExecResult, request: RunJobRequest, tryCount: number): Pick<JobOutcome, "status" | "error"> {
  if (succeeded(result)) return { status: "succeeded", error: null };
  if (result.timedOut) {
    return {
      status: "timed_out",
      error: {
        code: "TIMEOUT",
        message: `Command ran longer than timeoutMs (${request.timeoutMs} ms) and was killed with its whole process tree${afterTries(tryCount)}`,
      },
    };
  }
  if (result.signal !== null) {
    return {
      status: "failed",
      error: {
        code: "KILLED_BY_SIGNAL",
        message: `Command was killed by ${result.signal} (exit code ${result.exitCode})${afterTries(tryCount)}`,
      },
    };
  }
  return {
    status: "failed",
    error: { code: "NONZERO_EXIT", message: `Command exited with code ${result.exitCode}${afterTries(tryCount)}` },
  };
}

function afterTries(tryCount: number): string {
  return tryCount > 1 ? ` (the last of ${tryCount} tries)` : "";
}

/** An uploaded archive (in R2 since its PUT) checked, copied into the sandbox and unpacked. */
async function executeExtract(context: ExecuteContext, request: ArchiveExtractRequest): Promise<JobOutcome> {
  const key = r2Keys.upload(context.at.tenant, context.at.jobId);
  const forPlan = await context.bucket.get(key);
  if (!forPlan) {
    return fileOutcome({ status: "failed", error: { code: "UPLOAD_MISSING", message: "The uploaded archive is gone; upload it again" } });
  }
  let plan: Awaited<ReturnType<typeof planExtraction>>;
  try {
    plan = await planExtraction(forPlan.body);
  } catch (error) {
    const message =
      error instanceof ArchiveTooLargeError
        ? error.message
        : `Not a readable .tar.gz: ${error instanceof Error ? error.message : String(error)}`;
    return fileOutcome({ status: "failed", error: { code: "INVALID_ARCHIVE", message } });
  }
  const archivePath = `/tmp/.upload-${context.at.jobId}.tar.gz`;
  const refusedInSandbox = await checkInSandbox(context.sandbox, `${archivePath}.members`, request.path, plan);
  const accepted = new Set(plan.members.filter((_, index) => !refusedInSandbox.has(index)).map((member) => member.entry));
  if (accepted.size > 0) {
    const forCopy = await context.bucket.get(key);
    if (!forCopy) throw new SandboxOperationError("SANDBOX_ERROR", "The uploaded archive vanished while it was unpacked", true);
    await context.sandbox.writeFileFromStream(archivePath, repackAccepted(forCopy.body, plan, accepted));
    await unpackInSandbox(context.sandbox, archivePath, request.path);
  }
  await context.bucket.delete(key);
  return { ...fileOutcome({ status: "succeeded" }), extracted: extractedRecord(plan, refusedInSandbox) };
}

/** The try's output with every secret value masked, as it is stored. */
function masked(result: ExecResult, masker: SecretMasker): ExecResult {
  if (!masker.active) return result;
  const mask = (output: CapturedOutput): CapturedOutput => ({ ...output, bytes: masker.maskStored(output.bytes, output.droppedBytes) });
  return { ...result, stdout: mask(result.stdout), stderr: mask(result.stderr) };
}

function outputRef(output: CapturedOutput): OutputRef {
  return { size: output.bytes.byteLength, truncated: output.droppedBytes > 0, droppedBytes: output.droppedBytes };
}

async function executeFileOp(context: ExecuteContext, request: FileJobRequest): Promise<JobOutcome> {
  const { sandbox } = context;
  try {
    if (request.op === "write") {
      await sandbox.writeFile(request.path, decodeFileContent(request));
      if (request.mode) await sandbox.setMode(request.path, request.mode);
      return fileOutcome({ status: "succeeded" });
    }
    if (request.op === "extract") return await executeExtract(context, request);
    if (request.op === "delete") {
      await sandbox.deleteFile(request.path);
      return fileOutcome({ status: "succeeded" });
    }
    // A read's result is an artifact named by its path inside the workspace.
    const path = relativeTo(WORKSPACE_ROOT, request.path) ?? request.path;
    const stored = await storeSingleArtifact(sandbox, context.bucket, context.at, request.path, path);
    return fileOutcome({ status: "succeeded", artifacts: stored.listed, artifactIndex: stored.index });
  } catch (error) {
    if (error instanceof SandboxOperationError && !error.retryable) {
      return fileOutcome({ status: "failed", error: { code: error.code, message: error.message } });
    }
    throw error;
  }
}
