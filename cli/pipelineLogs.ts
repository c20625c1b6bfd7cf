/**
 * Every job's output of a pipeline in one log, as the jobs run: each line prefixed with its job's
 * name (`[build] ...`, `[build stderr] ...`), or under GitHub Actions one collapsible group per
 * job, printed whole when the job ends (groups cannot interleave).
 */
import type { ArtifactSandboxClient, BatchView, JobView, LogEvent } from "../client";
import { UsageError } from "./failure";
import { group } from "./githubActions";

/**
 * The jobs of a batch that `name` names: the job of that name or ID, else the copies of the
 * matrix job of that name. The API names a copy `{name}-{values}` and keeps nothing else of its
 * matrix, so copies are the jobs named so that differ in nothing but their env values.
 */
export function jobsNamed(batch: BatchView, name: string): JobView[] {
  const exact = batch.jobs.filter((job) => job.name === name || job.id === name);
  if (exact.length > 0) return exact;
  const copies = batch.jobs.filter((job) => job.name?.startsWith(`${name}-`));
  const shapes = new Set(copies.map(copyShape));
  if (copies.length > 0 && shapes.size === 1) return copies;
  const names = batch.jobs.map((job) => job.name ?? job.id).join(", ");
  if (copies.length > 0) {
    throw new UsageError(
      `Batch ${batch.batchId} has no job ${name}, and the jobs named ${name}-... are not copies of one matrix job; its jobs: ${names}`,
    );
  }
  throw new UsageError(`Batch ${batch.batchId} has no job ${name}; its jobs: ${names}`);
}

/** What the copies of one matrix job share: all but their names and env values (the record keeps env keys only). */
const copyShape = (job: JobView) => JSON.stringify([job.sandboxId, job.request, job.when, job.allowFailure]);

export type LogLayout = "prefixed" | "grouped";

/** Follows the log of each job once it has started; `update` is called with every poll of the batch. */
export class PipelineLogs {
  private readonly followed = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly client: ArtifactSandboxClient,
    private readonly sink: NodeJS.WritableStream,
    private readonly layout: LogLayout,
  ) {}

  update(jobs: JobView[]): void {
    for (const job of jobs) {
      // A queued job has no output yet, and a skipped one never will.
      if (job.status === "queued" || job.status === "skipped" || this.followed.has(job.id)) continue;
      this.followed.set(job.id, this.follow(job));
    }
  }

  /** Resolves once every followed log has reached its job's end. */
  async finished(): Promise<void> {
    await Promise.all(this.followed.values());
  }

  stop(): void {
    this.abort.abort();
  }

  private async follow(job: JobView): Promise<void> {
    const name = job.name ?? job.id;
    const lines = new JobLines();
    const out: string[] = [];
    const emit = (line: string, stream: "stdout" | "stderr") => {
      if (this.layout === "grouped") out.push(stream === "stderr" ? `[stderr] ${line}` : line);
      else this.sink.write(`[${stream === "stderr" ? `${name} stderr` : name}] ${line}\n`);
    };
    let ending = "";
    try {
      for await (const event of this.client.followLogs(job.id, { signal: this.abort.signal })) {
        for (const [stream, line] of lines.take(event)) emit(line, stream);
        if (event.type === "status") ending = statusText(event);
      }
    } catch (error) {
      if (this.abort.signal.aborted) return;
      emit(`[artifact-sandbox: the live log broke off: ${error instanceof Error ? error.message : String(error)}]`, "stderr");
    }
    for (const [stream, line] of lines.flush()) emit(line, stream);
    if (this.layout === "grouped") this.sink.write(group(`${name} (sandbox ${job.sandboxId}, job ${job.id}): ${ending}`, out.join("\n")));
  }
}

function statusText(event: Extract<LogEvent, { type: "status" }>): string {
  return [event.status, event.exitCode !== null ? `exit ${event.exitCode}` : "", event.error?.code ?? ""].filter(Boolean).join(", ");
}

/** Cuts a job's output events into whole lines per stream, holding a line's start until its end arrives. */
export class JobLines {
  private readonly partial = { stdout: "", stderr: "" };

  take(event: LogEvent): Array<["stdout" | "stderr", string]> {
    if (event.type === "gap") return [["stderr", `[artifact-sandbox: ${event.droppedBytes} bytes of ${event.stream} missed here]`]];
    if (event.type !== "stdout" && event.type !== "stderr") return [];
    const pieces = (this.partial[event.type] + event.text).split("\n");
    this.partial[event.type] = pieces.pop() ?? "";
    return pieces.map((line) => [event.type, line.replace(/\r$/, "")]);
  }

  /** What is left without a final newline, once the job has ended. */
  flush(): Array<["stdout" | "stderr", string]> {
    const rest: Array<["stdout" | "stderr", string]> = [];
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream] !== "") rest.push([stream, this.partial[stream]]);
      this.partial[stream] = "";
    }
    return rest;
  }
}
