/** Commands on one job by its ID: status (of a batch too), wait, logs, cancel, download. */
import type { Command } from "commander";
import { z } from "zod";
import { ApiError, type ArtifactSandboxClient, type LogEvent } from "../../client";
import { saveArtifacts, selectArtifacts } from "../artifacts";
import { clientFromEnvironment } from "../context";
import { batchExitCode, ExitCode, exitCodeOf, jobStatusExitCode } from "../exitCodes";
import { batchText, jobLine, printJson } from "../output";
import { JobLines } from "../pipelineLogs";

const JsonOption = z.object({ json: z.boolean().default(false) });
const LogsOptions = z.object({
  follow: z.boolean().default(false),
  label: z.boolean().default(false),
  stream: z.enum(["stdout", "stderr"]).optional(),
});
const DownloadOptions = z.object({ out: z.string().default("."), json: z.boolean().default(false) });

export function registerJobCommands(program: Command): void {
  program
    .command("status")
    .description(
      "Show a job's status, or a batch's (its jobs and their states); exits 0 when it succeeded, 1 when it finished otherwise, 3 while it runs",
    )
    .argument("<id>", "job ID, or batch ID (as `pipeline run` prints it)")
    .option("--json", "print the job or batch record as JSON")
    .action(async (id: string, raw: unknown) => {
      const client = clientFromEnvironment();
      const json = JsonOption.parse(raw).json;
      const job = await client.getJob(id).catch(async (error: unknown) => {
        // Job and batch IDs look alike (both ULIDs): an ID that is no job may be a batch.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        const batch = await client.getBatch(id).catch(() => {
          throw new ApiError(404, error.code, `No job or batch ${id} (unknown, or past its retention)`);
        });
        if (json) printJson(batch);
        else process.stdout.write(batchText(batch));
        process.exitCode = batchExitCode(batch);
        return undefined;
      });
      if (job === undefined) return;
      if (json) printJson(job);
      else {
        process.stdout.write(`${jobLine(job)}\n`);
        for (const artifact of job.artifacts) process.stdout.write(`  ${artifact.path}  ${artifact.size} bytes\n`);
      }
      process.exitCode = jobStatusExitCode(job);
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
    .description("Print a job's stdout (on stdout) and stderr (on stderr) so far; with --follow, stream them until the job ends")
    .argument("<job>", "job ID")
    .option("-f, --follow", "keep streaming as the command writes, until the job has finished")
    .option("--stream <name>", "only stdout or only stderr")
    .option("--label", "print both on stdout, each line labelled `stdout| ` or `stderr| `")
    .action(async (jobId: string, raw: unknown) => {
      const options = LogsOptions.parse(raw);
      const client = clientFromEnvironment();
      if (!options.follow && !options.label) {
        await printStoredOutput(client, jobId, options.stream);
        return;
      }
      const events = options.follow ? client.followLogs(jobId) : storedOutput(client, jobId);
      const lines = new JobLines();
      let unfinishedLine = false;
      const labelled = (pairs: Array<["stdout" | "stderr", string]>) => {
        for (const [stream, line] of pairs) if (!options.stream || options.stream === stream) process.stdout.write(`${stream}| ${line}\n`);
      };
      for await (const event of events) {
        if (event.type !== "stdout" && event.type !== "stderr" && event.type !== "gap") continue;
        if (options.label) {
          labelled(lines.take(event));
          // Stored output comes a whole stream at a time: its last line is complete even without a newline.
          if (!options.follow) labelled(lines.flush());
        } else if (event.type === "gap") {
          process.stderr.write(`\n[artifact-sandbox: ${event.droppedBytes} bytes of ${event.stream} missed here]\n`);
        } else if (!options.stream || options.stream === event.type) {
          // On one terminal, stderr would continue stdout's unfinished last line: end that line first.
          if (event.type === "stderr" && unfinishedLine && process.stdout.isTTY && process.stderr.isTTY) process.stdout.write("\n");
          (event.type === "stdout" ? process.stdout : process.stderr).write(event.text);
          if (event.type === "stdout") unfinishedLine = !event.text.endsWith("\n");
        }
      }
      labelled(lines.flush());
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
      const artifacts = selectArtifacts(await client.listArtifacts(job), globs);
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

/** One stream of a job's stored (or, while it runs, so far written) output, byte for byte; none for a queued or file job. */
async function storedBytes(client: ArtifactSandboxClient, jobId: string, stream: "stdout" | "stderr"): Promise<Uint8Array> {
  try {
    return new Uint8Array(await new Response(await client.download(`/v1/jobs/${jobId}/${stream}`)).arrayBuffer());
  } catch (error) {
    // A queued job has no output yet, and a file job none at all: nothing to print.
    if (error instanceof ApiError && (error.code === "OUTPUT_NOT_READY" || error.code === "FILE_NOT_FOUND")) return new Uint8Array();
    throw error;
  }
}

/** A job's stored output as log events (text, for labelled lines): all of stdout, then all of stderr. */
async function* storedOutput(client: ArtifactSandboxClient, jobId: string): AsyncGenerator<LogEvent> {
  for (const stream of ["stdout", "stderr"] as const) {
    const text = new TextDecoder().decode(await storedBytes(client, jobId, stream));
    if (text !== "") yield { type: stream, text };
  }
}

/** A job's stored output as its exact bytes: stdout on stdout, then stderr on stderr (live logs are text; these are not). */
async function printStoredOutput(client: ArtifactSandboxClient, jobId: string, only: "stdout" | "stderr" | undefined): Promise<void> {
  const stdout = only === "stderr" ? new Uint8Array() : await storedBytes(client, jobId, "stdout");
  const stderr = only === "stdout" ? new Uint8Array() : await storedBytes(client, jobId, "stderr");
  await writeAll(process.stdout, stdout);
  // On one terminal, stderr would continue stdout's unfinished last line: end that line first.
  const unfinishedLine = stdout.byteLength > 0 && stdout[stdout.byteLength - 1] !== 0x0a;
  if (stderr.byteLength > 0 && unfinishedLine && process.stdout.isTTY && process.stderr.isTTY)
    await writeAll(process.stdout, new Uint8Array([0x0a]));
  await writeAll(process.stderr, stderr);
}

function writeAll(sink: NodeJS.WriteStream, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength === 0) return Promise.resolve();
  return new Promise((resolve, reject) => sink.write(bytes, (error) => (error ? reject(error) : resolve())));
}
