/** Pieces every OpenAPI router shares: the error schema and one validation hook. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { SandboxId } from "../schemas/ids";
import type { ApiEnv } from "./context";
import { ErrorCode, validationError } from "./errors";

// Declared with the other answers the client parses too.
export { ErrorBody } from "../schemas/api";

/** A router whose every validation failure becomes one ApiError: all 400s share a shape. */
export function newRouter(): OpenAPIHono<ApiEnv> {
  return new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const onSandboxId = result.target === "param" && result.error.issues.some((issue) => issue.path[0] === "sandboxId");
        throw validationError(result.error, onSandboxId ? ErrorCode.INVALID_SANDBOX_ID : ErrorCode.INVALID_REQUEST);
      }
    },
  });
}

/** The `{sandboxId}` path parameter, shared by the routes under /v1/sandboxes/{sandboxId}. */
export const SandboxParams = z.object({ sandboxId: SandboxId.openapi({ param: { name: "sandboxId", in: "path" }, example: "build-42" }) });
