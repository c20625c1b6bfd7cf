/**
 * `artifact-sandbox pipeline rerun <batch> [--failed]`: run a finished batch again as a new one
 * (with --failed, only the jobs that did not succeed and what needs them; the rest's artifacts
 * are taken from the old jobs), and follow it to the end as `pipeline run` does.
 */
import type { Command } from "commander";
import { z } from "zod";
import { clientFromEnvironment } from "../context";
import { followPipeline, progressStream } from "../followPipeline";
import { underGitHubActions } from "../githubActions";
import { plural } from "../output";

const RerunOptions = z.object({
  failed: z.boolean().default(false),
  logs: z.boolean().default(false),
  out: z.string().optional(),
  json: z.boolean().default(false),
});

export function registerPipelineRerun(program: Command): void {
  const pipeline = program.commands.find((command) => command.name() === "pipeline") ?? program.command("pipeline");
  pipeline
    .command("rerun")
    .description("Run a finished batch again as a new batch and follow it to the end; exits 0 when it succeeds")
    .argument("<batch>", "the batch ID (printed by pipeline run)")
    .option("--failed", "only the jobs that failed or were skipped, and what needs them")
    .option("--logs", "print every job's output as it runs, each line prefixed with the job's name")
    .option("--out <dir>", "save each job's artifacts under <dir>/<job name>/")
    .option("--json", "print the finished new batch as JSON (progress lines go to stderr)")
    .action(async (batchId: string, raw: unknown) => {
      const options = RerunOptions.parse(raw);
      const client = clientFromEnvironment();
      const started = await client.rerunBatch(batchId, { failed: options.failed });
      const names = started.jobs.map((job) => job.name ?? job.id).join(", ");
      progressStream(options).write(`batch ${started.batchId}: rerun of ${batchId}, ${plural(started.jobs.length, "job")} (${names})\n`);
      process.exitCode = await followPipeline(client, started, { ...options, github: underGitHubActions() });
    });
}
