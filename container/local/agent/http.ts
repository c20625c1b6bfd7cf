/**
 * Small node:http helpers shared by the routes: read and validate a JSON body, answer JSON,
 * answer the container's error shape.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { AgentError, ErrorCode } from "./errors.ts";

/** Bun.serve's default request body cap, which the real container runs under. */
export const MAX_BODY_BYTES = 128 * 1024 * 1024;

/** Reads the whole body (bounded) and validates it; every route body is JSON. */
export async function readJsonBody<Schema extends z.ZodType>(req: IncomingMessage, schema: Schema): Promise<z.infer<Schema>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new AgentError(ErrorCode.VALIDATION_FAILED, `Request body exceeds ${MAX_BODY_BYTES} bytes`, {}, 413);
    }
    chunks.push(buffer);
  }
  let parsed: unknown;
  try {
    parsed = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    throw new AgentError(
      ErrorCode.VALIDATION_FAILED,
      `Failed to parse request body: ${error instanceof Error ? error.message : "Invalid JSON"}`,
    );
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const validationErrors = result.error.issues.map((issue) => ({
      field: issue.path.join("."),
      message: issue.message,
      code: issue.code,
    }));
    throw new AgentError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid request: ${validationErrors.map((e) => `${e.field}: ${e.message}`).join("; ")}`,
      {
        validationErrors,
      },
    );
  }
  return result.data;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, error: AgentError): void {
  sendJson(res, error.httpStatus, error.toBody());
}

/** The real router's answer for a route it does not have. */
export function notFoundError(): AgentError {
  return new AgentError(ErrorCode.UNKNOWN_ERROR, "The requested endpoint was not found", {}, 404);
}

export function timestamp(): string {
  return new Date().toISOString();
}
