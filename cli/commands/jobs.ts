/** Commands on one job by its ID: status, wait, logs, cancel, download. */
import type { Command } from "commander";
import { z } from "zod";
import { ApiError } from "../../client";
import { saveArtifacts, selectArtifacts } from "../artifacts";
import { clientFromEnvironment } from "../context";
import { ExitCode, exitCodeOf } from "../exitCodes";
import { relayLogs } from "../logStream";
import { jobLine, printJson } from "../output";

const JsonOption = z.object({ json: z.boolean().default(false) });
const LogsOptions = z.object({ follow: z.boolean().default(false) });
const DownloadOptions = z.object({ out: z.string().default("."), json: z.boolean().default(false) });

export function registerJobCommands(program: Command): void {
  program
    .command("status")
    .description("Show a job's status")
    .argument("<job>", "job ID")
    .option("--json", "print the job record as JSON")
    .action(async (jobId: string, raw: unknown) => {
      const job = await clientFromEnvironment().getJob(jobId);
      if (JsonOption.parse(raw).json) printJson(job);
      else {
        process.stdout.write(`${jobLine(job)}\n`);
        for (const artifact of job.artifacts) process.stdout.write(`  ${artifact.path}  ${artifact.size} bytes\n`);
      }
    });

  program
    .command("wait")
    .description("Wait for a job to finish; exit with its command's exit code (124 on timeout, 130 when cancelled)")
    .argument("<job>", "job ID")
    .option("--json", "print the finished job record as JSON")
    .action(async (jobId: string, raw: unknown) => {
      const job = await clientFromEnvironment().waitForJob(jobId);
      if (JsonOption.parse(raw).json) printJson(job);
      else process.stderr.write(`${jobLine(job)}\n`);
      process.exitCode = exitCodeOf(job);
    });

  program
    .command("logs")
    .description("Print a job's stdout and stderr (so far); with --follow, stream them until the job ends")
    .argument("<job>", "job ID")
    .option("-f, --follow", "keep streaming as the command writes, until the job has finished")
    .action(async (jobId: string, raw: unknown) => {
      const client = clientFromEnvironment();
      if (LogsOptions.parse(raw).follow) return relayLogs(client, jobId, { stdout: process.stdout, stderr: process.stderr });
      for (const stream of ["stdout", "stderr"] as const) {
        try {
          const text = await new Response(await client.download(`/v1/jobs/${jobId}/${stream}`)).text();
          (stream === "stdout" ? process.stdout : process.stderr).write(text);
        } catch (error) {
          // A queued job has no output yet, and a file job none at all: nothing to print.
          if (error instanceof ApiError && (error.code === "OUTPUT_NOT_READY" || error.code === "FILE_NOT_FOUND")) continue;
          throw error;
        }
      }
    });

  program
    .command("cancel")
    .description("Cancel a job: a queued one never runs, a running one has its command ended")
    .argument("<job>", "job ID")
    .option("--json", "print the job record as JSON")
    .action(async (jobId: string, raw: unknown) => {
      const job = await clientFromEnvironment().cancel(jobId);
      if (JsonOption.parse(raw).json) printJson(job);
      else process.stdout.write(`${job.status === "failed" ? "cancelled" : "cancelling"}: ${jobLine(job)}\n`);
    });

  program
    .command("download")
    .description("Save a finished job's artifacts (all, or those matching the globs) under --out, checked against their SHA-256")
    .argument("<job>", "job ID")
    .argument("[globs...]", "artifact paths or globs, relative to the job's cwd (default: all)")
    .option("--out <dir>", "directory to save them in", ".")
    .option("--json", "print the saved artifacts' records as JSON")
    .action(async (jobId: string, globs: string[], raw: unknown) => {
      const options = DownloadOptions.parse(raw);
      const client = clientFromEnvironment();
      const job = await client.getJob(jobId);
      const artifacts = selectArtifacts(job, globs);
      if (globs.length > 0 && artifacts.length === 0) {
        process.stderr.write(
          `No artifact of job ${jobId} matches ${globs.join(" ")}; it has: ${job.artifacts.map((a) => a.path).join(", ")}\n`,
        );
        process.exitCode = ExitCode.USAGE;
        return;
      }
      const saved = await saveArtifacts(client, artifacts, options.out);
      if (options.json) printJson(artifacts);
      else for (const path of saved) process.stdout.write(`${path}\n`);
    });
}
