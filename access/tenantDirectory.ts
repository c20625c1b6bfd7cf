/**
 * TenantDirectory: one Durable Object per tenant, the tenant's strongly consistent state. It
 * keeps the tenant's sandboxes (for listing, the live-sandbox quota and the idle expiry, which
 * its alarm carries out), how many unfinished jobs each has (for the job quota: added at
 * admission, set by each sandbox's coordinator as its jobs end), and its idempotency keys (one
 * object serialises a tenant's submits, so two identical requests at once create one job; KV,
 * with no compare-and-set, could not). It also hands out the tenant's container slots
 * (containerSlots.ts), which keep its sandboxes within TENANT_MAX_CONTAINERS.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { readConfig } from "../config";
import { countedEnv, operationBudget, withinBudget } from "../platform/operationBudget";
import { addColumnIfMissing } from "../platform/sqlSchema";
import { hex } from "../storage/hex";
import { r2Keys } from "../storage/layout";
import { CacheIndex, type CacheIndexEntry } from "./cacheIndex";
import { ContainerSlots, type SlotGrant } from "./containerSlots";
import { destroySandbox, expireIdleSandbox } from "./sandboxLifecycle";
import type { SealedSecret } from "./secretCipher";
import { SecretTable, type StoredSecretInfo } from "./secretStore";

/** Completed idempotency keys are answered from here this long (Stripe's 24 hours). */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** A submit that neither completed nor failed in this time died mid-way: its key may be used again. */
const IDEMPOTENCY_PENDING_MS = 60 * 1000;
/**
 * A delete or idle expiry takes well under this (its running jobs get 15 s to stop). A marker
 * older than this was left by one that died with this object (a reset, a deploy): the alarm
 * finishes such a delete, and lifts the marker of such an expiry (the next alarm expires the
 * sandbox again if it is still idle), so the sandbox does not answer SANDBOX_BUSY for long.
 */
export const ENDING_STALE_MS = 2 * 60 * 1000;

export type IdempotencyClaim =
  | { state: "claimed"; claim: string; seed: { at: number; random: string } }
  | { state: "replay"; response: string }
  | { state: "mismatch" }
  | { state: "in-progress" };

export type Admission =
  | { ok: true }
  | { ok: false; liveSandboxes: number; newSandboxes: number }
  | { ok: false; ending: string }
  | { ok: false; unfinishedJobs: number };

export interface SandboxEntry {
  sandboxId: string;
  createdAt: string;
  lastActiveAt: string;
}

const SandboxRow = z.object({ sandbox_id: z.string(), created_at: z.number(), last_active_at: z.number() });
const KeyRow = z.object({
  fingerprint: z.string(),
  response: z.string().nullable(),
  created_at: z.number(),
  claim: z.string().nullable(),
  seed_at: z.number().nullable(),
  seed_random: z.string().nullable(),
});

