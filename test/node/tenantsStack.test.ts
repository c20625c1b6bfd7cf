/**
 * Tenants on a real `npm run dev` stack run as deployed (REQUIRE_API_KEYS=1): keys made, listed
 * and revoked with `npm run keys` while the stack runs, and a sandbox left idle past its TTL
 * destroyed with its workspace.
 */
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { authHeaders, awaitJob, freePort, submitJob, tempStateDir } from "./devStack";

const run = promisify(execFile);
const IDLE_TTL_SECONDS = 3;
const SandboxList = z.object({ sandboxes: z.array(z.object({ sandboxId: z.string(), expiresAt: z.string() })) });
/** An expiry is the directory's alarm at `expiresAt`, then a container destroy and an R2 delete. */
const EXPIRY_MARGIN_MS = 10_000;

describe("tenants on the local stack", () => {
  let stack: DevProcess | undefined;
  let stateDir: string | undefined;

  afterAll(async () => {
    await stack?.kill();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  async function keys(...args: string[]): Promise<string> {
    const { stdout } = await run("node_modules/.bin/tsx", ["scripts/keys.ts", ...args], {
      env: { ...process.env, ARTIFACT_SANDBOX_STATE_DIR: stateDir },
    });
    return stdout;
  }

  it("takes keys made with npm run keys, refuses them once revoked, and expires idle sandboxes", { timeout: 180_000 }, async () => {
    stateDir = await tempStateDir("tenants-");
    stack = await startDevProcess({
      apiPort: await freePort(),
      hostPort: await freePort(),
      stateDir,
      env: { REQUIRE_API_KEYS: "1", SANDBOX_IDLE_TTL_SECONDS: String(IDLE_TTL_SECONDS) },
    });
    const { apiUrl } = stack;

    const created = (await keys("create", "acme", "--name", "ci")).trim().split("\n");
    const key = created.at(-1) ?? "";
    expect(key).toMatch(/^as_live_[0-9a-f]{56}$/);
    const keyId = /key_[0-9a-z]+/.exec(created.join("\n"))?.[0] ?? "";
    expect(await keys("list", "acme")).toContain(keyId);

    expect((await fetch(`${apiUrl}/v1/sandboxes`)).status).toBe(401);
    const written = await submitJob(apiUrl, "idle", { type: "run", command: "echo data > kept.txt" }, key);
    expect((await awaitJob(apiUrl, written.id, 60_000, key)).status).toBe("succeeded");

    // Idle past its TTL: gone from the list, and its workspace with it.
    const sandboxes = async () =>
      SandboxList.parse(await (await fetch(`${apiUrl}/v1/sandboxes`, { headers: authHeaders(key) })).json()).sandboxes;
    const listed = async () => (await sandboxes()).map((s) => s.sandboxId);
    const [idle] = await sandboxes();
    expect(idle?.sandboxId).toBe("idle");
    const deadline = Date.parse(idle?.expiresAt ?? "") + EXPIRY_MARGIN_MS;
    while ((await listed()).includes("idle") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await listed()).toEqual([]);
    const after = await submitJob(apiUrl, "idle", { type: "run", command: "ls -A /workspace | wc -l" }, key);
    expect((await awaitJob(apiUrl, after.id, 60_000, key)).status).toBe("succeeded");
    const stdout = await fetch(`${apiUrl}/v1/jobs/${after.id}/stdout`, { headers: authHeaders(key) });
    expect((await stdout.text()).trim()).toBe("0");

    expect(await keys("revoke", keyId)).toContain("Revoked");
    // Within API_KEY_CACHE_SECONDS (5 s) the Worker stops trusting the key it had verified.
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect((await fetch(`${apiUrl}/v1/sandboxes`, { headers: authHeaders(key) })).status).toBe(401);
  });
});
