/**
 * `GET /v1/jobs/{id}/artifacts.tar.gz`: every artifact of a finished job in one archive whose
 * entries match the job record file by file, read back with an independent tar reader.
 */
import { describe, expect, it } from "vitest";
import { ArtifactRef, type JobView } from "../../schemas/job";
import { createKey, deployed, finishedAs, submitAs, uniqueTenant } from "./access/tenants";
import { api, expectError, runJob, submit, uniqueSandbox } from "./client";
import { readTarGz } from "./support/tarReader";

const ALL_BYTES_PRINTF = Array.from({ length: 256 }, (_, i) => `\\${i.toString(8).padStart(3, "0")}`).join("");
/** 168 characters: too long for a ustar name, so the archive splits it into prefix and name. */
const PREFIXED_PATH = `long/${"a".repeat(60)}/${"b".repeat(60)}/${"c".repeat(30)}.txt`;
/** 308 characters: too long even for the prefix, so the archive carries it in a PAX record. */
const PAX_PATH = `long/${"d".repeat(100)}/${"e".repeat(100)}/${"f".repeat(90)}.log`;

function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/** What the record says each archive entry must be. */
function expectedEntries(job: JobView) {
  const mtime = Math.floor(Date.parse(job.finishedAt ?? "") / 1000);
  return job.artifacts.map((artifact) => ({
    name: artifact.path,
    type: "0",
    size: artifact.size,
    mode: artifact.mode,
    mtime,
    sha256: artifact.sha256,
  }));
}

describe("artifact archive", () => {
  it("holds every artifact with the record's path, size, SHA-256 and mode; the script stays executable", async () => {
    const job = await runJob(uniqueSandbox("archive"), {
      type: "run",
      cwd: "/workspace/app",
      command: [
        `mkdir -p bin dist/nested/deep "$(dirname ${PREFIXED_PATH})" "$(dirname ${PAX_PATH})"`,
        "printf '#!/bin/sh\\necho hi\\n' > bin/run.sh && chmod 755 bin/run.sh",
        "echo '{\"ok\":true}' > dist/nested/deep/report.json",
        `printf '${ALL_BYTES_PRINTF}' > dist/all-bytes.bin`,
        "echo secret > dist/private.key && chmod 600 dist/private.key",
        `echo prefixed > ${PREFIXED_PATH}`,
        `echo pax > ${PAX_PATH}`,
      ].join(" && "),
      artifacts: ["bin/**", "dist/**", "long/**"],
    });
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(job.artifacts.map((artifact) => artifact.path).sort()).toEqual(
      ["bin/run.sh", "dist/all-bytes.bin", "dist/nested/deep/report.json", "dist/private.key", PREFIXED_PATH, PAX_PATH].sort(),
    );
    const modes = Object.fromEntries(job.artifacts.map((artifact) => [artifact.path, artifact.mode]));
    expect(modes).toMatchObject({ "bin/run.sh": 0o755, "dist/private.key": 0o600, "dist/all-bytes.bin": 0o644 });

    const response = await api(`/v1/jobs/${job.id}/artifacts.tar.gz`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/gzip");
    expect(response.headers.get("content-disposition")).toContain(`filename="${job.id}-artifacts.tar.gz"`);
    if (!response.body) throw new Error("no body");
    const { entries } = await readTarGz(response.body);
    expect(entries).toEqual(expectedEntries(job));
    const script = entries.find((entry) => entry.name === "bin/run.sh");
    expect((script?.mode ?? 0) & 0o111).toBe(0o111);
  });

  it("gives an empty archive for a job without artifacts, and 409 OUTPUT_NOT_READY for the archive or one artifact until a job finishes", async () => {
    const none = await runJob(uniqueSandbox("archive-none"), { type: "run", command: "echo nothing kept" });
    const empty = await api(`/v1/jobs/${none.id}/artifacts.tar.gz`);
    expect(empty.status).toBe(200);
    if (!empty.body) throw new Error("no body");
    expect(await readTarGz(empty.body)).toEqual({ entries: [], tarBytes: 1024 });

    const running = await submit(uniqueSandbox("archive-running"), {
      type: "run",
      command: "sleep 5; echo late > late.txt",
      artifacts: ["*.txt"],
    });
    await expectError(await api(`/v1/jobs/${running.id}/artifacts.tar.gz`), 409, "OUTPUT_NOT_READY");
    // One artifact too: not "no such artifact" while the job may still make it.
    const one = await expectError(await api(`/v1/jobs/${running.id}/artifacts/late.txt`), 409, "OUTPUT_NOT_READY");
    expect(one).toContain("is running; its artifacts can be downloaded once it has finished");
    await expectError(await api("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/artifacts.tar.gz"), 404, "JOB_NOT_FOUND");
  });

  it("keeps a read job's file mode", async () => {
    const sandbox = uniqueSandbox("archive-read");
    expect((await runJob(sandbox, { type: "run", command: "printf '#!/bin/sh\\n' > tool.sh && chmod 750 tool.sh" })).status).toBe(
      "succeeded",
    );
    const read = await runJob(sandbox, { type: "file", op: "read", path: "/workspace/tool.sh" });
    expect(read.artifacts).toEqual([expect.objectContaining({ path: "tool.sh", mode: 0o750 })]);
  });

  it("reads records stored before modes were kept as plain 0o644 files", () => {
    const stored = { path: "a.txt", size: 1, contentType: "text/plain", sha256: "00" };
    expect(ArtifactRef.parse(stored).mode).toBe(0o644);
  });

  it("answers only the job's tenant, and downloads through the record's signed archiveUrl without a key", async () => {
    const acmeTenant = uniqueTenant("acme");
    const acme = await createKey(acmeTenant);
    const globex = await createKey(uniqueTenant("globex"));
    const submitted = await submitAs(acme.key, "archive", {
      type: "run",
      command: "echo one > one.txt && printf '#!/bin/sh\\n' > go.sh && chmod +x go.sh",
      artifacts: ["one.txt", "go.sh"],
    });
    const job = await finishedAs(acme.key, submitted.id);
    expect(job.status).toBe("succeeded");
    const path = `/v1/jobs/${job.id}/artifacts.tar.gz`;

    await expectError(await deployed(path, { key: globex.key }), 404, "JOB_NOT_FOUND");
    await expectError(await deployed(path), 401, "UNAUTHENTICATED");
    expect(new URL(job.archiveUrl).pathname).toBe(path);

    const signed = await deployed(pathOf(job.archiveUrl));
    expect(signed.status).toBe(200);
    if (!signed.body) throw new Error("no body");
    const { entries } = await readTarGz(signed.body);
    expect(entries).toEqual(expectedEntries(job));
    expect(entries.find((entry) => entry.name === "go.sh")?.mode).toBe(0o755);
    await expectError(await deployed(pathOf(job.archiveUrl).replace(`tenant=${acmeTenant}`, "tenant=globex")), 403, "INVALID_SIGNATURE");
  });
});
