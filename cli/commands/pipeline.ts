/**
 * `artifact-sandbox pipeline run <file>`: upload what the file names, submit its jobs as one batch,
 * show their states as they change (with --logs, their output too), save each job's artifacts
 * under --out/<name>/, and explain what failed (cli/followPipeline.ts). Exits 0 when the batch
 * succeeded: each job succeeded, failed with allowFailure, or was not needed.
 * `pipeline status <batch>` and `pipeline logs <batch> [job]` look at a batch from anywhere.
 */
import type { Command } from "commander";
import { z } from "zod";
import type { ArtifactSandboxClient } from "../../client";
import { clientFromEnvironment } from "../context";
import { batchExitCode } from "../exitCodes";
import { followBatch, followPipeline, progressStream } from "../followPipeline";
import { underGitHubActions } from "../githubActions";
import { runIdFrom } from "../interpolate";
import { batchText, plural, printJson } from "../output";
import { readPipeline } from "../pipelineFile";
import { jobsNamed, PipelineLogs } from "../pipelineLogs";
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
    .argument("[job]", "only this job (its name in the batch, or its ID); a matrix job's name picks each of its copies")
    .action(async (batchId: string, jobName: string | undefined) => {
      const client = clientFromEnvironment();
      const batch = await client.getBatch(batchId);
      const jobs = jobName === undefined ? batch.jobs : jobsNamed(batch, jobName);
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
  const progress = progressStream(options);
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
  return followPipeline(client, submitted, { ...options, github: underGitHubActions() });
}
