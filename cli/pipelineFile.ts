/**
 * A pipeline file (YAML or JSON): named jobs across sandboxes with `needs`, turned into one batch
 * (`POST /v1/jobs`). Each step is either a `command` with the run job's fields under short
 * names, or a whole `job` as the API takes it; the API's own schemas check both.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { BatchSubmission } from "../client";
import { SandboxId } from "../schemas/ids";
import { JobInput, JobName, JobRequest } from "../schemas/job";
import { UsageError } from "./failure";

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
    /** Milliseconds, as the API's timeoutMs. */
    timeout: z.number().int().optional(),
    retries: z.number().int().optional(),
  })
  .strict()
  .refine((step) => (step.command === undefined) !== (step.job === undefined), { message: "give either command or job, not both" });
type PipelineStep = z.infer<typeof PipelineStep>;

/** `{ jobs: [...] }`, or the list of jobs itself. */
const PipelineFile = z.union([z.object({ jobs: z.array(PipelineStep).min(1) }).strict(), z.array(PipelineStep).min(1)]);

export interface Pipeline {
  entries: BatchSubmission[];
}

export async function readPipeline(path: string): Promise<Pipeline> {
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
  const parsed = PipelineFile.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(file)"}: ${issue.message}`);
    throw new UsageError(`${path} is not a valid pipeline:\n  ${problems.join("\n  ")}`);
  }
  const steps = Array.isArray(parsed.data) ? parsed.data : parsed.data.jobs;
  return { entries: steps.map(toBatchEntry) };
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
