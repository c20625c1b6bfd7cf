/**
 * The caches table of a tenant's TenantDirectory: which R2 object holds each cache key, its size
 * and when it was last used, for lookups (exact key, then restore prefixes: the newest saved
 * first) and for least-recently-used eviction once the tenant's caches pass their byte limit.
 * Each save writes a new object (R2 takes one write per second per key), so the rows here say
 * which object is current and which ones the caller must delete.
 */
import { z } from "zod";

export interface CacheIndexEntry {
  key: string;
  objectKey: string;
  sizeBytes: number;
  createdAt: string;
  lastUsedAt: string;
}

const Row = z.object({ key: z.string(), object_key: z.string(), size: z.number(), created_at: z.number(), last_used_at: z.number() });
const COLUMNS = "key, object_key, size, created_at, last_used_at";

function entryOf(row: unknown): CacheIndexEntry {
  const parsed = Row.parse(row);
  return {
    key: parsed.key,
    objectKey: parsed.object_key,
    sizeBytes: parsed.size,
    createdAt: new Date(parsed.created_at).toISOString(),
    lastUsedAt: new Date(parsed.last_used_at).toISOString(),
  };
}

export class CacheIndex {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS caches (
      key TEXT PRIMARY KEY, object_key TEXT NOT NULL, size INTEGER NOT NULL,
      created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL)`);
  }

  /** The exact key, else the newest entry under the first restore prefix that has one; marked used. */
  lookup(key: string, restoreKeys: string[]): { entry: CacheIndexEntry; exact: boolean } | undefined {
    const exact = this.sql.exec(`SELECT ${COLUMNS} FROM caches WHERE key = ?`, key).toArray()[0];
    let found = exact === undefined ? undefined : { entry: entryOf(exact), exact: true };
    for (const prefix of restoreKeys) {
      if (found) break;
      const row = this.sql
        .exec(`SELECT ${COLUMNS} FROM caches WHERE substr(key, 1, length(?1)) = ?1 ORDER BY created_at DESC, key DESC LIMIT 1`, prefix)
        .toArray()[0];
      if (row !== undefined) found = { entry: entryOf(row), exact: false };
    }
    if (found) this.sql.exec("UPDATE caches SET last_used_at = ? WHERE key = ?", Date.now(), found.entry.key);
    return found;
  }

  /**
   * Makes `objectKey` the key's current object, then evicts the least recently used other
   * entries until the total fits `maxBytes`. Returns the objects no row names any more.
   */
  save(key: string, objectKey: string, sizeBytes: number, maxBytes: number): string[] {
    const now = Date.now();
    const replaced = this.sql.exec("SELECT object_key FROM caches WHERE key = ?", key).toArray()[0];
    this.sql.exec(
      `INSERT INTO caches (${COLUMNS}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET object_key = excluded.object_key, size = excluded.size, created_at = excluded.created_at, last_used_at = excluded.last_used_at`,
      key,
      objectKey,
      sizeBytes,
      now,
      now,
    );
    const orphans = replaced === undefined ? [] : [z.object({ object_key: z.string() }).parse(replaced).object_key];
    while (this.totalBytes() > maxBytes) {
      const oldest = this.sql.exec(`SELECT ${COLUMNS} FROM caches WHERE key != ? ORDER BY last_used_at ASC LIMIT 1`, key).toArray()[0];
      if (oldest === undefined) break;
      const entry = entryOf(oldest);
      this.sql.exec("DELETE FROM caches WHERE key = ?", entry.key);
      orphans.push(entry.objectKey);
    }
    return orphans;
  }

  list(): CacheIndexEntry[] {
    return this.sql.exec(`SELECT ${COLUMNS} FROM caches ORDER BY key`).toArray().map(entryOf);
  }

  totalBytes(): number {
    return z.object({ total: z.number().nullable() }).parse(this.sql.exec("SELECT SUM(size) AS total FROM caches").one()).total ?? 0;
  }

  /** Deletes the entry whose key is `key`, or (with `prefix`) every entry under it; returns their objects. */
  delete(match: { key: string } | { prefix: string }): string[] {
    const rows =
      "key" in match
        ? this.sql.exec(`SELECT ${COLUMNS} FROM caches WHERE key = ?`, match.key).toArray()
        : this.sql.exec(`SELECT ${COLUMNS} FROM caches WHERE substr(key, 1, length(?1)) = ?1`, match.prefix).toArray();
    const entries = rows.map(entryOf);
    for (const entry of entries) this.sql.exec("DELETE FROM caches WHERE key = ? AND object_key = ?", entry.key, entry.objectKey);
    return entries.map((entry) => entry.objectKey);
  }

  /** Forgets an entry whose object is gone (the bucket's retention removed it), unless it was saved anew meanwhile. */
  forget(key: string, objectKey: string): void {
    this.sql.exec("DELETE FROM caches WHERE key = ? AND object_key = ?", key, objectKey);
  }
}