export class TenantDirectory extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly secrets: SecretTable;
  private readonly caches: CacheIndex;
  private readonly slots: ContainerSlots;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, countedEnv(env));
    this.sql = ctx.storage.sql;
    // `ending`: when a delete or idle expiry of the sandbox began (0: none is under way); no job
    // is admitted to it meanwhile. `delete_requested`: the ending is a delete (else an expiry).
    this.sql.exec(`CREATE TABLE IF NOT EXISTS sandboxes (
      sandbox_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL,
      ending INTEGER NOT NULL DEFAULT 0)`);
    addColumnIfMissing(this.sql, "sandboxes", "delete_requested", "INTEGER NOT NULL DEFAULT 0");
    // `unfinished`: jobs admitted and not yet ended, as last known (added at admission, set by the coordinator).
    addColumnIfMissing(this.sql, "sandboxes", "unfinished", "INTEGER NOT NULL DEFAULT 0");
    // Whether this tenant is in the R2 registry the sweeper starts from (written once).
    this.sql.exec("CREATE TABLE IF NOT EXISTS registered (tenant TEXT PRIMARY KEY)");
    // `claim`: which request holds a pending key; only it may complete or release the key.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS idempotency_keys (
      key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, response TEXT, created_at INTEGER NOT NULL, claim TEXT)`);
    // The seed of the request's job IDs (api/jobIds.ts): its time and 32 random bytes (hex).
    addColumnIfMissing(this.sql, "idempotency_keys", "seed_at", "INTEGER");
    addColumnIfMissing(this.sql, "idempotency_keys", "seed_random", "TEXT");
    this.secrets = new SecretTable(this.sql);
    this.caches = new CacheIndex(this.sql);
    this.slots = new ContainerSlots(this.sql);
  }

  /** The tenant's container slots (access/containerSlots.ts), taken and given back by its sandboxes' coordinators. */
  async takeContainerSlot(sandboxId: string, cap: number): Promise<SlotGrant> {
    return this.slots.take(sandboxId, cap, Date.now());
  }

  async renewContainerSlot(sandboxId: string): Promise<boolean> {
    return this.slots.renew(sandboxId, Date.now());
  }

  /** Returns the tenant's sandbox to wake now, the one that has waited longest for a slot. */
  async idleContainerSlot(sandboxId: string, until: number): Promise<string | undefined> {
    return this.slots.idle(sandboxId, Date.now(), until);
  }

  /** The tenant's cache entries (access/cacheIndex.ts); the R2 objects are the caller's to write and delete. */
  async lookupCache(key: string, restoreKeys: string[]): Promise<{ entry: CacheIndexEntry; exact: boolean } | undefined> {
    return this.caches.lookup(key, restoreKeys);
  }

  async saveCache(key: string, objectKey: string, sizeBytes: number, maxBytes: number): Promise<string[]> {
    return this.caches.save(key, objectKey, sizeBytes, maxBytes);
  }

  async listCaches(): Promise<{ entries: CacheIndexEntry[]; totalBytes: number }> {
    return { entries: this.caches.list(), totalBytes: this.caches.totalBytes() };
  }

  async deleteCaches(match: { key: string } | { prefix: string }): Promise<string[]> {
    return this.caches.delete(match);
  }

  async forgetCache(key: string, objectKey: string): Promise<void> {
    this.caches.forget(key, objectKey);
  }

  /** The tenant's secrets, sealed by the Worker before they arrive (access/secretStore.ts). */
  async putSecret(name: string, sealed: SealedSecret): Promise<StoredSecretInfo> {
    return this.secrets.put(name, sealed);
  }

  async listSecrets(): Promise<StoredSecretInfo[]> {
    return this.secrets.list();
  }

  async deleteSecret(name: string): Promise<boolean> {
    return this.secrets.delete(name);
  }

  async readSecrets(names: string[]): Promise<{ name: string; sealed: SealedSecret }[]> {
    return this.secrets.read(names);
  }

  /**
   * Admits jobs (how many per sandbox) unless the tenant would then have more unfinished jobs
   * than `maxUnfinishedJobs` or more live sandboxes than `maxSandboxes`: known sandboxes are
   * marked active now, new ones registered, and the jobs counted as unfinished.
   */
  async admit(
    tenant: string,
    jobsBySandbox: Record<string, number>,
    limits: { maxSandboxes: number; maxUnfinishedJobs: number },
  ): Promise<Admission> {
    await this.rememberTenant(tenant);
    const now = Date.now();
    const unique = Object.keys(jobsBySandbox);
    const newJobs = Object.values(jobsBySandbox).reduce((sum, count) => sum + count, 0);
    const ending = unique.find(
      (id) => this.sql.exec("SELECT 1 FROM sandboxes WHERE sandbox_id = ? AND ending > 0", id).toArray().length > 0,
    );
    if (ending !== undefined) return { ok: false, ending };
    const known = new Set(unique.filter((id) => this.sql.exec("SELECT 1 FROM sandboxes WHERE sandbox_id = ?", id).toArray().length > 0));
    const live = this.count();
    const added = unique.length - known.size;
    if (added > 0 && live + added > limits.maxSandboxes) return { ok: false, liveSandboxes: live, newSandboxes: added };
    const unfinished = this.unfinishedJobs();
    if (unfinished + newJobs > limits.maxUnfinishedJobs) return { ok: false, unfinishedJobs: unfinished };
    for (const id of unique) {
      this.sql.exec(
        `INSERT INTO sandboxes (sandbox_id, created_at, last_active_at, unfinished) VALUES (?, ?, ?, ?)
           ON CONFLICT(sandbox_id) DO UPDATE SET last_active_at = excluded.last_active_at, unfinished = unfinished + excluded.unfinished`,
        id,
        now,
        now,
        jobsBySandbox[id] ?? 0,
      );
    }
    await this.register(tenant);
    await this.armAlarm();
    return { ok: true };
  }

  /** A sandbox's coordinator says how many of its jobs are unfinished (the truth; admission only adds). */
  async reportUnfinished(sandboxId: string, unfinished: number): Promise<void> {
    this.sql.exec("UPDATE sandboxes SET unfinished = ? WHERE sandbox_id = ?", unfinished, sandboxId);
  }

  /** Unfinished jobs and the sandboxes they are in, as last known (metrics: what runs now). */
  async activity(): Promise<{ activeJobs: number; runningSandboxes: number }> {
    const row = z
      .object({ jobs: z.number().nullable(), sandboxes: z.number() })
      .parse(this.sql.exec("SELECT SUM(unfinished) AS jobs, COUNT(*) AS sandboxes FROM sandboxes WHERE unfinished > 0").one());
    return { activeJobs: row.jobs ?? 0, runningSandboxes: row.sandboxes };
  }

  /** The sandboxes with unfinished jobs, as last known: what the sweeper checks on. */
  async busySandboxes(): Promise<string[]> {
    return this.sql
      .exec("SELECT sandbox_id FROM sandboxes WHERE unfinished > 0 ORDER BY sandbox_id")
      .toArray()
      .map((row) => z.object({ sandbox_id: z.string() }).parse(row).sandbox_id);
  }

  async sandboxes(): Promise<SandboxEntry[]> {
    return this.sql
      .exec("SELECT sandbox_id, created_at, last_active_at FROM sandboxes ORDER BY sandbox_id")
      .toArray()
      .map((row) => SandboxRow.parse(row))
      .map((row) => ({
        sandboxId: row.sandbox_id,
        createdAt: new Date(row.created_at).toISOString(),
        lastActiveAt: new Date(row.last_active_at).toISOString(),
      }));
  }

  /**
   * Deletes a sandbox: no job is admitted to it while its jobs are cancelled and its container
   * and workspace destroyed (a submit meanwhile gets a 409 to retry). One never used is left alone.
   */
  async deleteSandbox(tenant: string, sandboxId: string): Promise<{ deleted: boolean; cancelledJobs: number }> {
    const marked = this.sql.exec(
      "UPDATE sandboxes SET ending = ?, delete_requested = 1 WHERE sandbox_id = ?",
      Date.now(),
      sandboxId,
    ).rowsWritten;
    if (marked === 0) return { deleted: false, cancelledJobs: 0 };
    // Armed for when the marker goes stale: should this object be reset mid-delete, the alarm finishes it.
    await this.armAlarm();
    return { deleted: true, cancelledJobs: await this.carryOutDelete(tenant, sandboxId) };
  }

  /** Cancels the marked sandbox's jobs and destroys it; a failure lifts the marker (the sandbox stays). */
  private async carryOutDelete(tenant: string, sandboxId: string): Promise<number> {
    try {
      const cancelledJobs = await destroySandbox(this.env, tenant, sandboxId);
      this.sql.exec("DELETE FROM sandboxes WHERE sandbox_id = ?", sandboxId);
      this.slots.release(sandboxId);
      return cancelledJobs;
    } catch (error) {
      this.sql.exec("UPDATE sandboxes SET ending = 0, delete_requested = 0 WHERE sandbox_id = ?", sandboxId);
      throw error;
    }
  }

  /**
   * Claims an idempotency key for a request with this fingerprint (a hash of its method, path
   * and body): the first claim proceeds; a repeat with the same fingerprint is replayed once
   * complete (in progress until then); a different fingerprint is a mismatch. The claim carries
   * the seed the request's job IDs are made from: a retry of a request that failed or died
   * before completing gets the same seed, so it makes the same jobs, never new ones.
   */
  async claimIdempotencyKey(tenant: string, key: string, fingerprint: string): Promise<IdempotencyClaim> {
    await this.rememberTenant(tenant);
    const now = Date.now();
    const row = this.sql
      .exec("SELECT fingerprint, response, created_at, claim, seed_at, seed_random FROM idempotency_keys WHERE key = ?", key)
      .toArray()[0];
    const existing = row === undefined ? undefined : KeyRow.parse(row);
    if (existing && existing.response !== null && now - existing.created_at <= IDEMPOTENCY_RETENTION_MS) {
      return existing.fingerprint === fingerprint ? { state: "replay", response: existing.response } : { state: "mismatch" };
    }
    if (existing && existing.response === null && existing.claim !== null && now - existing.created_at <= IDEMPOTENCY_PENDING_MS) {
      return existing.fingerprint === fingerprint ? { state: "in-progress" } : { state: "mismatch" };
    }
    // Free: never used, past its retention, released, or its request died. The same request
    // keeps its seed while its jobs may still be held (retention is at least a day).
    const kept =
      existing?.response === null &&
      existing.fingerprint === fingerprint &&
      existing.seed_at !== null &&
      existing.seed_random !== null &&
      now - existing.seed_at < IDEMPOTENCY_RETENTION_MS
        ? { at: existing.seed_at, random: existing.seed_random }
        : undefined;
    const seed = kept ?? { at: now, random: hex(crypto.getRandomValues(new Uint8Array(32))) };
    const claim = crypto.randomUUID();
    this.sql.exec(
      `INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, response, created_at, claim, seed_at, seed_random)
         VALUES (?, ?, NULL, ?, ?, ?, ?)`,
      key,
      fingerprint,
      now,
      claim,
      seed.at,
      seed.random,
    );
    await this.armAlarm();
    return { state: "claimed", claim, seed };
  }

  /** The claimed request succeeded: repeats get this response. */
  async completeIdempotencyKey(key: string, claim: string, response: string): Promise<void> {
    this.sql.exec("UPDATE idempotency_keys SET response = ? WHERE key = ? AND claim = ?", response, key, claim);
  }

  /**
   * The claimed request failed: the key may be claimed again at once. Its seed stays, since the
   * request may have handed some jobs over before it failed; a retry makes those same jobs.
   */
  async releaseIdempotencyKey(key: string, claim: string): Promise<void> {
    this.sql.exec("UPDATE idempotency_keys SET claim = NULL WHERE key = ? AND claim = ? AND response IS NULL", key, claim);
  }

  override alarm(): Promise<void> {
    return withinBudget(operationBudget(this.env), "TenantDirectory alarm", () => this.expire());
  }

  /**
   * Finishes deletes and lifts expiry markers that a reset of this object left behind, expires
   * idle sandboxes (container and workspace destroyed), and drops old idempotency keys.
   */
  private async expire(): Promise<void> {
    const tenant = await this.ctx.storage.get(TENANT_KEY);
    const now = Date.now();
    this.sql.exec("DELETE FROM idempotency_keys WHERE created_at < ?", now - IDEMPOTENCY_RETENTION_MS);
    if (typeof tenant === "string") {
      await this.resumeStaleEndings(tenant, now);
      const idleBefore = now - readConfig(this.env).sandboxIdleTtlSeconds * 1000;
      const idle = this.sql
        .exec("SELECT sandbox_id, created_at, last_active_at FROM sandboxes WHERE last_active_at < ?", idleBefore)
        .toArray()
        .map((row) => SandboxRow.parse(row));
      for (const { sandbox_id: sandboxId } of idle) {
        // Marked first, and only if still idle: a submit admitted meanwhile keeps it alive, and
        // none is admitted while it is destroyed.
        const marked = this.sql.exec(
          "UPDATE sandboxes SET ending = ? WHERE sandbox_id = ? AND last_active_at < ? AND ending = 0",
          now,
          sandboxId,
          idleBefore,
        );
        if (marked.rowsWritten === 0) continue;
        const outcome = await expireIdleSandbox(this.env, tenant, sandboxId).catch((error: unknown) => {
          console.warn(`sandbox ${tenant}.${sandboxId}: idle expiry failed, will try again`, error);
          return "retry" as const;
        });
        if (outcome === "expired") {
          this.sql.exec("DELETE FROM sandboxes WHERE sandbox_id = ?", sandboxId);
          this.slots.release(sandboxId);
        }
        // Busy (a job of its own still runs): a full TTL from now. Failed: again in a minute.
        else {
          const retryAt = outcome === "busy" ? now : now - readConfig(this.env).sandboxIdleTtlSeconds * 1000 + 60_000;
          this.sql.exec("UPDATE sandboxes SET ending = 0, last_active_at = ? WHERE sandbox_id = ?", retryAt, sandboxId);
        }
      }
    }
    await this.armAlarm();
  }

  private async resumeStaleEndings(tenant: string, now: number): Promise<void> {
    const stale = this.sql
      .exec("SELECT sandbox_id, delete_requested FROM sandboxes WHERE ending > 0 AND ending < ?", now - ENDING_STALE_MS)
      .toArray()
      .map((row) => z.object({ sandbox_id: z.string(), delete_requested: z.number() }).parse(row));
    for (const { sandbox_id: sandboxId, delete_requested: deleteRequested } of stale) {
      if (deleteRequested === 0) {
        this.sql.exec("UPDATE sandboxes SET ending = 0 WHERE sandbox_id = ?", sandboxId);
        continue;
      }
      this.sql.exec("UPDATE sandboxes SET ending = ? WHERE sandbox_id = ?", now, sandboxId);
      await this.carryOutDelete(tenant, sandboxId).catch((error: unknown) =>
        console.warn(`sandbox ${tenant}.${sandboxId}: a delete left unfinished by a reset failed again`, error),
      );
    }
  }

  private unfinishedJobs(): number {
    return z.object({ n: z.number().nullable() }).parse(this.sql.exec("SELECT SUM(unfinished) AS n FROM sandboxes").one()).n ?? 0;
  }

  /** Adds the tenant to the registry the sweeper starts from, once. */
  private async register(tenant: string): Promise<void> {
    // Marked first, so that concurrent admissions write the registry entry once.
    if (this.sql.exec("INSERT OR IGNORE INTO registered (tenant) VALUES (?)", tenant).rowsWritten === 0) return;
    try {
      await this.env.JOB_OUTPUT.put(r2Keys.tenantRegistryEntry(tenant), "");
    } catch (error) {
      this.sql.exec("DELETE FROM registered WHERE tenant = ?", tenant);
      throw error;
    }
  }

  private count(): number {
    return z.object({ n: z.number() }).parse(this.sql.exec("SELECT COUNT(*) AS n FROM sandboxes").one()).n;
  }

  /** The alarm goes off when the first sandbox may be idle, a key may expire, or an ending marker goes stale. */
  private async armAlarm(): Promise<void> {
    const ttlMs = readConfig(this.env).sandboxIdleTtlSeconds * 1000;
    const oldest = z.object({ sandbox: z.number().nullable(), key: z.number().nullable(), ending: z.number().nullable() }).parse(
      this.sql
        .exec(
          `SELECT (SELECT MIN(last_active_at) FROM sandboxes) AS sandbox, (SELECT MIN(created_at) FROM idempotency_keys) AS key,
               (SELECT MIN(ending) FROM sandboxes WHERE ending > 0) AS ending`,
        )
        .one(),
    );
    const due = [
      oldest.sandbox === null ? undefined : oldest.sandbox + ttlMs,
      oldest.key === null ? undefined : oldest.key + IDEMPOTENCY_RETENTION_MS,
      oldest.ending === null ? undefined : oldest.ending + ENDING_STALE_MS,
    ].filter((at): at is number => at !== undefined);
    if (due.length === 0) return this.ctx.storage.deleteAlarm();
    const next = Math.max(Date.now(), Math.min(...due));
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next || current < Date.now()) await this.ctx.storage.setAlarm(next);
  }

  /** An alarm is not told the object's name: keep the tenant from a call that was. */
  private async rememberTenant(tenant: string): Promise<void> {
    if ((await this.ctx.storage.get(TENANT_KEY)) !== tenant) await this.ctx.storage.put(TENANT_KEY, tenant);
  }
}

const TENANT_KEY = "tenant";

export function tenantDirectoryFor(namespace: DurableObjectNamespace<TenantDirectory>, tenant: string): DurableObjectStub<TenantDirectory> {
  return namespace.get(namespace.idFromName(tenant));
}
