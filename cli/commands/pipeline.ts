/**
 * `artifact-sandbox pipeline run <file>`: upload what the file names, submit its jobs as one batch,
 * show their states as they change (with --logs, their output too), save each job's artifacts
 * under --out/<name>/, and explain what failed. Exits 0 only if every job succeeded.
 * `pipeline status <batch>` and `pipeline logs <batch> [job]` look at a batch from anywhere.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import type { ArtifactSandboxClient, BatchView, JobView } from "../../client";
import { Backoff } from "../../client/retry";
import { isTerminal } from "../../schemas/job";
import { saveArtifacts } from "../artifacts";
import { clientFromEnvironment } from "../context";
import { batchExitCode, ExitCode } from "../exitCodes";
import { UsageError } from "../failure";
import { explainFailures } from "../failureReport";
import { underGitHubActions } from "../githubActions";
import { runIdFrom } from "../interpolate";
import { jobBoard } from "../liveTable";
import { batchText, plural, printJson } from "../output";
import { readPipeline } from "../pipelineFile";
import { PipelineLogs } from "../pipelineLogs";
import { uploadDirectory } from "../upload";

const PipelineOptions = z.object({
  out: z.string().optional(),
  json: z.boolean().default(false),
  logs: z.boolean().default(false),
  runId: z.string().optional(),
  idempotencyKey: z.string().optional(),
});
type PipelineOptions = z.infer<typeof PipelineOptions>;
const JsonOption = z.object({ json: z.boolean().default(false) });

export function registerPipeline(program: Command): void {
  const pipeline = program.command("pipeline").description("Run several jobs across sandboxes as one pipeline (name, needs)");
  pipeline
    .command("run")
    .description("Upload what a pipeline file (YAML or JSON) names, submit its jobs as one batch and follow it to the end")
    .argument("<file>", "the pipeline file: upload entries, and jobs with name, sandbox, command (or job), needs, artifacts, ...")
    .option("--logs", "print every job's output as it runs, each line prefixed with the job's name (GitHub Actions: a group per job)")
    .option("--run-id <id>", "what RUN_ID stands for in the file (default: GITHUB_RUN_ID, CI_PIPELINE_ID, else a fresh one)")
    .option("--out <dir>", "save each job's artifacts under <dir>/<job name>/")
    .option("--idempotency-key <key>", "submitting again with the same key follows the same batch instead of a new one")
    .option("--json", "print the finished batch record as JSON on stdout (progress lines go to stderr)")
    .action(async (file: string, raw: unknown) => {
      process.exitCode = await runPipeline(clientFromEnvironment(), file, PipelineOptions.parse(raw));
    });

  pipeline
    .command("status")
    .description("Show a batch's status and its jobs; exits 0 when it succeeded, 1 when it failed, 3 while it runs")
    .argument("<batch>", "batch ID, as `pipeline run` prints it first")
    .option("--json", "print the batch record as JSON")
    .action(async (batchId: string, raw: unknown) => {
      const batch = await clientFromEnvironment().getBatch(batchId);
      if (JsonOption.parse(raw).json) printJson(batch);
      else process.stdout.write(batchText(batch));
      process.exitCode = batchExitCode(batch);
    });

  pipeline
    .command("logs")
    .description("Print the output of a batch's jobs, each line prefixed with its job's name; follows running jobs to their end")
    .argument("<batch>", "batch ID")
    .argument("[job]", "only this job (its name in the batch, or its ID)")
    .action(async (batchId: string, jobName: string | undefined) => {
      const client = clientFromEnvironment();
      const batch = await client.getBatch(batchId);
      const jobs = jobName === undefined ? batch.jobs : batch.jobs.filter((job) => job.name === jobName || job.id === jobName);
      if (jobs.length === 0) {
        throw new UsageError(`Batch ${batchId} has no job ${jobName}; its jobs: ${batch.jobs.map((job) => job.name ?? job.id).join(", ")}`);
      }
      const logs = new PipelineLogs(client, process.stdout, underGitHubActions() ? "grouped" : "prefixed");
      await followBatch(client, { ...batch, jobs }, (current) =>
        logs.update(current.filter((job) => jobs.some((one) => one.id === job.id))),
      );
      await logs.finished();
    });
}

async function runPipeline(client: ArtifactSandboxClient, file: string, options: PipelineOptions): Promise<number> {
  const runId = runIdFrom(options.runId, process.env);
  const { entries, uploads } = await readPipeline(file, { runId, env: process.env });
  const progress = options.json ? process.stderr : process.stdout;
  const github = underGitHubActions();
  for (const upload of uploads) {
    const { job, removed } = await uploadDirectory(client, upload.sandbox, upload.from, upload);
    const extracted = job.extracted ? `, ${plural(job.extracted.entries, "entry", "entries")}` : "";
    const pruned = upload.sync ? `, ${plural(removed.length, "stale path")} removed` : "";
    progress.write(`upload ${upload.from} -> ${upload.sandbox}:${upload.to}: ${job.status}${extracted}${pruned}\n`);
    if (job.status !== "succeeded") throw new Error(`The upload into ${upload.sandbox} ${job.status}: ${job.error?.message ?? ""}`);
  }
  const submitted = await client.submitBatch(entries, { idempotencyKey: options.idempotencyKey });
  // The batch first, so that `pipeline status` or `pipeline logs` can follow it from another shell.
  progress.write(`batch ${submitted.batchId} (${plural(submitted.jobs.length, "job")}, run ${runId})\n`);
  // A table redrawn in place would fight with the log lines printed between its redraws.
  const board = jobBoard(progress, { lines: options.logs });
  const logs = options.logs ? new PipelineLogs(client, progress, github ? "grouped" : "prefixed") : undefined;
  let cancelled = false;
  const onInterrupt = () => {
    if (cancelled) process.exit(ExitCode.CANCELLED);
    cancelled = true;
    client.cancelBatch(submitted.batchId).catch((error: unknown) => process.stderr.write(`cancel failed: ${error}\n`));
  };
  process.on("SIGINT", onInterrupt);
  let batch: BatchView = submitted;
  try {
    batch = await followBatch(client, submitted, (jobs) => {
      board.update(jobs);
      logs?.update(jobs);
    });
    await logs?.finished();
  } finally {
    process.off("SIGINT", onInterrupt);
    logs?.stop();
    board.done();
  }
  if (options.out) {
    for (const job of batch.jobs) {
      if (job.artifacts.length > 0) await saveArtifacts(client, await client.listArtifacts(job), join(options.out, job.name ?? job.id));
    }
  }
  if (options.json) printJson(batch);
  else process.stdout.write(await summary(client, batch, github));
  if (batch.status === "succeeded") return ExitCode.OK;
  return cancelled ? ExitCode.CANCELLED : ExitCode.PIPELINE_FAILED;
}

/** Polls the batch (a one-second long-poll, so it answers at once when the last job ends) until every job has finished. */
async function followBatch(client: ArtifactSandboxClient, first: BatchView, onChange: (jobs: JobView[]) => void): Promise<BatchView> {
  const backoff = new Backoff();
  let batch = first;
  onChange(batch.jobs);
  const watched = new Set(first.jobs.map((job) => job.id));
  const done = (current: BatchView) => current.jobs.filter((job) => watched.has(job.id)).every((job) => isTerminal(job.status));
  while (!done(batch)) {
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

async function summary(client: ArtifactSandboxClient, batch: BatchView, github: boolean): Promise<string> {
  const succeeded = batch.jobs.filter((job) => job.status === "succeeded").length;
  const head = `\nPipeline ${batch.status}: ${succeeded} of ${plural(batch.jobs.length, "job")} succeeded (batch ${batch.batchId})\n`;
  return head + (await explainFailures(client, batch, { github }));
}
