/**
 * Caches a run job names (`cache`): directories saved to R2 under a key after a success that
 * missed it, and restored before the command by that key or, failing that, by the newest entry
 * whose key starts with one of `restoreKeys` (in order), as actions/cache does. Scoped to the
 * tenant, shared by all its sandboxes; a key may be saved again (the last write wins).
 */
import { z } from "@hono/zod-openapi";

/** `{{ hashFiles("a", "b/**") }}`: a SHA-256 of the matching files (names and contents), computed in the sandbox. */
export const HASH_FILES = /\{\{\s*hashFiles\(([^)]*)\)\s*\}\}/g;
/** Characters a key (outside its templates) and a restore prefix may hold: they name objects and rows. */
const KEY_TEXT = /^[A-Za-z0-9._+=,:@-]*$/;
/** A glob or path inside the job's cwd: no quoting is ever needed for it in a shell. */
const SAFE_PATH = /^[A-Za-z0-9_.*?/+=@-]+$/;
export const MAX_CACHE_KEY_LENGTH = 512;

const CachePath = z
  .string()
  .min(1)
  .max(512)
  .refine((path) => SAFE_PATH.test(path) && !path.startsWith("/") && !path.split("/").includes(".."), {
    message: "Cache paths are relative to cwd, without '..', of letters, digits and _ . * ? / + = @ -",
  });

/** The glob arguments of a hashFiles template, or undefined when they are not plain double-quoted safe paths. */
export function hashFilesArguments(inside: string): string[] | undefined {
  const args = inside.split(",").map((arg) => arg.trim());
  const paths = args.map((arg) => /^"([^"]+)"$/.exec(arg)?.[1]);
  return paths.every((path): path is string => path !== undefined && CachePath.safeParse(path).success) ? paths : undefined;
}

const CacheKeyTemplate = z
  .string()
  .min(1)
  .max(MAX_CACHE_KEY_LENGTH)
  .superRefine((key, ctx) => {
    for (const match of key.matchAll(HASH_FILES)) {
      if (!hashFilesArguments(match[1] ?? "")) {
        ctx.addIssue({ code: "custom", message: `hashFiles takes double-quoted paths or globs relative to cwd: ${match[0]}` });
      }
    }
    if (!KEY_TEXT.test(key.replace(HASH_FILES, ""))) {
      ctx.addIssue({ code: "custom", message: 'Cache keys are letters, digits, . _ + = , : @ - and {{ hashFiles("...") }} templates' });
    }
  });

export const CacheKey = z.string().min(1).max(MAX_CACHE_KEY_LENGTH).regex(KEY_TEXT, "Cache keys are letters, digits and . _ + = , : @ -");

export const CacheSpec = z
  .object({
    key: CacheKeyTemplate,
    paths: z.array(CachePath).min(1).max(16),
    restoreKeys: z.array(CacheKey).max(8).default([]),
  })
  .strict();
export type CacheSpec = z.infer<typeof CacheSpec>;

/** What a job's record says of each of its caches. */
export const CacheOutcome = z.object({
  /** The key as resolved (templates replaced). */
  key: z.string(),
  /** `hit`: the key itself was restored; `partial`: an entry found by a restore key; `miss`: nothing. */
  result: z.enum(["hit", "partial", "miss"]),
  restoredKey: z.string().nullable(),
  /** Saved under `key` after the job succeeded (never after an exact hit). */
  saved: z.boolean(),
  savedBytes: z.number().int().nullable(),
  /** Why it was not saved, when it was due to be. */
  note: z.string().nullable(),
});
export type CacheOutcome = z.infer<typeof CacheOutcome>;

export const CacheEntryView = z
  .object({ key: z.string(), sizeBytes: z.number().int(), createdAt: z.string(), lastUsedAt: z.string() })
  .openapi("CacheEntry");
export type CacheEntryView = z.infer<typeof CacheEntryView>;

export const CacheList = z
  .object({ caches: z.array(CacheEntryView), totalBytes: z.number().int(), maxBytes: z.number().int() })
  .openapi("CacheList");
export type CacheList = z.infer<typeof CacheList>;

export const DeletedCaches = z.object({ deleted: z.number().int() });
export type DeletedCaches = z.infer<typeof DeletedCaches>;
