/**
 * The secrets table of a tenant's TenantDirectory (strongly consistent, no per-key write limit,
 * so a secret set is usable at once and may be set again at any rate). It holds sealed values
 * only: encryption and decryption happen in the Worker that holds the key (secretCipher.ts).
 */
import { z } from "zod";
import type { SealedSecret } from "./secretCipher";

export interface StoredSecretInfo {
  name: string;
  createdAt: string;
  updatedAt: string;
}

const InfoRow = z.object({ name: z.string(), created_at: z.number(), updated_at: z.number() });
const SealedRow = z.object({ name: z.string(), key_id: z.string(), iv: z.instanceof(ArrayBuffer), ciphertext: z.instanceof(ArrayBuffer) });

export class SecretTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS secrets (
      name TEXT PRIMARY KEY, key_id TEXT NOT NULL, iv BLOB NOT NULL, ciphertext BLOB NOT NULL,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
  }

  put(name: string, sealed: SealedSecret): StoredSecretInfo {
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO secrets (name, key_id, iv, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET key_id = excluded.key_id, iv = excluded.iv, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
      name,
      sealed.keyId,
      sealed.iv,
      sealed.ciphertext,
      now,
      now,
    );
    const [info] = this.infos("SELECT name, created_at, updated_at FROM secrets WHERE name = ?", name);
    if (!info) throw new Error(`secret ${name} was not stored`);
    return info;
  }

  list(): StoredSecretInfo[] {
    return this.infos("SELECT name, created_at, updated_at FROM secrets ORDER BY name");
  }

  private infos(query: string, ...bindings: string[]): StoredSecretInfo[] {
    return this.sql
      .exec(query, ...bindings)
      .toArray()
      .map((row) => InfoRow.parse(row))
      .map((row) => ({
        name: row.name,
        createdAt: new Date(row.created_at).toISOString(),
        updatedAt: new Date(row.updated_at).toISOString(),
      }));
  }

  delete(name: string): boolean {
    return this.sql.exec("DELETE FROM secrets WHERE name = ?", name).rowsWritten > 0;
  }

  /** The sealed values of these names that exist (the caller reports the missing ones). */
  read(names: string[]): { name: string; sealed: SealedSecret }[] {
    return names.flatMap((name) =>
      this.sql
        .exec("SELECT name, key_id, iv, ciphertext FROM secrets WHERE name = ?", name)
        .toArray()
        .map((row) => SealedRow.parse(row))
        .map((row) => ({
          name: row.name,
          sealed: { keyId: row.key_id, iv: new Uint8Array(row.iv), ciphertext: new Uint8Array(row.ciphertext) },
        })),
    );
  }
}
