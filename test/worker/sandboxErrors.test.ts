/**
 * How SDK failures, as they arrive across RPC (a plain Error whose message starts with the SDK's
 * class name), become port errors: the job's own doing is final, anything else is tried again.
 */
import { describe, expect, it } from "vitest";
import { toSandboxError } from "../../sandbox/errors";

describe("SDK failures as port errors", () => {
  it("makes a permission denial final, never a fault to run the job again for", () => {
    const error = toSandboxError(new Error("PermissionDeniedError: Permission denied: /workspace/d0/f"), "/workspace/d0/f");
    expect(error).toMatchObject({ code: "PERMISSION_DENIED", retryable: false });
    expect(error.message).toContain("Permission denied in the sandbox on /workspace/d0/f");
  });

  it("keeps a missing file final and an unknown failure retryable", () => {
    expect(toSandboxError(new Error("FileNotFoundError: File not found: /workspace/x"), "/workspace/x")).toMatchObject({
      code: "FILE_NOT_FOUND",
      retryable: false,
    });
    expect(toSandboxError(new Error("something broke"), "a command")).toMatchObject({ code: "SANDBOX_ERROR", retryable: true });
  });

  it("makes a read-only file system's refusal and a full disk final, as the container's server words them", () => {
    const readOnly = "FileSystemError: Failed to write '/workspace/etc/x': EROFS: read-only file system, open '/workspace/etc/x'";
    expect(toSandboxError(new Error(readOnly), "/workspace/etc/x")).toMatchObject({ code: "PERMISSION_DENIED", retryable: false });
    const full = "FileSystemError: Failed to write '/workspace/big': ENOSPC: no space left on device, write";
    const error = toSandboxError(new Error(full), "/workspace/big");
    expect(error).toMatchObject({ code: "SANDBOX_ERROR", retryable: false });
    expect(error.message).toContain("No space left in the sandbox for /workspace/big");
  });
});
