/**
 * Identifiers and workspace paths, validated the same way by the API, the consumer and the
 * local sandbox host. Rules follow the Cloudflare Sandbox SDK so an ID that works locally
 * works deployed.
 */
import { z } from "@hono/zod-openapi";

export const WORKSPACE_ROOT = "/workspace";

// The SDK rejects these IDs because they collide with its own preview-URL subdomains.
const RESERVED_SANDBOX_IDS = new Set(["www", "api", "admin", "root", "system", "cloudflare", "workers"]);

export const SandboxId = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    "Sandbox ID must be 1-63 characters of lowercase letters, digits and '-', not starting or ending with '-'",
  )
  .refine((id) => !RESERVED_SANDBOX_IDS.has(id), {
    message: `Sandbox ID is reserved; avoid: ${[...RESERVED_SANDBOX_IDS].join(", ")}`,
  });
export type SandboxId = z.infer<typeof SandboxId>;

/**
 * A tenant: the owner of API keys, sandboxes and jobs. No '.' is allowed, so a sandbox key
 * (`{tenant}.{sandboxId}`, storage/layout.ts) always names its tenant unambiguously.
 */
export const TenantId = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/,
    "Tenant ID must be 1-32 characters of lowercase letters, digits and '-', not starting or ending with '-'",
  );
export type TenantId = z.infer<typeof TenantId>;

/** A tenant's sandbox named across the platform, `{tenant}.{sandboxId}` (storage/layout.ts `sandboxKey`). */
export const SandboxKey = z.string().regex(/^[a-z0-9-]{1,32}\.[a-z0-9-]{1,63}$/, "Not a sandbox key ({tenant}.{sandboxId})");

/** The tenant of anonymous requests to a local stack (`npm run dev` without REQUIRE_API_KEYS=1). */
export const LOCAL_TENANT = "local";

/** Collapses repeated slashes and a trailing slash; `..` and `.` segments are refused, not resolved. */
export function normalizeSlashes(path: string): string {
  const collapsed = path.replace(/\/{2,}/g, "/");
  return collapsed.length > 1 && collapsed.endsWith("/") ? collapsed.slice(0, -1) : collapsed;
}

function workspacePathProblem(path: string, allowRoot: boolean): string | undefined {
  if (path.includes("\0")) return "Path must not contain NUL bytes";
  if (!path.startsWith("/")) return `Path must be absolute and inside ${WORKSPACE_ROOT}, for example ${WORKSPACE_ROOT}/out.txt`;
  const segments = path.split("/").slice(1);
  if (segments.some((s) => s === ".." || s === ".")) return "Path must not contain '.' or '..' segments";
  const inside = path.startsWith(`${WORKSPACE_ROOT}/`) || path === WORKSPACE_ROOT;
  if (!inside) return `Path must be inside ${WORKSPACE_ROOT}`;
  if (!allowRoot && path === WORKSPACE_ROOT) return `Path must name a file inside ${WORKSPACE_ROOT}, not the workspace itself`;
  return undefined;
}

function workspacePath(allowRoot: boolean) {
  return z
    .string()
    .max(4096, "Path must be at most 4096 characters")
    .transform(normalizeSlashes)
    .superRefine((path, ctx) => {
      const problem = workspacePathProblem(path, allowRoot);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    });
}

/** A file inside the workspace, such as `/workspace/dist/app.js`. */
export const WorkspaceFilePath = workspacePath(false);
/** A directory inside the workspace, the workspace itself included. */
export const WorkspaceDirPath = workspacePath(true);

/** Path of `path` relative to `dir` when it lies inside it (both normalized, absolute). */
export function relativeTo(dir: string, path: string): string | undefined {
  const prefix = dir === "/" ? "/" : `${dir}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : undefined;
}
