/**
 * Following a submitted batch to its end, for `pipeline run` and `pipeline rerun`: its jobs'
 * states (a table on a terminal, timestamped lines elsewhere), with `logs` their output, Ctrl-C
 * cancelling it, artifacts saved under `out`, and the summary of what failed. The batch
 * succeeded (exit 0) when each job succeeded, failed with `allowFailure`, or was not needed.
 */
import { join } from "node:path";
import type { ArtifactSandboxClient, BatchView, JobView } from "../client";
import { Backoff } from "../client/retry";
import { isTerminal } from "../schemas/job";
import { saveArtifacts } from "./artifacts";
import { ExitCode } from "./exitCodes";
import { explainFailures } from "./failureReport";
import { jobBoard } from "./liveTable";
import { batchCounts, printJson } from "./output";
import { PipelineLogs } from "./pipelineLogs";

export interface FollowOptions {
  /** Print every job's output as it runs. */
  logs: boolean;
  /** Print the finished batch as JSON on stdout; progress goes to stderr. */
  json: boolean;
  /** Save each job's artifacts under `<out>/<job name>/`. */
  out?: string;
  /** Under GitHub Actions: output in groups, failures as annotations. */
  github: boolean;
}

/** Where progress lines go: stderr when stdout carries JSON. */
export const progressStream = (options: Pick<FollowOptions, "json">) => (options.json ? process.stderr : process.stdout);

/** Follows the batch to its end and prints what happened; the exit code for it. */
export async function followPipeline(client: ArtifactSandboxClient, submitted: BatchView, options: FollowOptions): Promise<number> {
  const progress = progressStream(options);
  // A table redrawn in place would fight with the log lines printed between its redraws.
  const board = jobBoard(progress, { lines: options.logs });
  const logs = options.logs ? new PipelineLogs(client, progress, options.github ? "grouped" : "prefixed") : undefined;
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
  else process.stdout.write(await summary(client, batch, options.github));
  if (batch.status === "succeeded") return ExitCode.OK;
  return cancelled ? ExitCode.CANCELLED : ExitCode.FAILED;
}

/** Polls the batch (a one-second long-poll, so it answers at once when the last job ends) until every job has finished. */
export async function followBatch(
  client: ArtifactSandboxClient,
  first: BatchView,
  onChange: (jobs: JobView[]) => void,
): Promise<BatchView> {
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
  const head = `\nPipeline ${batch.status}: ${batchCounts(batch.jobs)} (batch ${batch.batchId})\n`;
  return head + (await explainFailures(client, batch, { github }));
}
