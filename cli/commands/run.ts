/**
 * `artifact-sandbox run <sandbox> -- <command...>`: submit a run job, stream its output here as it
 * is written, wait for it, save its artifacts, and exit with the command's own exit code.
 */
import type { Command } from "commander";
import { z } from "zod";
import type { ArtifactSandboxClient, JobSubmission, JobView } from "../../client";
import { MAX_REQUEST_BODY_BYTES } from "../../schemas/job";
import { saveArtifacts } from "../artifacts";
import { clientFromEnvironment } from "../context";
import { exitCodeOf } from "../exitCodes";
import { readJobStdin, refuseOversizedRequest } from "../jobStdin";
import { relayLogs } from "../logStream";
import { collect, collectEnv, integer, shellCommand } from "../options";
import { jobLine, plural, printJson } from "../output";

const MIB = 1024 * 1024;

const RunOptions = z.object({
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}),
  timeout: z.number().int().optional(),
  retries: z.number().int().optional(),
  stdin: z.string().optional(),
  artifacts: z.array(z.string()).default([]),
  out: z.string().optional(),
  idempotencyKey: z.string().optional(),
  json: z.boolean().default(false),
});
type RunOptions = z.infer<typeof RunOptions>;

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("Run a command in a sandbox: its output streams here, its artifacts are saved, and its exit code is ours")
    .argument("<sandbox>", "sandbox ID (created on first use)")
    .argument("<command...>", "the command, after --: one argument is shell text, several are quoted word by word")
    .option("--cwd <dir>", "working directory inside /workspace (default /workspace)")
    .option("--env <NAME=VALUE>", "environment variable for the command (repeatable)", collectEnv)
    .option("--timeout <ms>", "end the command after this many milliseconds (default 60000, at most 840000); exit code 124", integer)
    .option("--retries <n>", "run the command again up to n times after a non-zero exit (0-5)", integer)
    .option(
      "--stdin <file>",
      `feed this file to the command's stdin, byte for byte (UTF-8 text only, in a request of at most ${MAX_REQUEST_BODY_BYTES / MIB} MiB); ` +
        "- reads our own stdin to its end (without --stdin the command's stdin is empty)",
    )
    .option("--artifacts <glob>", "files to collect, relative to cwd (repeatable)", collect)
    .option("--out <dir>", "save the artifacts here, at their paths relative to cwd")
    .option("--idempotency-key <key>", "submitting again with the same key answers with the same job instead of a new one")
    .option("--json", "print the finished job record as JSON on stdout (the command's output then goes to stderr)")
    .action(async (sandboxId: string, words: string[], raw: unknown) => {
      process.exitCode = await runCommand(clientFromEnvironment(), sandboxId, shellCommand(words), RunOptions.parse(raw));
    });
}

async function runCommand(client: ArtifactSandboxClient, sandboxId: string, command: string, options: RunOptions): Promise<number> {
  // Read and checked in full before anything is submitted: a bad --stdin leaves no job behind.
  const stdin = options.stdin === undefined ? undefined : await readJobStdin(options.stdin, process.stdin);
  const job: JobSubmission = {
    type: "run",
    command,
    cwd: options.cwd,
    env: options.env,
    stdin,
    timeoutMs: options.timeout,
    retries: options.retries,
    artifacts: options.artifacts,
  };
  if (options.stdin !== undefined) refuseOversizedRequest(job, options.stdin);
  const submitted = await client.submit(sandboxId, job, { idempotencyKey: options.idempotencyKey });
  // The job's ID at once, so another shell can follow it (`logs --follow`, `status`, `cancel`).
  process.stderr.write(`artifact-sandbox: job ${submitted.id} in sandbox ${sandboxId}\n`);
  const stopCancelling = cancelOnInterrupt(client, submitted.id);
  try {
    // With --json stdout carries only the record, so the command's output all goes to stderr.
    const sinks = options.json ? { stdout: process.stderr, stderr: process.stderr } : { stdout: process.stdout, stderr: process.stderr };
    await relayLogs(client, submitted.id, sinks).catch((error: unknown) => {
      process.stderr.write(
        `artifact-sandbox: the live log broke off (${error instanceof Error ? error.message : error}); waiting for the job\n`,
      );
    });
    const job = await client.waitForJob(submitted.id);
    return await finish(client, job, options);
  } finally {
    stopCancelling();
  }
}

async function finish(client: ArtifactSandboxClient, job: JobView, options: { out?: string; json: boolean }): Promise<number> {
  const saved = options.out ? await saveArtifacts(client, await client.listArtifacts(job), options.out) : [];
  if (options.json) printJson(job);
  else {
    if (job.status !== "succeeded") process.stderr.write(`artifact-sandbox: ${jobLine(job)}\n`);
    if (options.out) process.stderr.write(`artifact-sandbox: ${plural(saved.length, "artifact")} saved under ${options.out}\n`);
    for (const skipped of job.skippedArtifacts)
      process.stderr.write(`artifact-sandbox: artifact ${skipped.path} skipped: ${skipped.reason}\n`);
  }
  return exitCodeOf(job);
}

/** Ctrl-C cancels the job (its output and status still arrive); a second Ctrl-C leaves at once. */
function cancelOnInterrupt(client: ArtifactSandboxClient, jobId: string): () => void {
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\nartifact-sandbox: cancelling job ${jobId} (Ctrl-C again to stop waiting)\n`);
    client.cancel(jobId).catch((error: unknown) => process.stderr.write(`artifact-sandbox: cancel failed: ${error}\n`));
  };
  process.on("SIGINT", onInterrupt);
  return () => process.off("SIGINT", onInterrupt);
}
