/**
 * Turning any error into one line on stderr that says what to do, and the exit code for it.
 */
import { z } from "zod";
import { ApiError, ConnectionError, UnexpectedResponseError } from "../client";
import { ExitCode } from "./exitCodes";

/** A mistake in how the CLI was called (a bad flag value, a bad pipeline file). */
export class UsageError extends Error {
  override name = "UsageError";
}

export function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof UsageError) return { message: error.message, exitCode: ExitCode.USAGE };
  if (error instanceof ConnectionError) {
    return {
      message: `${error.message}\nIs the service running (\`npm run dev\` locally)? Set ARTIFACT_SANDBOX_URL to its address.`,
      exitCode: ExitCode.SERVICE_ERROR,
    };
  }
  if (error instanceof ApiError) {
    const hint = HINTS[error.status];
    return {
      message: `${error.code} (HTTP ${error.status}): ${error.message}${hint ? `\n${hint}` : ""}`,
      // The service refused what we sent (a bad job, a pipeline with a cycle): fix it, do not retry it.
      exitCode: error.status === 400 || error.status === 422 ? ExitCode.USAGE : ExitCode.SERVICE_ERROR,
    };
  }
  if (error instanceof UnexpectedResponseError) return { message: error.message, exitCode: ExitCode.SERVICE_ERROR };
  // The client checks a job with the API's schema before sending it.
  if (error instanceof z.ZodError) return { message: `Invalid job: ${z.prettifyError(error)}`, exitCode: ExitCode.USAGE };
  return { message: error instanceof Error ? error.message : String(error), exitCode: ExitCode.SERVICE_ERROR };
}

const HINTS: Record<number, string> = {
  401: "Set ARTIFACT_SANDBOX_KEY to an API key (`npm run keys -- create <tenant>` makes one).",
  403: "The signed URL is invalid or has expired: fetch the job again for fresh URLs.",
  404: "Check the ID; jobs and sandboxes of another tenant (another key) are not visible.",
  429: "Too many requests or over a quota: wait a little and try again.",
};
