/**
 * The HTTP API: v1 job routes, the original synchronous routes, the OpenAPI document and its
 * interactive reference (/docs), and the one place that turns errors into JSON responses. The
 * dashboard at / is static assets (wrangler.jsonc), served before a request reaches this app.
 */
import { swaggerUI } from "@hono/swagger-ui";
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { readConfig } from "../config";
import { MAX_REQUEST_BODY_BYTES } from "../schemas/job";
import { archiveRoute, archivesRouter } from "./archives";
import { artifactListRouter } from "./artifactList";
import { authenticate } from "./authenticate";
import { batchesRouter } from "./batches";
import { cachesRouter } from "./caches";
import { COMPAT_PATHS, compatRouter } from "./compat";
import type { ApiEnv } from "./context";
import { ApiError, ErrorCode, errorBody } from "./errors";
import { eventsRouter } from "./events";
import { JobService } from "./jobService";
import { jobsRouter } from "./jobs";
import { logsRoute, logsRouter } from "./logs";
import { metricsRouter, prometheusRouter } from "./metrics";
import { JobPresenter } from "./present";
import { rateLimit } from "./rateLimit";
import { sandboxesRouter } from "./sandboxes";
import { sandboxJobsRouter } from "./sandboxJobs";
import { secretsRouter } from "./secrets";
import { signedDownload } from "./signedDownload";
import { webhooksRouter } from "./webhooks";

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
/** The interactive reference, rendered in the browser from OPENAPI_PATH. */
const DOCS_PATH = "/docs";
/** The API's description and its reference are public; every other route serves the caller's tenant. */
const PUBLIC_PATHS = new Set([OPENAPI_PATH, DOCS_PATH]);

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
  // The operator's Prometheus scrape: its own token, ahead of tenant authentication.
  app.route("/", prometheusRouter);
  app.use("/v1/jobs/:jobId/*", signedDownload);
  app.use("*", async (c, next) => (PUBLIC_PATHS.has(c.req.path) ? next() : authenticate(c, next)));
  app.use("*", rateLimit);
  app.use("*", async (c, next) => {
    if (!PUBLIC_PATHS.has(c.req.path)) {
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
  app.route("/", artifactListRouter);
  app.route("/", logsRouter);
  app.route("/", compatRouter);
  app.route("/", webhooksRouter);
  app.route("/", eventsRouter);
  app.route("/", metricsRouter);
  app.route("/", secretsRouter);
  app.route("/", cachesRouter);
  app.openAPIRegistry.registerPath(logsRoute);
  app.openAPIRegistry.registerPath(archiveRoute);

  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description: "An API key, as_live_...",
  });
  app.doc31(OPENAPI_PATH, {
    openapi: "3.1.0",
    info: {
      title: "artifact-sandbox",
      version: "1.0.0",
      description: "Run build steps in isolated sandboxes and collect their output and artifacts.",
    },
    security: [{ apiKey: [] }],
  });
  // Swagger UI's script and stylesheet come from this origin (built into the static assets by
  // scripts/buildDashboard.ts), not from a CDN.
  app.get(DOCS_PATH, swaggerUI({ url: OPENAPI_PATH, baseUrl: "/generated", title: "artifact-sandbox API" }));

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
