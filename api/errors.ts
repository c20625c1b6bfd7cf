/**
 * The API's one error shape: `{ "error": { "code", "message", "details"? } }` with the right
 * status. Routes throw ApiError; app.onError turns it (and anything else) into a response.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";

export const ErrorCode = {
  INVALID_REQUEST: "INVALID_REQUEST",
  INVALID_JSON: "INVALID_JSON",
  INVALID_SANDBOX_ID: "INVALID_SANDBOX_ID",
  MISSING_SANDBOX_ID: "MISSING_SANDBOX_ID",
  INVALID_PATH: "INVALID_PATH",
  BODY_TOO_LARGE: "BODY_TOO_LARGE",
  LENGTH_REQUIRED: "LENGTH_REQUIRED",
  UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  JOB_NOT_FOUND: "JOB_NOT_FOUND",
  FILE_NOT_FOUND: "FILE_NOT_FOUND",
  OUTPUT_NOT_READY: "OUTPUT_NOT_READY",
  ROUTE_NOT_FOUND: "ROUTE_NOT_FOUND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  RANGE_NOT_SATISFIABLE: "RANGE_NOT_SATISFIABLE",
  JOB_NOT_FINISHED: "JOB_NOT_FINISHED",
  JOB_FINISHED: "JOB_FINISHED",
  JOB_TIMED_OUT: "JOB_TIMED_OUT",
  JOB_FAILED: "JOB_FAILED",
  INTERNAL: "INTERNAL",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  INVALID_SIGNATURE: "INVALID_SIGNATURE",
  URL_EXPIRED: "URL_EXPIRED",
  RATE_LIMITED: "RATE_LIMITED",
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  IDEMPOTENCY_KEY_REUSED: "IDEMPOTENCY_KEY_REUSED",
  IDEMPOTENCY_KEY_IN_USE: "IDEMPOTENCY_KEY_IN_USE",
  SANDBOX_BUSY: "SANDBOX_BUSY",
  WEBHOOK_NOT_FOUND: "WEBHOOK_NOT_FOUND",
  WEBHOOK_URL_REFUSED: "WEBHOOK_URL_REFUSED",
  WEBHOOK_DISABLED: "WEBHOOK_DISABLED",
  WEBHOOK_LIMIT_REACHED: "WEBHOOK_LIMIT_REACHED",
  DELIVERY_PENDING: "DELIVERY_PENDING",
  NOTHING_TO_RERUN: "NOTHING_TO_RERUN",
  REQUEST_UNREADABLE: "REQUEST_UNREADABLE",
  SECRETS_NOT_CONFIGURED: "SECRETS_NOT_CONFIGURED",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Headers the answer carries, such as WWW-Authenticate or Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/**
 * One readable message for a zod failure, plus each issue for programs. Only a field's first
 * issue is kept: zod goes on checking a value of the wrong type (a string for a list also fails
 * the list's length), and the schemas put the check that says most first.
 */
export function validationError(error: z.ZodError, code: ErrorCode = ErrorCode.INVALID_REQUEST): ApiError {
  const byPath = new Map<string, string>();
  for (const issue of error.issues) {
    const path = issue.path.join(".");
    if (!byPath.has(path)) byPath.set(path, issue.message);
  }
  const issues = [...byPath].map(([path, message]) => ({ path, message }));
  const message = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join("; ");
  return new ApiError(400, code, message || "Invalid request", { issues });
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}
