/** Every bad input is answered with the right 4xx, a stable code and a message a user can act on. */
import { describe, expect, it } from "vitest";
import { api, expectError, postJson, runJob, submit, uniqueSandbox } from "./client";

const run = { type: "run", command: "true" };

describe("bad input", () => {
  it.each([
    ["uppercase", "Tenant"],
    ["leading dash", "-abc"],
    ["too long", "a".repeat(64)],
    ["dots", "a..b"],
    ["reserved", "admin"],
    ["underscore", "a_b"],
  ])("rejects a sandbox ID with %s", async (_label, sandboxId) => {
    const message = await expectError(
      await postJson(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/jobs`, run),
      400,
      "INVALID_SANDBOX_ID",
    );
    expect(message).toMatch(/Sandbox ID/);
  });

  it.each([
    ["a relative path", "notes.txt", /absolute/],
    ["a path outside the workspace", "/etc/passwd", /inside \/workspace/],
    ["a .. escape", "/workspace/../etc/passwd", /'\.\.'/],
    ["the workspace itself", "/workspace", /not the workspace itself/],
    ["a NUL byte", "/workspace/a\u0000b", /NUL/],
  ])("rejects a file job with %s", async (_label, path, pattern) => {
    const message = await expectError(
      await postJson(`/v1/sandboxes/${uniqueSandbox("p")}/jobs`, { type: "file", op: "read", path }),
      400,
      "INVALID_REQUEST",
    );
    expect(message).toMatch(pattern);
  });

  it("rejects a cwd outside the workspace and artifact patterns that climb out", async () => {
    await expectError(await postJson(`/v1/sandboxes/ok/jobs`, { ...run, cwd: "/tmp" }), 400, "INVALID_REQUEST");
    const message = await expectError(
      await postJson(`/v1/sandboxes/ok/jobs`, { ...run, artifacts: ["../secret"] }),
      400,
      "INVALID_REQUEST",
    );
    expect(message).toContain("artifacts.0");
  });

  it.each([
    ["no type", { command: "ls" }, /type/],
    ["an unknown type", { type: "deploy" }, /type/],
    ["a blank command", { type: "run", command: "   " }, /command must not be blank/],
    ["a timeout over 14 minutes", { type: "run", command: "ls", timeoutMs: 840_001 }, /at most 840000 \(14 minutes/],
    ["network switched off for one job", { type: "run", command: "ls", network: false }, /SANDBOX_NETWORK=none/],
    ["a non-string env value", { type: "run", command: "ls", env: { A: 1 } }, /env/],
    ["an invalid env name", { type: "run", command: "ls", env: { "A-B": "x" } }, /Environment variable names/],
    [
      "the run marker's name in env",
      { type: "run", command: "ls", env: { ARTIFACT_SANDBOX_RUN: "x" } },
      /set by the service for every run/,
    ],
    ["an unknown field", { type: "run", command: "ls", shell: "bash" }, /shell/],
    ["a write without content", { type: "file", op: "write", path: "/workspace/a" }, /content is required/],
    ["bad base64", { type: "file", op: "write", path: "/workspace/a", content: "%%%", encoding: "base64" }, /base64/],
    ["an unknown op", { type: "file", op: "chmod", path: "/workspace/a" }, /op/],
  ])("rejects a job with %s", async (_label, body, pattern) => {
    const message = await expectError(await postJson(`/v1/sandboxes/ok/jobs`, body), 400, "INVALID_REQUEST");
    expect(message).toMatch(pattern);
  });

  it.each([
    [
      "a timeout far past its limit",
      { type: "run", command: "ls", timeoutMs: 1e308 },
      "timeoutMs: timeoutMs is at most 840000 (14 minutes: a job, its uploads included, must fit in the 15 minutes its runner is given)",
    ],
    [
      "retries far past their limit",
      { type: "run", command: "ls", retries: 1e20 },
      "retries: retries is at most 5 (each retry runs the command again in the same sandbox)",
    ],
    [
      "a string for a list",
      { type: "run", command: "ls", artifacts: "dist/**" },
      "artifacts: Invalid input: expected array, received string",
    ],
    [
      "an absolute artifact pattern",
      { type: "run", command: "ls", artifacts: ["/etc/passwd"] },
      "artifacts.0: Artifact patterns are relative to cwd: drop the leading '/'",
    ],
    [
      "an artifact pattern climbing out of cwd",
      { type: "run", command: "ls", artifacts: ["../secret"] },
      "artifacts.0: Artifact patterns must not contain '..': they match inside cwd only",
    ],
  ])("says one thing per field for %s", async (_label, body, expected) => {
    expect(await expectError(await postJson(`/v1/sandboxes/ok/jobs`, body), 400, "INVALID_REQUEST")).toBe(expected);
  });

  it("says one thing per field for a webhook's events given as a string", async () => {
    const response = await postJson("/v1/webhooks", { url: "https://example.com/hook", events: "job.failed" });
    expect(await expectError(response, 400, "INVALID_REQUEST")).toBe("events: Invalid input: expected array, received string");
  });

  it("rejects a body that is not JSON", async () => {
    const response = await api("/v1/sandboxes/ok/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    await expectError(response, 400, "INVALID_JSON");
  });

  it("asks for JSON when the body is sent with another content type", async () => {
    const response = await api("/v1/sandboxes/ok/jobs", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: '{"type":"run","command":"ls"}',
    });
    expect(await expectError(response, 415, "UNSUPPORTED_MEDIA_TYPE")).toContain("content-type: application/json");
  });

  it("rejects an oversized body with 413 and runs nothing", async () => {
    const response = await postJson("/v1/sandboxes/ok/jobs", {
      type: "file",
      op: "write",
      path: "/workspace/huge",
      content: "x".repeat(33 * 1024 * 1024),
    });
    await expectError(response, 413, "BODY_TOO_LARGE");
  });

  it("answers 404 for unknown and malformed job IDs", async () => {
    await expectError(await api("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "JOB_NOT_FOUND");
    await expectError(await api("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/stdout"), 404, "JOB_NOT_FOUND");
    await expectError(await api("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/artifacts/a.txt"), 404, "JOB_NOT_FOUND");
    await expectError(await api("/v1/jobs/not-a-job"), 400, "INVALID_REQUEST");
  });

  it("rejects wait and list parameters out of range", async () => {
    const job = await submit(uniqueSandbox("params"), run);
    await expectError(await api(`/v1/jobs/${job.id}?wait=61`), 400, "INVALID_REQUEST");
    await expectError(await api(`/v1/jobs/${job.id}?wait=soon`), 400, "INVALID_REQUEST");
    await expectError(await api("/v1/sandboxes/ok/jobs?limit=0"), 400, "INVALID_REQUEST");
    await expectError(await api("/v1/sandboxes/ok/jobs?status=done"), 400, "INVALID_REQUEST");
    await expectError(await api("/v1/sandboxes/ok/jobs?cursor=zzz"), 400, "INVALID_REQUEST");
  });

  it("answers a wrong method on a known path with 405 and the methods it takes", async () => {
    const response = await api("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", { method: "DELETE" });
    expect(await expectError(response, 405, "METHOD_NOT_ALLOWED")).toContain("use GET");
    expect(response.headers.get("allow")).toBe("GET");
    const list = await api("/v1/sandboxes/ok/jobs", { method: "PUT" });
    await expectError(list, 405, "METHOD_NOT_ALLOWED");
    expect(list.headers.get("allow")).toBe("POST, GET");
  });

  it("answers unknown routes with a JSON 404", async () => {
    const message = await expectError(await api("/v2/nothing"), 404, "ROUTE_NOT_FOUND");
    expect(message).toContain("/v1/openapi.json");
  });

  it("answers 404 for an artifact the job does not have, listing the ones it has", async () => {
    const job = await runJob(uniqueSandbox("noart"), { type: "run", command: "echo x > a.txt", artifacts: ["a.txt"] });
    const message = await expectError(await api(`/v1/jobs/${job.id}/artifacts/b.txt`), 404, "FILE_NOT_FOUND");
    expect(message).toContain("a.txt");
  });

  it("answers 400 for an artifact listing cursor the listing never gave", async () => {
    const job = await runJob(uniqueSandbox("cursor"), { type: "run", command: "echo x > a.txt", artifacts: ["a.txt"] });
    const listing = await api(`/v1/jobs/${job.id}/artifacts`);
    expect(await listing.json()).toMatchObject({ artifacts: [{ path: "a.txt" }], files: 1, nextCursor: null });
    expect(await expectError(await api(`/v1/jobs/${job.id}/artifacts?cursor=abc`), 400, "INVALID_REQUEST")).toContain("cursor");
    expect(await expectError(await api(`/v1/jobs/${job.id}/artifacts?cursor=1`), 400, "INVALID_REQUEST")).toContain("past the last");
  });

  it("serves an OpenAPI document generated from the schemas", async () => {
    const response = await api("/v1/openapi.json");
    expect(response.status).toBe(200);
    const doc = await response.json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/sandboxes/{sandboxId}/jobs",
        "/v1/jobs/{jobId}",
        "/v1/jobs/{jobId}/stdout",
        "/v1/jobs/{jobId}/artifacts/{path}",
        "/v1/jobs/{jobId}/artifacts",
      ]),
    );
  });
});
