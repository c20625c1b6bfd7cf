/**
 * The container API's error vocabulary: the codes the SDK client maps to its error classes
 * (FileNotFoundError, CommandError, ...), their HTTP statuses, and the one JSON error body shape.
 */

/** Codes as the real container sends them; the SDK switches on these strings. */
export const ErrorCode = {
  FILE_NOT_FOUND: "FILE_NOT_FOUND",
  FILE_TOO_LARGE: "FILE_TOO_LARGE",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  IS_DIRECTORY: "IS_DIRECTORY",
  NOT_DIRECTORY: "NOT_DIRECTORY",
  NO_SPACE: "NO_SPACE",
  FILESYSTEM_ERROR: "FILESYSTEM_ERROR",
  COMMAND_EXECUTION_ERROR: "COMMAND_EXECUTION_ERROR",
  STREAM_START_ERROR: "STREAM_START_ERROR",
  SESSION_ALREADY_EXISTS: "SESSION_ALREADY_EXISTS",
  SESSION_TERMINATED: "SESSION_TERMINATED",
  VALIDATION_FAILED: "VALIDATION_FAILED",
  INTERNAL_ERROR: "INTERNAL_ERROR",
  UNKNOWN_ERROR: "UNKNOWN_ERROR",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The container's code -> status map (packages/shared/src/errors/status-map.ts), for the codes we emit. */
const STATUS: Record<ErrorCode, number> = {
  FILE_NOT_FOUND: 404,
  FILE_TOO_LARGE: 413,
  PERMISSION_DENIED: 403,
  IS_DIRECTORY: 400,
  NOT_DIRECTORY: 400,
  NO_SPACE: 500,
  FILESYSTEM_ERROR: 500,
  COMMAND_EXECUTION_ERROR: 500,
  STREAM_START_ERROR: 500,
  SESSION_ALREADY_EXISTS: 409,
  SESSION_TERMINATED: 410,
  VALIDATION_FAILED: 400,
  INTERNAL_ERROR: 500,
  UNKNOWN_ERROR: 500,
};

/** A failure with a stable code; the server turns it into the container's error body. */
export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown>;
  readonly httpStatus: number;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, httpStatus = STATUS[code]) {
    super(message);
    this.name = "AgentError";
    this.code = code;
    this.context = context;
    this.httpStatus = httpStatus;
  }

  /** The body the SDK's handleErrorResponse parses into its typed error. */
  toBody(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      context: this.context,
      httpStatus: this.httpStatus,
      timestamp: new Date().toISOString(),
    };
  }
}

export type ErrorBody = {
  code: ErrorCode;
  message: string;
  context: Record<string, unknown>;
  httpStatus: number;
  timestamp: string;
};

/** Node's errno codes for the file errors the SDK has classes for. */
export function fileErrorFromErrno(error: unknown, path: string, operation: string): AgentError {
  const message = error instanceof Error ? error.message : String(error);
  const errno = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
  const context = { path, operation, stderr: message };
  switch (errno) {
    case "ENOENT":
      return new AgentError(ErrorCode.FILE_NOT_FOUND, `File not found: ${path}`, { path, operation });
    case "EACCES":
    case "EPERM":
      return new AgentError(ErrorCode.PERMISSION_DENIED, `Permission denied: ${path}`, context);
    case "EISDIR":
      return new AgentError(ErrorCode.IS_DIRECTORY, `Path is a directory: ${path}`, context);
    case "ENOTDIR":
      return new AgentError(ErrorCode.NOT_DIRECTORY, `Path is not a directory: ${path}`, context);
    case "ENOSPC":
    case "EDQUOT":
      return new AgentError(ErrorCode.NO_SPACE, `No space left on device: ${path}`, context);
    default:
      return new AgentError(ErrorCode.FILESYSTEM_ERROR, `Failed to ${operation} '${path}': ${message}`, context);
  }
}
