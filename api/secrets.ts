/**
 * `/v1/secrets`: a tenant's secrets, write-only. A value is sealed here (the Worker holds the
 * key) and stored sealed in the tenant's directory; it is never answered, logged or echoed.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { sealSecret } from "../access/secretCipher";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { DeletedSecret, SecretEntry, SecretList, SecretName, SecretPutRequest } from "../schemas/secrets";
import { ApiError, ErrorCode } from "./errors";
import { ErrorBody, newRouter } from "./openapi";

const SecretParams = z.object({ name: SecretName.openapi({ param: { name: "name", in: "path" } }) });

const putSecret = createRoute({
  method: "put",
  path: "/v1/secrets/{name}",
  summary: "Store a secret (encrypted at rest); setting it again replaces its value. Jobs name it in `secrets`",
  request: { params: SecretParams, body: { required: true, content: { "application/json": { schema: SecretPutRequest } } } },
  responses: {
    200: { description: "Stored: its name and times, never its value", content: { "application/json": { schema: SecretEntry } } },
    400: { description: "Invalid name or value", content: { "application/json": { schema: ErrorBody } } },
    503: { description: "No encryption key is configured", content: { "application/json": { schema: ErrorBody } } },
  },
});

const listSecrets = createRoute({
  method: "get",
  path: "/v1/secrets",
  summary: "The tenant's secrets, by name only",
  responses: { 200: { description: "Every secret's name and times", content: { "application/json": { schema: SecretList } } } },
});

const deleteSecret = createRoute({
  method: "delete",
  path: "/v1/secrets/{name}",
  summary: "Delete a secret (idempotent: deleted is false when there was none)",
  request: { params: SecretParams },
  responses: {
    200: { description: "Deleted, or there was nothing to delete", content: { "application/json": { schema: DeletedSecret } } },
  },
});

export const secretsRouter = newRouter()
  .openapi(putSecret, async (c) => {
    const { name } = c.req.valid("param");
    const { value } = c.req.valid("json");
    const keys = c.var.jobs.config.secretsKeys;
    if (keys.length === 0) {
      throw new ApiError(
        503,
        ErrorCode.SECRETS_NOT_CONFIGURED,
        "Secrets are not configured on this service: it has no SECRETS_ENCRYPTION_KEY",
      );
    }
    const sealed = await sealSecret(keys, c.var.tenant, name, value);
    return c.json(await tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant).putSecret(name, sealed), 200);
  })
  .openapi(listSecrets, async (c) => c.json({ secrets: await tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant).listSecrets() }, 200))
  .openapi(deleteSecret, async (c) => {
    const { name } = c.req.valid("param");
    const deleted = await tenantDirectoryFor(c.env.TENANT_DIRECTORY, c.var.tenant).deleteSecret(name);
    return c.json({ name, deleted }, 200);
  });
