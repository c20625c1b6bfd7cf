/** `/v1/sandboxes`: the tenant's sandboxes, and deleting one (its jobs, container and workspace). */
import { createRoute } from "@hono/zod-openapi";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { DeletedSandbox, SandboxList } from "../schemas/api";
import { r2Keys, sandboxKey } from "../storage/layout";
import { ErrorBody, newRouter, SandboxParams } from "./openapi";

const listSandboxes = createRoute({
  method: "get",
  path: "/v1/sandboxes",
  summary: "The tenant's sandboxes, with their last activity",
  responses: {
    200: { description: "Every live sandbox", content: { "application/json": { schema: SandboxList } } },
  },
});

const deleteSandbox = createRoute({
  method: "delete",
  path: "/v1/sandboxes/{sandboxId}",
  summary: "Delete a sandbox: cancel its unfinished jobs, destroy its container and workspace (idempotent)",
  request: { params: SandboxParams },
  responses: {
    200: {
      description: "Deleted (or there was nothing to delete)",
      content: {
        "application/json": { schema: DeletedSandbox },
      },
    },
    400: { description: "Invalid sandbox ID", content: { "application/json": { schema: ErrorBody } } },
  },
});

export const sandboxesRouter = newRouter()
  .openapi(listSandboxes, async (c) => {
    const { tenant } = c.var;
    const ttlMs = c.var.jobs.config.sandboxIdleTtlSeconds * 1000;
    const entries = await tenantDirectoryFor(c.env.TENANT_DIRECTORY, tenant).sandboxes();
    const sandboxes = await Promise.all(
      entries.map(async (entry) => {
        const snapshot = await c.env.JOB_OUTPUT.head(r2Keys.workspaceSnapshot(sandboxKey(tenant, entry.sandboxId)));
        return {
          ...entry,
          expiresAt: new Date(Date.parse(entry.lastActiveAt) + ttlMs).toISOString(),
          savedWorkspaceBytes: snapshot?.size ?? null,
        };
      }),
    );
    return c.json({ sandboxes }, 200);
  })
  .openapi(deleteSandbox, async (c) => {
    const { sandboxId } = c.req.valid("param");
    const { deleted, cancelledJobs } = await tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant).deleteSandbox(
      c.var.tenant,
      sandboxId,
    );
    return c.json({ sandboxId, deleted, cancelledJobs }, 200);
  });
