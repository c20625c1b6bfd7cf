/**
 * The deployed code path, run as committed: `wrangler dev` with wrangler.jsonc and no overrides
 * (no local container host, containers disabled because there is no Docker engine). A run job
 * must travel API -> queue -> consumer -> SDK -> Sandbox Durable Object and fail there because
 * no container can start, never earlier with an RPC, serialization or type error. As deployed,
 * every request needs an API key: one is made with `npm run keys` in the stack's local state.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { waitUntilServing } from "../../scripts/localStack";
import { freePort } from "./devStack";

const JobAnswer = z.object({
  id: z.string(),
  status: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

describe("the committed configuration under `wrangler dev` (no overrides, no container engine)", () => {
  let wrangler: ChildProcess;
  let stateDir: string;
  let api: string;
  let output = "";
  let headers: Record<string, string>;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "deployed-path-"));
    const created = await promisify(execFile)("node_modules/.bin/tsx", ["scripts/keys.ts", "create", "deployed"], {
      env: { ...process.env, ARTIFACT_SANDBOX_STATE_DIR: stateDir },
    });
    headers = { "content-type": "application/json", authorization: `Bearer ${created.stdout.trim().split("\n").at(-1)}` };
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    // Only where it listens and keeps state differ from a plain `npx wrangler dev`.
    const persistTo = join(stateDir, "state");
    wrangler = spawn("node_modules/.bin/wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CI: "true" },
    });
    wrangler.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    wrangler.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    await waitUntilServing(api, 60_000);
  }, 90_000);

  afterAll(async () => {
    if (wrangler.exitCode === null) {
      const exited = new Promise((resolve) => wrangler.once("exit", resolve));
      wrangler.kill("SIGINT");
      await exited;
    }
    await rm(stateDir, { recursive: true, force: true });
  });

  it("requires an API key", async () => {
    const anonymous = await fetch(`${api}/v1/sandboxes/deployed-path/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "run", command: "true" }),
    });
    expect(anonymous.status).toBe(401);
  });

  it("fails a run job with SANDBOX_UNAVAILABLE saying no container could start", async () => {
    const submitted = await fetch(`${api}/v1/sandboxes/deployed-path/jobs`, {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "run", command: "echo hello", artifacts: ["*.txt"] }),
    });
    expect(submitted.status).toBe(202);
    const { id } = JobAnswer.parse(await submitted.json());

    let job = JobAnswer.parse(await (await fetch(`${api}/v1/jobs/${id}?wait=30`, { headers })).json());
    expect(job.status, output).toBe("failed");
    expect(job.error?.code).toBe("SANDBOX_UNAVAILABLE");
    expect(job.error?.message).toMatch(/No container could start/);
    expect(job.error?.message).not.toMatch(/serializ|RPC|TypeError|is not a function/i);

    // A file job takes the same path.
    const read = await fetch(`${api}/v1/sandboxes/deployed-path/jobs`, {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "file", op: "read", path: "/workspace/a.txt" }),
    });
    job = JobAnswer.parse(await (await fetch(`${api}/v1/jobs/${JobAnswer.parse(await read.json()).id}?wait=30`, { headers })).json());
    expect(job.error?.code).toBe("SANDBOX_UNAVAILABLE");
  }, 90_000);
});
