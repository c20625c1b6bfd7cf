/**
 * The HTTP API: v1 job routes, the original synchronous routes, the OpenAPI document, and the
 * one place that turns errors into JSON responses.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { readConfig } from "../config";
import { MAX_REQUEST_BODY_BYTES } from "../schemas/job";
import { archiveRoute, archivesRouter } from "./archives";
import { authenticate } from "./authenticate";
import { batchesRouter } from "./batches";
import { cachesRouter } from "./caches";
import { COMPAT_PATHS, compatRouter } from "./compat";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode, errorBody } from "./errors";
import { JobService } from "./jobService";
import { jobsRouter } from "./jobs";
import { logsRoute, logsRouter } from "./logs";
import { JobPresenter } from "./present";
import { rateLimit } from "./rateLimit";
import { sandboxesRouter } from "./sandboxes";
import { sandboxJobsRouter } from "./sandboxJobs";
import { secretsRouter } from "./secrets";
import { signedDownload } from "./signedDownload";

function respondWithError(
  path: string,
  status: number,
  code: string,
  message: string,
  details?: unknown,
  headers: Record<string, string> = {},
): Response {
  // The original routes answered `{ "error": "message" }`; their clients read that string.
  const body = COMPAT_PATHS.includes(path) ? { error: message, code } : errorBody(code, message, details);
  return Response.json(body, { status, headers });
}

/**
 * For a path that exists under other methods, the methods it takes: so that a wrong method
 * gets 405 with an Allow header rather than a 404. Derived from the registered routes.
 */
function methodsByPath(routes: { method: string; path: string }[]): (path: string) => string[] {
  const patterns = routes
    .filter((route) => route.method !== "ALL")
    .map((route) => ({
      method: route.method,
      pattern: new RegExp(`^${route.path.replace(/:\w+\{([^}]+)\}/g, "($1)").replace(/:\w+/g, "[^/]+")}$`),
    }));
  return (path) => [...new Set(patterns.filter((route) => route.pattern.test(path)).map((route) => route.method))];
}

const OPENAPI_PATH = "/v1/openapi.json";

export function createApp(): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>();

  const jsonBodyLimit = bodyLimit({
    maxSize: MAX_REQUEST_BODY_BYTES,
    onError: () => {
      throw new ApiError(
        413,
        ErrorCode.BODY_TOO_LARGE,
        `Request body is over ${MAX_REQUEST_BODY_BYTES} bytes; split the upload into several files, or upload a .tar.gz with PUT /v1/sandboxes/{id}/archive`,
      );
    },
  });
  // An archive upload streams to R2 and has its own, larger limit (archives.ts).
  app.use("*", (c, next) => (c.req.method === "PUT" && c.req.path.endsWith("/archive") ? next() : jsonBodyLimit(c, next)));
  app.use("/v1/jobs/:jobId/*", signedDownload);
  app.use("*", async (c, next) => {
    // The API's description is public; everything else serves the caller's tenant.
    if (c.req.path === OPENAPI_PATH) return next();
    return authenticate(c, next);
  });
  app.use("*", rateLimit);
  app.use("*", async (c, next) => {
    if (c.req.path !== OPENAPI_PATH) {
      const config = readConfig(c.env);
      c.set("jobs", new JobService(c.env, config, c.var.tenant));
      c.set("presenter", new JobPresenter(new URL(c.req.url).origin, config.signedUrls));
    }
    await next();
  });

  app.route("/", sandboxJobsRouter);
  app.route("/", sandboxesRouter);
  app.route("/", archivesRouter);
  app.route("/", batchesRouter);
  app.route("/", jobsRouter);
  app.route("/", logsRouter);
  app.route("/", compatRouter);
  app.route("/", secretsRouter);
  app.route("/", cachesRouter);
  app.openAPIRegistry.registerPath(logsRoute);
  app.openAPIRegistry.registerPath(archiveRoute);

  app.doc31(OPENAPI_PATH, {
    openapi: "3.1.0",
    info: {
      title: "artifact-sandbox",
      version: "1.0.0",
      description: "Run build steps in isolated sandboxes and collect their output and artifacts.",
    },
  });

  const allowedMethods = methodsByPath(app.routes);
  app.notFound((c) => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length > 0) {
      const message = `Method ${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(" or ")}`;
      const response = respondWithError(c.req.path, 405, ErrorCode.METHOD_NOT_ALLOWED, message);
      response.headers.set("allow", allowed.join(", "));
      return response;
    }
    return respondWithError(c.req.path, 404, ErrorCode.ROUTE_NOT_FOUND, `No route ${c.req.method} ${c.req.path}; see GET /v1/openapi.json`);
  });
  app.onError((error, c) => {
    if (error instanceof ApiError) {
      return respondWithError(c.req.path, error.status, error.code, error.message, error.details, error.headers);
    }
    if (error instanceof HTTPException && error.status === 415) {
      const message = "Send the body as JSON with the header content-type: application/json";
      return respondWithError(c.req.path, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, message);
    }
    if (error instanceof HTTPException && error.status < 500) {
      // Raised by hono itself, e.g. malformed JSON in a validated body.
      const code = error.status === 400 ? ErrorCode.INVALID_JSON : ErrorCode.INVALID_REQUEST;
      return respondWithError(c.req.path, error.status, code, error.message || "Invalid request");
    }
    console.error(`${c.req.method} ${c.req.path} failed`, error);
    return respondWithError(c.req.path, 500, ErrorCode.INTERNAL, "Internal error; it has been logged");
  });
  return app;
}
