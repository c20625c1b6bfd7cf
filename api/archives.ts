/**
 * `PUT /v1/sandboxes/{sandboxId}/archive?path=/workspace/src`: a source tree as a .tar.gz body,
 * streamed to R2 (never whole in memory) and unpacked into the sandbox by a job of its own, in
 * line with the sandbox's other jobs (execution/extractArchive.ts says what it refuses).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { WorkspaceDirPath } from "../schemas/ids";
import { type JobRequest, JobView } from "../schemas/job";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode, validationError } from "./errors";
import { ErrorBody, SandboxParams } from "./openapi";

/** Workers accept request bodies up to 100 MiB on most plans. */
export const MAX_ARCHIVE_BYTES = 100 * 1024 * 1024;

/** The JSON routes take no extract job: its archive can only come with this route. */
export function refuseExtractInJson(request: JobRequest): void {
  if (request.type === "file" && request.op === "extract") {
    throw new ApiError(
      400,
      ErrorCode.INVALID_REQUEST,
      "op extract comes with an upload: PUT the .tar.gz to /v1/sandboxes/{id}/archive?path=...",
    );
  }
}

/** For the OpenAPI document (the body is a raw archive, so this is a plain route). */
export const archiveRoute = {
  method: "put" as const,
  path: "/v1/sandboxes/{sandboxId}/archive",
  summary: "Upload a .tar.gz (up to 100 MiB) and unpack it into the sandbox at ?path= (default /workspace) as a job",
  request: { params: SandboxParams },
  responses: {
    202: {
      description: "Accepted: the job that unpacks it; its record lists what it wrote (extracted)",
      content: { "application/json": { schema: JobView } },
    },
    400: { description: "Invalid sandbox ID or path, or an empty body", content: { "application/json": { schema: ErrorBody } } },
    411: { description: "No body or no Content-Length", content: { "application/json": { schema: ErrorBody } } },
    413: { description: "Over 100 MiB", content: { "application/json": { schema: ErrorBody } } },
  },
};

export const archivesRouter = new Hono<ApiEnv>();

archivesRouter.put(
  "/v1/sandboxes/:sandboxId/archive",
  bodyLimit({
    maxSize: MAX_ARCHIVE_BYTES,
    onError: () => {
      throw new ApiError(
        413,
        ErrorCode.BODY_TOO_LARGE,
        `An archive may be up to ${MAX_ARCHIVE_BYTES} bytes; split the tree into several uploads`,
      );
    },
  }),
  async (c) => {
    const params = SandboxParams.safeParse({ sandboxId: c.req.param("sandboxId") });
    if (!params.success) throw validationError(params.error, ErrorCode.INVALID_SANDBOX_ID);
    const dir = WorkspaceDirPath.safeParse(c.req.query("path") ?? "/workspace");
    if (!dir.success) throw validationError(dir.error, ErrorCode.INVALID_PATH);
    const length = Number(c.req.header("content-length"));
    if (length === 0) {
      throw new ApiError(400, ErrorCode.INVALID_REQUEST, "The body is empty: send the .tar.gz itself (curl --data-binary @src.tar.gz)");
    }
    if (!Number.isSafeInteger(length) || length < 0 || !c.req.raw.body) {
      throw new ApiError(
        411,
        ErrorCode.LENGTH_REQUIRED,
        "Send the .tar.gz as the body, with a Content-Length header (curl --data-binary @src.tar.gz does)",
      );
    }
    const record = await c.var.jobs.submitUpload(params.data.sandboxId, dir.data, c.req.raw.body, length);
    c.header("Location", `/v1/jobs/${record.id}`);
    return c.json(await c.var.presenter.present(record), 202);
  },
);
