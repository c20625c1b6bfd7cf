/**
 * `npm run keys -- <command>`: API keys without a dashboard. Works on the local stack's state
 * (.wrangler/, or ARTIFACT_SANDBOX_STATE_DIR) or, with --remote, on the deployed KV namespace,
 * through wrangler's own `kv` commands.
 *
 *   create <tenant> [--name <label>]   prints the new key as the last line (it is shown only once)
 *   list <tenant>                      the tenant's keys: ID, name, creation time, first characters
 *   revoke <key-id>                    the key stops working (deployed: within about a minute)
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { z } from "zod";
import { newApiKey, StoredApiKey } from "../access/apiKeys";
import { TenantId } from "../schemas/ids";
import { kvKeys } from "../storage/layout";

const run = promisify(execFile);

const USAGE = `Usage: npm run keys -- <command> [--remote]
  create <tenant> [--name <label>]   create a key for a tenant; the key is the last line printed
  list <tenant>                      list a tenant's keys
  revoke <key-id>                    revoke a key (its ID from create or list)
Local state: ARTIFACT_SANDBOX_STATE_DIR (default .wrangler), as npm run dev uses it.`;

class UsageError extends Error {}

interface Target {
  remote: boolean;
  stateDir: string;
}

async function wranglerKv(target: Target, args: string[]): Promise<string> {
  const where = target.remote ? ["--remote"] : ["--local", "--persist-to", join(target.stateDir, "state")];
  const { stdout } = await run("npx", ["wrangler", "kv", ...args, "--binding", "LOOKUPS", ...where], {
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  return stdout;
}

/** What a listing shows of each key: kept as the ID entry's KV metadata, so one `list` call reads them all. */
const KeyMetadata = StoredApiKey.pick({ tenant: true, name: true, createdAt: true, hint: true });
const KeyListing = z.array(z.object({ name: z.string(), metadata: KeyMetadata.optional() }));

async function create(target: Target, tenantArg: string, name: string): Promise<void> {
  const tenant = TenantId.safeParse(tenantArg);
  if (!tenant.success) throw new UsageError(tenant.error.issues[0]?.message ?? "invalid tenant");
  const { key, stored } = await newApiKey(tenant.data, name);
  const value = JSON.stringify(stored);
  const metadata = JSON.stringify(KeyMetadata.parse(stored));
  await wranglerKv(target, ["key", "put", kvKeys.apiKeyId(stored.keyId), value, "--metadata", metadata]);
  await wranglerKv(target, ["key", "put", kvKeys.apiKey(stored.hash), value]);
  console.log(`Created key ${stored.keyId} for tenant ${stored.tenant}${name ? ` (${name})` : ""}.`);
  console.log("It is shown only this once; send it as: Authorization: Bearer <key>");
  console.log(key);
}

async function readStored(target: Target, keyId: string): Promise<StoredApiKey | undefined> {
  const raw = await wranglerKv(target, ["key", "get", kvKeys.apiKeyId(keyId), "--text"]).catch(() => undefined);
  if (raw === undefined || raw.trim() === "" || raw.includes("Value not found")) return undefined;
  const parsed = StoredApiKey.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : undefined;
}

async function list(target: Target, tenant: string): Promise<void> {
  const listing = KeyListing.parse(JSON.parse(await wranglerKv(target, ["key", "list", "--prefix", kvKeys.apiKeyIdPrefix])));
  const keys = listing.filter((entry) => entry.metadata?.tenant === tenant);
  if (keys.length === 0) {
    console.log(`Tenant ${tenant} has no keys; create one with: npm run keys -- create ${tenant}`);
    return;
  }
  for (const { name, metadata } of keys) {
    console.log(`${name.slice(kvKeys.apiKeyIdPrefix.length)}  ${metadata?.createdAt}  ${metadata?.hint}...  ${metadata?.name}`);
  }
}

async function revoke(target: Target, keyId: string): Promise<void> {
  const stored = await readStored(target, keyId);
  if (!stored) throw new UsageError(`No key ${keyId}; list a tenant's keys with: npm run keys -- list <tenant>`);
  // The lookup entry first: once it is gone, the key no longer authenticates.
  await wranglerKv(target, ["key", "delete", kvKeys.apiKey(stored.hash)]);
  await wranglerKv(target, ["key", "delete", kvKeys.apiKeyId(keyId)]);
  console.log(`Revoked ${keyId} (tenant ${stored.tenant}).${target.remote ? " Deployed, it stops working within about a minute." : ""}`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { remote: { type: "boolean", default: false }, name: { type: "string", default: "" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const target: Target = { remote: values.remote === true, stateDir: process.env.ARTIFACT_SANDBOX_STATE_DIR ?? ".wrangler" };
  const [command, argument] = positionals;
  if (command === "create" && argument) return create(target, argument, values.name ?? "");
  if (command === "list" && argument) return list(target, argument);
  if (command === "revoke" && argument) return revoke(target, argument);
  throw new UsageError(USAGE);
}

main().catch((error: unknown) => {
  console.error(error instanceof UsageError ? error.message : error);
  process.exit(error instanceof UsageError ? 2 : 1);
});
