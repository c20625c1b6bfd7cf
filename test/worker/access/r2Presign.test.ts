/**
 * Unit test of R2 presigned artifact URLs (R2 has no S3 endpoint locally, so the URL itself is
 * what can be checked here): signed for the bucket's S3 endpoint, for the object's key, for the
 * asked lifetime, saved under the artifact's name.
 */
import { describe, expect, it } from "vitest";
import { presignR2Get } from "../../../access/signedUrls";
import { JobPresenter } from "../../../api/present";
import type { JobRecord } from "../../../schemas/job";

const credentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "secret-example",
  accountId: "0123abcd",
  bucket: "artifact-sandbox-output",
};

describe("R2 presigned URLs", () => {
  it("signs a GET of the object for the asked lifetime", async () => {
    const url = new URL(
      await presignR2Get(credentials, "tenants/acme/jobs/J/attempts/1/artifacts/dist/app 1.js", 600, 'attachment; filename="app 1.js"'),
    );
    expect(url.host).toBe("0123abcd.r2.cloudflarestorage.com");
    expect(decodeURIComponent(url.pathname)).toBe("/artifact-sandbox-output/tenants/acme/jobs/J/attempts/1/artifacts/dist/app 1.js");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("600");
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE\/\d{8}\/auto\/s3\/aws4_request$/);
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get("response-content-disposition")).toContain("app 1.js");
  });

  it("leaves a job's artifact URLs Worker-signed even with R2 credentials: a file is a slice of its pack", async () => {
    const presenter = new JobPresenter("https://api.example", {
      defaultTtlSeconds: 3600,
      keys: [{ id: "k1", secret: "x".repeat(32) }],
      r2: credentials,
    });
    const record: JobRecord = {
      id: "01J0000000000000000000000A",
      tenant: "acme",
      sandboxId: "build",
      type: "run",
      request: {
        type: "run",
        command: "true",
        cwd: "/workspace",
        envKeys: [],
        secrets: [],
        cache: [],
        stdinBytes: 0,
        timeoutMs: 1000,
        retries: 0,
        inputs: [],
        artifacts: ["a.txt"],
      },
      status: "succeeded",
      exitCode: 0,
      signal: null,
      tries: [],
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      durationMs: null,
      attempts: 2,
      error: null,
      stdout: { size: 3, truncated: false, droppedBytes: 0 },
      stderr: null,
      artifacts: [{ path: "a.txt", size: 1, contentType: "text/plain", sha256: "0".repeat(64), mode: 0o644 }],
      skippedArtifacts: [],
      artifactIndex: { files: 1, bytes: 1, pageFirstPaths: ["a.txt"] },
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      leaseUntil: null,
      cancelRequested: false,
      when: "on_success",
      allowFailure: false,
      caches: [],
      batchId: null,
      name: null,
      needs: [],
      extracted: null,
      waitingReason: null,
      storedOutputAt: null,
    };
    const view = await presenter.present(record);
    expect(view.artifacts[0]?.url).toMatch(
      /^https:\/\/api\.example\/v1\/jobs\/01J0000000000000000000000A\/artifacts\/a\.txt\?tenant=acme&expires=\d+&kid=k1&sig=/,
    );
    expect(view.artifactIndex).toEqual({ files: 1, bytes: 1, listUrl: "https://api.example/v1/jobs/01J0000000000000000000000A/artifacts" });
    expect(view.stdout?.url).toMatch(
      /^https:\/\/api\.example\/v1\/jobs\/01J0000000000000000000000A\/stdout\?tenant=acme&expires=\d+&kid=k1&sig=/,
    );
  });
});
