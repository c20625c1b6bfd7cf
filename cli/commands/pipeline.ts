/**
 * `artifact-sandbox pipeline run <file>`: submit a pipeline file as one batch, show its jobs'
 * states as they change, save each job's artifacts under --out/<name>/, and summarize what failed
 * with the end of its output. Exits 0 only if every job succeeded.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import type { ArtifactSandboxClient, BatchView, JobView } from "../../client";
import { Backoff } from "../../client/retry";
import { isTerminal } from "../../schemas/job";
import { saveArtifacts } from "../artifacts";
import { clientFromEnvironment } from "../context";
import { ExitCode } from "../exitCodes";
import { jobBoard } from "../liveTable";
import { jobLine, lastLines, printJson } from "../output";
import { readPipeline } from "../pipelineFile";

const PipelineOptions = z.object({ out: z.string().optional(), json: z.boolean().default(false), idempotencyKey: z.string().optional() });
type PipelineOptions = z.infer<typeof PipelineOptions>;

/** How much of a failed job's output the summary shows. */
const TAIL_BYTES = 4096;
const TAIL_LINES = 15;

export function registerPipeline(program: Command): void {
  const pipeline = program.command("pipeline").description("Run several jobs across sandboxes as one pipeline (name, needs)");
  pipeline
    .command("run")
    .description("Submit a pipeline file (YAML or JSON) as one batch and follow it to the end")
    .argument("<file>", "the pipeline file: jobs with name, sandbox, command (or job), needs, artifacts, ...")
    .option("--out <dir>", "save each job's artifacts under <dir>/<job name>/")
    .option("--idempotency-key <key>", "submitting again with the same key follows the same batch instead of a new one")
    .option("--json", "print the finished batch record as JSON on stdout (progress lines go to stderr)")
    .action(async (file: string, raw: unknown) => {
      process.exitCode = await runPipeline(clientFromEnvironment(), file, PipelineOptions.parse(raw));
    });
}

async function runPipeline(client: ArtifactSandboxClient, file: string, options: PipelineOptions): Promise<number> {
  const { entries } = await readPipeline(file);
  const submitted = await client.submitBatch(entries, { idempotencyKey: options.idempotencyKey });
  const board = jobBoard(options.json ? process.stderr : process.stdout);
  let cancelled = false;
  const onInterrupt = () => {
    if (cancelled) process.exit(ExitCode.CANCELLED);
    cancelled = true;
    client.cancelBatch(submitted.batchId).catch((error: unknown) => process.stderr.write(`cancel failed: ${error}\n`));
  };
  process.on("SIGINT", onInterrupt);
  let batch: BatchView = submitted;
  try {
    batch = await followBatch(client, submitted, (jobs) => board.update(jobs));
  } finally {
    process.off("SIGINT", onInterrupt);
    board.done();
  }
  if (options.out) {
    for (const job of batch.jobs) {
      if (job.artifacts.length > 0) await saveArtifacts(client, job.artifacts, join(options.out, job.name ?? job.id));
    }
  }
  if (options.json) printJson(batch);
  else await printSummary(client, batch);
  if (batch.status === "succeeded") return ExitCode.OK;
  return cancelled ? ExitCode.CANCELLED : ExitCode.PIPELINE_FAILED;
}

/** Polls the batch (a one-second long-poll, so it answers at once when the last job ends) until every job has finished. */
async function followBatch(client: ArtifactSandboxClient, first: BatchView, onChange: (jobs: JobView[]) => void): Promise<BatchView> {
  const backoff = new Backoff();
  let batch = first;
  onChange(batch.jobs);
  while (!batch.jobs.every((job) => isTerminal(job.status))) {
    try {
      batch = await client.getBatch(batch.batchId, { wait: 1 });
      backoff.succeeded();
      onChange(batch.jobs);
    } catch (error) {
      await backoff.failed(error);
    }
  }
  return batch;
}

async function printSummary(client: ArtifactSandboxClient, batch: BatchView): Promise<void> {
  const failed = batch.jobs.filter((job) => job.status !== "succeeded");
  const succeeded = batch.jobs.length - failed.length;
  process.stdout.write(`\nPipeline ${batch.status}: ${succeeded} of ${batch.jobs.length} jobs succeeded (batch ${batch.batchId})\n`);
  for (const job of failed) {
    process.stdout.write(`\nFAILED ${jobLine(job)}\n`);
    if (job.status === "skipped") continue;
    for (const stream of ["stderr", "stdout"] as const) {
      if (!job[stream]?.size) continue;
      const tail = await client.outputTail(job.id, stream, TAIL_BYTES).catch(() => "");
      const lines = lastLines(tail, TAIL_LINES);
      if (lines.length === 0) continue;
      process.stdout.write(`  last lines of ${stream}:\n${lines.map((line) => `    ${line}`).join("\n")}\n`);
    }
  }
}
