/**
 * A tenant's secrets: stored encrypted, written and deleted by name, listed by name only. A run
 * job names the ones it gets in its environment (`secrets`); their values never come back out.
 */
import { z } from "@hono/zod-openapi";

/** As an environment variable's name, since that is what a secret becomes in a job. */
export const SecretName = z
  .string()
  .max(128, "Secret names are at most 128 characters")
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "Secret names are environment variable names: [A-Za-z_][A-Za-z0-9_]*");

/** Shorter values would mask ordinary words in every job's output. */
export const MIN_SECRET_BYTES = 4;
export const MAX_SECRET_BYTES = 64 * 1024;

export const SecretPutRequest = z
  .object({
    value: z
      .string()
      .min(MIN_SECRET_BYTES, `A secret's value is at least ${MIN_SECRET_BYTES} characters (it is masked wherever it appears in output)`)
      .max(MAX_SECRET_BYTES, `A secret's value is at most ${MAX_SECRET_BYTES} characters`),
  })
  .strict()
  .openapi("SecretPut");
export type SecretPutRequest = z.infer<typeof SecretPutRequest>;

export const SecretEntry = z.object({ name: z.string(), createdAt: z.string(), updatedAt: z.string() }).openapi("Secret");
export type SecretEntry = z.infer<typeof SecretEntry>;

export const SecretList = z.object({ secrets: z.array(SecretEntry) }).openapi("SecretList");
export type SecretList = z.infer<typeof SecretList>;

export const DeletedSecret = z.object({ name: z.string(), deleted: z.boolean() });
export type DeletedSecret = z.infer<typeof DeletedSecret>;
