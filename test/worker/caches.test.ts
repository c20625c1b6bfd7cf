/**
 * Caches: restored before the command by the exact key or a restore prefix (hit, partial hit,
 * miss), saved after a success that missed, shared by the tenant's sandboxes, one R2 object per
 * save (the strict R2 wrapper refuses a second write to a key within a second), least recently
 * used entries evicted over the tenant's limit, listed and deleted through the API.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { CacheList } from "../../schemas/cache";
import { api, expectError, postJson, runJob, sha256Hex, uniqueSandbox } from "./client";

const encoder = new TextEncoder();

async function listCaches(): Promise<CacheList> {
  const response = await api("/v1/caches");
  expect(response.status).toBe(200);
  return CacheList.parse(await response.json());
}

async function objectsUnder(prefix: string): Promise<string[]> {
  return (await env.JOB_OUTPUT.list({ prefix })).objects.map((object) => object.key);
}

const writeLock = (sandboxId: string, content: string) =>
  runJob(sandboxId, { type: "file", op: "write", path: "/workspace/app/package-lock.json", content });

beforeAll(async () => {
  // The tenant's caches start empty: the eviction below counts on it.
  expect((await api("/v1/caches?prefix=", { method: "DELETE" })).status).toBe(200);
});

describe("caches", () => {
  it("miss then save, hit in another sandbox, partial hit by a restore key, and no save after a failure", async () => {
    const prefix = `npm-${crypto.randomUUID().slice(0, 8)}-`;
    // A path may be a glob: node_mod* is node_modules.
    const cache = [{ key: `${prefix}{{ hashFiles("package-lock.json") }}`, paths: ["node_mod*"], restoreKeys: [prefix] }];
    const job = (command: string) => ({ type: "run", cwd: "/workspace/app", command, cache });

    const first = uniqueSandbox("cache-a");
    await writeLock(first, "v1");
    const saved = await runJob(first, job("mkdir -p node_modules && echo dep-v1 > node_modules/dep.txt"));
    const expectedKey = `${prefix}${await sha256Hex(encoder.encode(`${await sha256Hex(encoder.encode("v1"))}  package-lock.json\n`))}`;
    expect(saved.caches).toEqual([
      { key: expectedKey, result: "miss", restoredKey: null, saved: true, savedBytes: expect.any(Number), note: null },
    ]);

    const second = uniqueSandbox("cache-b");
    await writeLock(second, "v1");
    const hit = await runJob(second, job("cat node_modules/dep.txt"));
    expect(hit.status).toBe("succeeded");
    expect(await (await api(`/v1/jobs/${hit.id}/stdout`)).text()).toBe("dep-v1\n");
    expect(hit.caches[0]).toMatchObject({ key: expectedKey, result: "hit", restoredKey: expectedKey, saved: false });

    const third = uniqueSandbox("cache-c");
    await writeLock(third, "v2");
    const failing = await runJob(third, job("cat node_modules/dep.txt; exit 1"));
    expect(failing.caches[0]).toMatchObject({ result: "partial", restoredKey: expectedKey, saved: false });
    const partial = await runJob(third, job("echo dep-v2 > node_modules/dep.txt"));
    expect(partial.caches[0]).toMatchObject({ result: "partial", restoredKey: expectedKey, saved: true });
    expect(partial.caches[0]?.key).not.toBe(expectedKey);

    const keys = (await listCaches()).caches.map((entry) => entry.key).filter((key) => key.startsWith(prefix));
    expect(keys.sort()).toEqual([expectedKey, partial.caches[0]?.key].sort());

    const fresh = await runJob(uniqueSandbox("cache-d"), {
      type: "run",
      command: "true",
      cache: [{ key: `${prefix}other`, paths: ["x"] }],
    });
    expect(fresh.caches[0]).toMatchObject({ result: "miss", saved: false, note: "not saved: none of its paths exist" });
  });

  it("lets two jobs save one key at once: the last write wins, one object is left", async () => {
    const key = `race-${crypto.randomUUID().slice(0, 8)}`;
    const jobs = await Promise.all(
      ["one", "two"].map((name) =>
        runJob(uniqueSandbox(`cache-${name}`), {
          type: "run",
          command: `sleep 2 && mkdir -p out && echo ${name} > out/who.txt`,
          cache: [{ key, paths: ["out"] }],
        }),
      ),
    );
    // Both looked the key up while neither had saved it (each command takes 2 s): both missed, both saved.
    expect(jobs.map((job) => [job.caches[0]?.result, job.caches[0]?.saved])).toEqual([
      ["miss", true],
      ["miss", true],
    ]);
    const keyHash = await sha256Hex(encoder.encode(key));
    expect(await objectsUnder(`caches/local/${keyHash}/`)).toHaveLength(1);
    const reader = await runJob(uniqueSandbox("cache-read"), { type: "run", command: "cat out/who.txt", cache: [{ key, paths: ["out"] }] });
    expect(reader.caches[0]?.result).toBe("hit");
    expect(["one\n", "two\n"]).toContain(await (await api(`/v1/jobs/${reader.id}/stdout`)).text());
  });

  it("evicts the least recently used entries over the tenant's limit, and deletes by key and by prefix", async () => {
    const prefix = `lru-${crypto.randomUUID().slice(0, 8)}-`;
    const sandboxId = uniqueSandbox("cache-lru");
    // Random bytes do not compress: each archive is about 120 KB of the test's 300,000-byte limit.
    const save = (name: string) =>
      runJob(sandboxId, {
        type: "run",
        command: `mkdir -p ${name} && head -c 120000 /dev/urandom > ${name}/blob`,
        cache: [{ key: `${prefix}${name}`, paths: [name] }],
      });
    expect((await save("a")).caches[0]?.saved).toBe(true);
    expect((await save("b")).caches[0]?.saved).toBe(true);
    // Using a makes b the least recently used.
    expect((await save("a")).caches[0]?.result).toBe("hit");
    expect((await save("c")).caches[0]?.saved).toBe(true);
    const listed = await listCaches();
    expect(listed.caches.map((entry) => entry.key).filter((key) => key.startsWith(prefix))).toEqual([`${prefix}a`, `${prefix}c`]);
    expect(listed.totalBytes).toBeLessThanOrEqual(listed.maxBytes);
    expect(await objectsUnder(`caches/local/${await sha256Hex(encoder.encode(`${prefix}b`))}/`)).toEqual([]);

    expect(await (await api(`/v1/caches?key=${prefix}a`, { method: "DELETE" })).json()).toEqual({ deleted: 1 });
    expect(await (await api(`/v1/caches?prefix=${prefix}`, { method: "DELETE" })).json()).toEqual({ deleted: 1 });
    expect((await listCaches()).caches.filter((entry) => entry.key.startsWith(prefix))).toEqual([]);
    expect(await objectsUnder(`caches/local/${await sha256Hex(encoder.encode(`${prefix}c`))}/`)).toEqual([]);
    await expectError(await api("/v1/caches", { method: "DELETE" }), 400, "INVALID_REQUEST");
  });

  it("resolves hashFiles over no files to nothing, and reads an entry whose object is gone as a miss", async () => {
    const prefix = `gone-${crypto.randomUUID().slice(0, 8)}-`;
    const cache = [{ key: `${prefix}{{ hashFiles("no-such-file", "none/**") }}`, paths: ["d"] }];
    const sandboxId = uniqueSandbox("cache-gone");
    const first = await runJob(sandboxId, { type: "run", command: "mkdir -p d && echo 1 > d/f", cache });
    expect(first.caches[0]).toMatchObject({ key: prefix, result: "miss", saved: true });
    // As the bucket's lifecycle rule would, once the entry's retention has passed.
    const [object] = await objectsUnder(`caches/local/${await sha256Hex(encoder.encode(prefix))}/`);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await env.JOB_OUTPUT.delete(object ?? "");
    const second = await runJob(sandboxId, { type: "run", command: "mkdir -p d", cache });
    expect(second.caches[0]).toMatchObject({ result: "miss", restoredKey: null, saved: true });
  });

  it("refuses malformed keys and paths at submit", async () => {
    const submit = (cache: unknown) => postJson("/v1/sandboxes/s/jobs", { type: "run", command: "true", cache });
    expect(await expectError(await submit([{ key: "k-{{ hashFiles(package.json) }}", paths: ["x"] }]), 400, "INVALID_REQUEST")).toContain(
      "hashFiles",
    );
    await expectError(await submit([{ key: "k $(id)", paths: ["x"] }]), 400, "INVALID_REQUEST");
    await expectError(await submit([{ key: "k", paths: ["../etc"] }]), 400, "INVALID_REQUEST");
    await expectError(await submit([{ key: 'k-{{ hashFiles("a; rm -rf /") }}', paths: ["x"] }]), 400, "INVALID_REQUEST");
  });
});
