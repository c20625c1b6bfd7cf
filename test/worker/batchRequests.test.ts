/**
 * A batch's stored request, what a rerun runs again: sealed with the secrets key in R2 (no env
 * value, stdin or command readable there), opened for the rerun; without a key, not kept when it
 * carries such values, and a rerun says why.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BatchView } from "../../schemas/job";
import { r2Keys } from "../../storage/layout";
import worker from "../../worker";
import { api, BASE, expectError, uniqueSandbox } from "./client";
import { byName, finishedBatch, run, statuses, submitPipeline } from "./support/batches";

/** The Worker with another SECRETS_ENCRYPTION_KEY (a Worker secret, so not among the generated Env's vars). */
function workerWithKey(key: string) {
  const changed: Env = Object.assign({}, env, { SECRETS_ENCRYPTION_KEY: key });
  return (path: string, init?: RequestInit) => worker.fetch(new Request(`${BASE}${path}`, init), changed, createExecutionContext());
}

const jsonPost = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

async function storedRequest(batchId: string): Promise<string> {
  const object = await env.JOB_OUTPUT.get(r2Keys.batchRequest("local", batchId));
  expect(object).not.toBeNull();
  return (await object?.text()) ?? "";
}

describe("a batch's stored request", () => {
  it("holds no plaintext env value, stdin or command in R2, and a rerun still runs with them", async () => {
    const envValue = `env-${crypto.randomUUID()}`;
    const stdinValue = `stdin-${crypto.randomUUID()}`;
    const marker = `cmd-${crypto.randomUUID().slice(0, 8)}`;
    const sandboxId = uniqueSandbox("stored");
    const first = await finishedBatch(
      (
        await submitPipeline([
          {
            name: "deploy",
            sandboxId,
            // Fails the first time only: the flag file stays in the sandbox's workspace.
            job: run(`echo ${marker} "$TOKEN" "$(cat)"; if [ -f tried ]; then exit 0; else touch tried; exit 1; fi`, {
              env: { TOKEN: envValue },
              stdin: stdinValue,
            }),
          },
        ])
      ).batchId,
    );
    expect(first.status).toBe("failed");
    const stored = await storedRequest(first.batchId);
    expect(stored).toContain('"sealed"');
    for (const plain of [envValue, stdinValue, marker, "TOKEN"]) expect(stored).not.toContain(plain);

    const response = await api(`/v1/batches/${first.batchId}/rerun?failed=true`, { method: "POST" });
    expect(response.status, await response.clone().text()).toBe(202);
    const second = await finishedBatch(BatchView.parse(await response.json()).batchId);
    expect(statuses(second)).toEqual({ deploy: "succeeded" });
    expect(await (await api(`/v1/jobs/${byName(second).deploy?.id}/stdout`)).text()).toBe(`${marker} ${envValue} ${stdinValue}\n`);
    expect(await storedRequest(second.batchId)).not.toContain(envValue);
  });

  it("cannot be read once its key is no longer configured: 409 REQUEST_UNREADABLE", async () => {
    const first = await finishedBatch(
      (await submitPipeline([{ name: "a", sandboxId: uniqueSandbox("stored-key"), job: run("exit 1", { env: { A: "1" } }) }])).batchId,
    );
    const rotated = workerWithKey("other:0123456789abcdef0123456789abcdef0123456789abcdef");
    const message = await expectError(await rotated(`/v1/batches/${first.batchId}/rerun`, { method: "POST" }), 409, "REQUEST_UNREADABLE");
    expect(message).toContain("no longer in SECRETS_ENCRYPTION_KEY");
  });

  it("without a secrets key, is kept only when it carries no env value, stdin or file content", async () => {
    const keyless = workerWithKey("");
    const withEnv = BatchView.parse(
      await (
        await keyless("/v1/jobs", jsonPost({ jobs: [{ sandboxId: uniqueSandbox("keyless"), job: run("true", { env: { A: "v-1" } }) }] }))
      ).json(),
    );
    expect(JSON.parse(await storedRequest(withEnv.batchId))).toEqual({ withheld: true });
    const message = await expectError(await keyless(`/v1/batches/${withEnv.batchId}/rerun`, { method: "POST" }), 409, "REQUEST_UNREADABLE");
    expect(message).toContain("SECRETS_ENCRYPTION_KEY was not set");

    const plain = BatchView.parse(
      await (await keyless("/v1/jobs", jsonPost({ jobs: [{ sandboxId: uniqueSandbox("keyless"), job: run("echo plain") }] }))).json(),
    );
    expect(JSON.parse(await storedRequest(plain.batchId))).toMatchObject({ jobs: [{ job: { command: "echo plain" } }] });
    await finishedBatch(plain.batchId);
    const again = await keyless(`/v1/batches/${plain.batchId}/rerun`, { method: "POST" });
    expect(again.status, await again.clone().text()).toBe(202);
    await finishedBatch(BatchView.parse(await again.json()).batchId);
  });
});
