/**
 * Secrets: stored encrypted, write-only, listed by name; a job that names one gets it in its
 * environment and sees it masked as *** in its live and stored output; its value never appears
 * in a record or an error.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { openSecret, sealSecret } from "../../access/secretCipher";
import { tenantDirectoryFor } from "../../access/tenantDirectory";
import { maskedListener, SecretMasker } from "../../execution/secrets";
import { SecretList } from "../../schemas/secrets";
import worker from "../../worker";
import { api, BASE, expectError, postJson, runJob, submit, uniqueSandbox } from "./client";

const encode = (text: string) => new TextEncoder().encode(text);

const putSecret = (name: string, value: string) => postJson(`/v1/secrets/${name}`, { value }, "PUT");

async function text(path: string): Promise<string> {
  const response = await api(path);
  expect(response.status).toBe(200);
  return response.text();
}

describe("secrets", () => {
  it("are stored sealed, listed by name only, replaced and deleted by name", async () => {
    const name = `TOKEN_${crypto.randomUUID().slice(0, 8).toUpperCase()}`;
    const value = `s3cr3t-${crypto.randomUUID()}`;
    const put = await putSecret(name, value);
    expect(put.status, await put.clone().text()).toBe(200);
    expect(await put.text()).not.toContain(value);

    const listed = SecretList.parse(await (await api("/v1/secrets")).json());
    expect(listed.secrets.map((secret) => secret.name)).toContain(name);
    expect(JSON.stringify(listed)).not.toContain(value);

    // At rest: only ciphertext in the tenant's directory.
    const sealed = await tenantDirectoryFor(env.TENANT_DIRECTORY, "local").readSecrets([name]);
    expect(sealed).toHaveLength(1);
    expect(new TextDecoder().decode(sealed[0]?.sealed.ciphertext)).not.toContain(value);

    expect((await putSecret(name, `${value}-2`)).status).toBe(200);
    const deleted = await api(`/v1/secrets/${name}`, { method: "DELETE" });
    expect(await deleted.json()).toEqual({ name, deleted: true });
    expect(await (await api(`/v1/secrets/${name}`, { method: "DELETE" })).json()).toEqual({ name, deleted: false });
    expect(JSON.stringify(await (await api("/v1/secrets")).json())).not.toContain(name);
  });

  it("are refused with 503 by a service that has no SECRETS_ENCRYPTION_KEY", async () => {
    const request = new Request(`${BASE}/v1/secrets/TOKEN`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: "some-value" }),
    });
    // A Worker secret, so not among the generated Env's vars.
    const withoutKey: Env = Object.assign({}, env, { SECRETS_ENCRYPTION_KEY: "" });
    const response = await worker.fetch(request, withoutKey, createExecutionContext());
    expect(await expectError(response, 503, "SECRETS_NOT_CONFIGURED")).not.toContain("some-value");
  });

  it("refuses bad names and short values without echoing the value", async () => {
    await expectError(await putSecret("1BAD", "long-enough-value"), 400, "INVALID_REQUEST");
    const message = await expectError(await putSecret("SHORT", "abc"), 400, "INVALID_REQUEST");
    expect(message).not.toContain("abc");
    await expectError(
      await postJson("/v1/sandboxes/s/jobs", { type: "run", command: "true", env: { A: "1" }, secrets: ["A"] }),
      400,
      "INVALID_REQUEST",
    );
  });

  it("reach the command as env vars and are masked in stored and live output, also when split across chunks", async () => {
    const name = `NPM_TOKEN_${crypto.randomUUID().slice(0, 8).toUpperCase()}`;
    const value = `npm_${crypto.randomUUID().replaceAll("-", "")}`;
    expect((await putSecret(name, value)).status).toBe(200);
    const sandboxId = uniqueSandbox("secret");
    // The value written in two pieces a moment apart (two live chunks), then whole on stderr,
    // and its length proves the command saw it.
    const half = Math.floor(value.length / 2);
    const command = [
      `printf 'token=%s' "\${${name}:0:${half}}"`,
      "sleep 0.3",
      `printf '%s\\n' "\${${name}:${half}}"`,
      `echo "on stderr: $${name}" >&2`,
      `echo "length \${#${name}}"`,
    ].join("; ");
    const submitted = await submit(sandboxId, { type: "run", command, secrets: [name] });
    const logs = await text(`/v1/jobs/${submitted.id}/logs`);
    // The log stream ends once the job has finished.
    const record = await text(`/v1/jobs/${submitted.id}`);
    expect(JSON.parse(record).status).toBe("succeeded");
    expect(JSON.parse(record).request.secrets).toEqual([name]);
    expect(record).not.toContain(value);

    const stdout = await text(`/v1/jobs/${submitted.id}/stdout`);
    expect(stdout).toBe(`token=***\nlength ${value.length}\n`);
    expect(await text(`/v1/jobs/${submitted.id}/stderr`)).toBe("on stderr: ***\n");
    expect(logs).toContain("token=");
    expect(logs).toContain("***");
    expect(logs).not.toContain(value);
    expect(logs).not.toContain(value.slice(0, half));
    expect(logs).not.toContain(value.slice(half));
  });

  it("fail a job that names a secret that does not exist, naming it and nothing else", async () => {
    const job = await runJob(uniqueSandbox("secret"), { type: "run", command: "echo never", secrets: ["NO_SUCH_SECRET_X"] });
    expect(job.status).toBe("failed");
    expect(job.error?.code).toBe("SECRET_NOT_FOUND");
    expect(job.error?.message).toContain("NO_SUCH_SECRET_X");
    expect(job.stdout).toBeNull();
  });
});

describe("the masker", () => {
  it("masks a value cut by the output cap on either side of the drop marker", () => {
    const masker = new SecretMasker(["abcdefgh"]);
    const marker = "\n[... 100 bytes of output dropped here ...]\n";
    const stored = new TextEncoder().encode(`head abcd${marker}efgh tail abcdefgh`);
    expect(new TextDecoder().decode(masker.maskStored(stored, 100))).toBe(`head ***${marker}*** tail ***`);
  });

  it("holds back only what could begin a value, and releases it on flush", () => {
    const masker = new SecretMasker(["secret-value"]);
    const seen: string[] = [];
    const live = masker.live((text) => seen.push(text));
    live.push("a sec");
    live.push("ret-val");
    expect(seen.join("")).toBe("a ");
    live.push("ue! and sec");
    live.flush();
    expect(seen.join("")).toBe("a ***! and sec");
  });

  it("masks a value split between live pieces inside one of its characters", () => {
    const value = "clé-secrète-99";
    const bytes = encode(`a ${value} b`);
    const cutAt = encode("a clé-secr").byteLength + 1;
    const seen: string[] = [];
    const listener = maskedListener(new SecretMasker([value]), (_stream, shown) => seen.push(new TextDecoder().decode(shown)));
    listener.onOutput?.("stdout", bytes.subarray(0, cutAt));
    listener.onOutput?.("stdout", bytes.subarray(cutAt));
    listener.flush();
    expect(seen.join("")).toBe("a *** b");
  });

  it("masks a value cut by skipped live output on either side of the gap", () => {
    const masker = new SecretMasker(["abcdefgh"]);
    const seen: Array<[string, number]> = [];
    const listener = maskedListener(masker, (_stream, bytes, skippedBefore = 0) =>
      seen.push([new TextDecoder().decode(bytes), skippedBefore]),
    );
    listener.onOutput?.("stdout", encode("head abcd"));
    listener.onOutput?.("stdout", new Uint8Array(), 100);
    listener.onOutput?.("stdout", encode("efgh tail abcdefgh a"));
    listener.flush();
    const shown = seen.map(([text, skipped]) => (skipped > 0 ? `[gap ${skipped}]` : text)).join("");
    expect(shown).toBe("head ***[gap 100]*** tail *** a");
  });

  it("masks a non-ASCII value whose characters the live gap split on both sides", () => {
    const value = "пароль-sécret-1234";
    const bytes = encode(`head ${value} tail`);
    // The gap runs from inside "ь" to inside "é": each side is decoded apart, as the runner's live output is.
    const cutAt = encode(`head ${value.slice(0, 5)}`).byteLength + 1;
    const resumeAt = encode(`head ${value.slice(0, 8)}`).byteLength + 1;
    const seen: string[] = [];
    const listener = maskedListener(new SecretMasker([value]), (_stream, shown, skippedBefore = 0) =>
      seen.push(skippedBefore > 0 ? "[gap]" : new TextDecoder().decode(shown)),
    );
    listener.onOutput?.("stdout", bytes.subarray(0, cutAt));
    listener.onOutput?.("stdout", new Uint8Array(), resumeAt - cutAt);
    listener.onOutput?.("stdout", bytes.subarray(resumeAt));
    listener.flush();
    expect(seen.join("")).toBe("head ***[gap]*** tail");
  });
});

describe("the cipher", () => {
  const k1 = { id: "k1", secret: "a".repeat(32) };
  const k2 = { id: "k2", secret: "b".repeat(32) };

  it("opens a value sealed under a rotated-out key while that key is still listed, and only for its tenant and name", async () => {
    const sealed = await sealSecret([k1], "acme", "TOKEN", "value-1234");
    expect(sealed.keyId).toBe("k1");
    expect(await openSecret([k2, k1], "acme", "TOKEN", sealed)).toBe("value-1234");
    expect(await openSecret([k2], "acme", "TOKEN", sealed)).toBeUndefined();
    expect(await openSecret([k1], "globex", "TOKEN", sealed)).toBeUndefined();
    expect(await openSecret([k1], "acme", "OTHER", sealed)).toBeUndefined();
    expect((await sealSecret([k2, k1], "acme", "TOKEN", "v")).keyId).toBe("k2");
  });
});
