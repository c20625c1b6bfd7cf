/** Relaying a job's live log to this terminal: stdout to stdout, stderr to stderr, as the command writes them. */
import type { ArtifactSandboxClient } from "../client";

export interface LogSinks {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Follows the log until the job's status event; resolves once it has finished (or was given up). */
export async function relayLogs(client: ArtifactSandboxClient, jobId: string, sinks: LogSinks, signal?: AbortSignal): Promise<void> {
  for await (const event of client.followLogs(jobId, { signal })) {
    if (event.type === "stdout") sinks.stdout.write(event.text);
    else if (event.type === "stderr") sinks.stderr.write(event.text);
    else if (event.type === "gap") sinks.stderr.write(`\n[artifact-sandbox: ${event.droppedBytes} bytes of ${event.stream} missed here]\n`);
  }
}
