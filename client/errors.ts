/**
 * What the client throws: ApiError for an answer of the API that is an error (its status and the
 * stable code and message of the API's JSON error body), ConnectionError when the service could
 * not be reached at all. Callers tell "the service said no" from "there was no service".
 */
import { ErrorBody } from "../schemas/api";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The API's stable error code, such as JOB_NOT_FOUND; `HTTP_{status}` when the body was not the API's error shape. */
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** From an error answer: the API's JSON error body when it has one, else the status and the start of the body. */
  static async fromResponse(response: Response, what: string): Promise<ApiError> {
    const text = await response.text().catch(() => "");
    const parsed = ErrorBody.safeParse(safeJson(text));
    if (parsed.success) return new ApiError(response.status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.details);
    return new ApiError(response.status, `HTTP_${response.status}`, `${what}: HTTP ${response.status} ${text.slice(0, 300)}`.trim());
  }
}

/** The service did not answer: nothing listens at the URL, or the connection broke. */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`Could not reach ${url}: ${describeCause(cause)}`, { cause });
    this.name = "ConnectionError";
  }
}

/** An answer that does not match the API's schema: client and service disagree on the API. */
export class UnexpectedResponseError extends Error {
  constructor(what: string, detail: string) {
    super(`${what}: the answer does not match this client's schema (${detail}); is the client as new as the service?`);
    this.name = "UnexpectedResponseError";
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // Node's fetch wraps the socket error (ECONNREFUSED, ...) in `cause`.
  const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : "";
  return `${cause.message}${inner}`;
}
