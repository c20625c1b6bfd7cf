/**
 * `artifact-sandbox pipeline rerun <batch> [--failed]`: run a finished batch again as a new one
 * (with --failed, only the jobs that did not succeed and what needs them; the rest's artifacts
 * are taken from the old jobs), follow it to the end, and exit 0 only if it succeeded.
 */
import type { Command } from "commander";
import { z } from "zod";
import type { ArtifactSandboxClient, BatchView } from "../../client";
import { isTerminal } from "../../schemas/job";
import { clientFromEnvironment } from "../context";
import { ExitCode } from "../exitCodes";
import { jobLine, printJson } from "../output";

const RerunOptions = z.object({ failed: z.boolean().default(false), json: z.boolean().default(false) });

export function registerPipelineRerun(program: Command): void {
  const pipeline = program.commands.find((command) => command.name() === "pipeline") ?? program.command("pipeline");
  pipeline
    .command("rerun")
    .description("Run a finished batch again as a new batch and follow it to the end")
    .argument("<batch>", "the batch ID (printed by pipeline run)")
    .option("--failed", "only the jobs that failed or were skipped, and what needs them")
    .option("--json", "print the finished new batch as JSON")
    .action(async (batchId: string, raw: unknown) => {
      const options = RerunOptions.parse(raw);
      const client = clientFromEnvironment();
      const started = await client.rerunBatch(batchId, { failed: options.failed });
      const log = options.json ? process.stderr : process.stdout;
      log.write(`batch ${started.batchId}: rerun of ${batchId}, ${started.jobs.length} jobs\n`);
      const batch = await untilFinished(client, started);
      if (options.json) printJson(batch);
      else for (const job of batch.jobs) process.stdout.write(`${jobLine(job)}\n`);
      log.write(`Pipeline ${batch.status} (batch ${batch.batchId})\n`);
      process.exitCode = batch.status === "succeeded" ? ExitCode.OK : ExitCode.PIPELINE_FAILED;
    });
}

async function untilFinished(client: ArtifactSandboxClient, batch: BatchView): Promise<BatchView> {
  let current = batch;
  while (!current.jobs.every((job) => isTerminal(job.status))) current = await client.getBatch(current.batchId, { wait: 30 });
  return current;
}
