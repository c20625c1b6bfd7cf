/**
 * A run job's caches: before the command, each key is resolved (its hashFiles templates hashed
 * in the sandbox) and restored from R2 by the exact key or a restore prefix; after a success
 * that missed its key, its paths are archived in the sandbox and saved as a new object, which
 * the tenant's directory then names (evicting the least recently used entries over its limit).
 */
import type { CacheIndexEntry } from "../access/cacheIndex";
import { tenantDirectoryFor } from "../access/tenantDirectory";
import { readConfig } from "../config";
import type { SandboxPort } from "../sandbox/port";
import { type CacheOutcome, type CacheSpec, HASH_FILES, hashFilesArguments } from "../schemas/cache";
import { deleteCacheObjects, newCacheObjectKey } from "../storage/cacheObjects";

/** The tenant's cache index (its TenantDirectory), and the limit of its caches' bytes. */
export interface CacheContext {
  lookup(key: string, restoreKeys: string[]): Promise<{ entry: CacheIndexEntry; exact: boolean } | undefined>;
  save(key: string, objectKey: string, sizeBytes: number, maxBytes: number): Promise<string[]>;
  forget(key: string, objectKey: string): Promise<void>;
  maxBytes: number;
}

export function cacheContextFor(env: Env, tenant: string): CacheContext {
  const directory = () => tenantDirectoryFor(env.TENANT_DIRECTORY, tenant);
  return {
    lookup: (key, restoreKeys) => directory().lookupCache(key, restoreKeys),
    save: (key, objectKey, sizeBytes, maxBytes) => directory().saveCache(key, objectKey, sizeBytes, maxBytes),
    forget: (key, objectKey) => directory().forgetCache(key, objectKey),
    maxBytes: readConfig(env).cacheMaxBytes,
  };
}

interface CacheRun {
  sandbox: SandboxPort;
  bucket: R2Bucket;
  tenant: string;
  jobId: string;
  cwd: string;
  caches: CacheContext | undefined;
}

const quote = (value: string) => `'${value.replaceAll("'", `'"'"'`)}'`;

/**
 * In a subshell: Cloudflare's container runs housekeeping commands in one long-lived shell, where
 * a `cd`, a `shopt` or a top-level `exit` would outlive (or end) that shell.
 */
const contained = (script: string) => `(\n${script}\n)`;

/** A SHA-256 over the matching files' names and contents, or "" when none match (as actions/cache's hashFiles). */
async function hashFiles(run: CacheRun, globs: string[]): Promise<string> {
  // The globs are checked at submit to need no quoting; left unquoted, bash expands them here.
  const script = [
    `cd -- ${quote(run.cwd)} 2>/dev/null || exit 0`,
    "shopt -s globstar nullglob dotglob",
    `set -- ${globs.join(" ")}`,
    `files=$(for f in "$@"; do [ -f "$f" ] && printf '%s\\n' "$f"; done | LC_ALL=C sort -u)`,
    `[ -z "$files" ] || printf '%s\\n' "$files" | while IFS= read -r f; do sha256sum -- "$f"; done | sha256sum | cut -c1-64`,
  ].join("\n");
  return (await run.sandbox.run(contained(script))).stdout.trim();
}

export async function resolveKey(run: CacheRun, template: string): Promise<string> {
  let key = template;
  for (const match of template.matchAll(HASH_FILES)) {
    key = key.replace(match[0], await hashFiles(run, hashFilesArguments(match[1] ?? "") ?? []));
  }
  return key;
}

/** Restores each cache it finds; the outcomes (saved: false so far) in the order of `specs`. */
export async function restoreCaches(run: CacheRun, specs: CacheSpec[]): Promise<CacheOutcome[]> {
  const outcomes: CacheOutcome[] = [];
  for (const [index, spec] of specs.entries()) {
    const key = await resolveKey(run, spec.key);
    const miss: CacheOutcome = { key, result: "miss", restoredKey: null, saved: false, savedBytes: null, note: null };
    const found = run.caches ? await run.caches.lookup(key, spec.restoreKeys) : undefined;
    const object = found ? await run.bucket.get(found.entry.objectKey) : null;
    if (!found || !object) {
      // Named but gone: the bucket's retention removed it. It is a miss, and forgotten.
      if (found) await run.caches?.forget(found.entry.key, found.entry.objectKey);
      outcomes.push(miss);
      continue;
    }
    const archive = `/tmp/.cache-restore-${run.jobId}-${index}.tar.gz`;
    await run.sandbox.writeFileFromStream(archive, object.body);
    await run.sandbox.run(
      contained(
        `mkdir -p -- ${quote(run.cwd)} && tar -xzpf ${quote(archive)} -C ${quote(run.cwd)} --no-same-owner; status=$?; rm -f ${quote(archive)}; exit $status`,
      ),
    );
    outcomes.push({ ...miss, result: found.exact ? "hit" : "partial", restoredKey: found.entry.key });
  }
  return outcomes;
}

/** After a success: saves every cache that was not an exact hit. A failed save is noted, never a failed job. */
export async function saveCaches(run: CacheRun, specs: CacheSpec[], outcomes: CacheOutcome[]): Promise<CacheOutcome[]> {
  const saved: CacheOutcome[] = [];
  for (const [index, outcome] of outcomes.entries()) {
    const spec = specs[index];
    if (!spec || outcome.result === "hit" || !run.caches) {
      saved.push(outcome);
      continue;
    }
    saved.push(
      await saveOne(run, run.caches, spec, outcome, index).catch((error: unknown): CacheOutcome => {
        console.warn(`job ${run.jobId}: cache ${index} not saved`, error);
        return { ...outcome, note: `not saved: ${error instanceof Error ? error.message.slice(0, 300) : "error"}` };
      }),
    );
  }
  return saved;
}

async function saveOne(run: CacheRun, caches: CacheContext, spec: CacheSpec, outcome: CacheOutcome, index: number): Promise<CacheOutcome> {
  const archive = `/tmp/.cache-save-${run.jobId}-${index}.tar.gz`;
  // Only the paths that exist (globs expanded: paths are checked at submit to need no quoting); none is nothing to save.
  const made = await run.sandbox.run(
    contained(
      [
        `cd -- ${quote(run.cwd)} || exit 1`,
        "shopt -s globstar nullglob dotglob",
        `set --; for p in ${spec.paths.join(" ")}; do [ -e "$p" ] && set -- "$@" "$p"; done`,
        `if [ $# -eq 0 ]; then echo none; exit 0; fi`,
        `tar -czf ${quote(archive)} -- "$@" && echo made`,
      ].join("\n"),
    ),
  );
  if (made.stdout.trim() !== "made") return { ...outcome, note: "not saved: none of its paths exist" };
  try {
    const file = await run.sandbox.readFile(archive);
    if (file.size > caches.maxBytes) {
      await file.body.cancel();
      return {
        ...outcome,
        note: `not saved: its archive (${file.size} bytes) is over the tenant's cache limit (${caches.maxBytes} bytes)`,
      };
    }
    const objectKey = await newCacheObjectKey(run.tenant, outcome.key);
    const sized = new FixedLengthStream(file.size);
    await Promise.all([file.body.pipeTo(sized.writable), run.bucket.put(objectKey, sized.readable)]);
    const orphans = await caches.save(outcome.key, objectKey, file.size, caches.maxBytes);
    await deleteCacheObjects(run.bucket, orphans);
    return { ...outcome, saved: true, savedBytes: file.size };
  } finally {
    await run.sandbox.run(contained(`rm -f ${quote(archive)}`)).catch(() => undefined);
  }
}
