/**
 * Keeps a sandbox's /workspace across container sleeps and replacements. A Cloudflare container
 * loses its disk when it sleeps (`sleepAfter`) or is replaced, so the Sandbox Durable Object
 * saves the workspace to R2 as a tar.gz before its container goes to sleep, and puts it back
 * into a fresh container (an empty /workspace) before the next job. Only SDK calls are used,
 * so the same code runs against the local container host.
 */
import { z } from "zod";
import { r2Keys } from "../storage/layout";
import { toBase64 } from "./base64";
import { decodeFileStream } from "./fileStream";
import { inPieces } from "./pieces";
import { inSubshell } from "./shell";

/** The SDK calls a snapshot needs: the Sandbox object's own methods. */
export interface SnapshotSandbox {
  exec(command: string): Promise<{ success: boolean; exitCode: number; stdout: string; stderr: string }>;
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
  writeFile(path: string, content: string, options?: { encoding?: string }): Promise<unknown>;
  exists(path: string): Promise<{ exists: boolean }>;
}

const ARCHIVE = "/tmp/.artifact-sandbox-workspace.tgz";
const PART_PREFIX = "/tmp/.artifact-sandbox-workspace.part.";
/** Set in a container once its workspace is known good: a fresh container lacks it (its /tmp is new). */
const READY_MARKER = "/tmp/.artifact-sandbox-workspace-ready";
/** Restores upload in pieces below the SDK's 32 MiB limit on an encoded write. */
const PART_BYTES = 8 * 1024 * 1024;

/** A fresh container whose workspace could not be saved before the last one stopped: what prepareWorkspace answers. */
export const WorkspaceLost = z.object({ lost: z.enum(["restored an older save", "nothing saved"]), failedSaveAt: z.string() });
export type WorkspaceLost = z.infer<typeof WorkspaceLost>;

export class WorkspaceSnapshotError extends Error {
  override readonly name = "WorkspaceSnapshotError";
}

/** Saves /workspace to R2; returns the archive's size in bytes. */
export async function saveWorkspace(sandbox: SnapshotSandbox, bucket: R2Bucket, sandboxId: string): Promise<number> {
  const packed = await sandbox.exec(inSubshell(`tar -C /workspace -czf ${ARCHIVE} . && stat -c %s ${ARCHIVE}`));
  const size = Number(packed.stdout.trim());
  if (!packed.success || !Number.isSafeInteger(size)) {
    throw new WorkspaceSnapshotError(`Could not pack /workspace (exit ${packed.exitCode}): ${packed.stderr.slice(0, 500)}`);
  }
  try {
    const sized = new FixedLengthStream(size);
    const archive = decodeFileStream(await sandbox.readFileStream(ARCHIVE));
    await Promise.all([archive.pipeTo(sized.writable), bucket.put(r2Keys.workspaceSnapshot(sandboxId), sized.readable)]);
    return size;
  } finally {
    await sandbox.exec(inSubshell(`rm -f ${ARCHIVE}`));
  }
}

/**
 * Before a job: in a container that has not been checked yet, puts the saved workspace back if
 * /workspace is empty (a fresh container). A non-empty one is never overwritten: locally the
 * workspace outlives its container, and its files are newer than any snapshot. "empty": a
 * fresh container with no saved workspace to put back.
 */
export async function restoreWorkspaceIfFresh(
  sandbox: SnapshotSandbox,
  bucket: R2Bucket,
  sandboxId: string,
): Promise<"restored" | "kept" | "empty"> {
  if ((await sandbox.exists(READY_MARKER)).exists) return "kept";
  const empty = await sandbox.exec(inSubshell('[ -z "$(ls -A /workspace 2>/dev/null)" ]'));
  const snapshot = empty.success ? await bucket.get(r2Keys.workspaceSnapshot(sandboxId)) : null;
  if (snapshot) {
    await uploadInParts(sandbox, snapshot.body);
    const unpacked = await sandbox.exec(
      inSubshell(`cat ${PART_PREFIX}* | tar -C /workspace -xzf - ; status=$?; rm -f ${PART_PREFIX}*; exit $status`),
    );
    if (!unpacked.success) throw new WorkspaceSnapshotError(`Could not unpack the saved workspace: ${unpacked.stderr.slice(0, 500)}`);
  }
  await sandbox.writeFile(READY_MARKER, "");
  if (snapshot) return "restored";
  return empty.success ? "empty" : "kept";
}

async function uploadInParts(sandbox: SnapshotSandbox, body: ReadableStream<Uint8Array>): Promise<void> {
  let index = 0;
  for await (const piece of inPieces(body, PART_BYTES)) {
    await sandbox.writeFile(`${PART_PREFIX}${String(index++).padStart(6, "0")}`, toBase64(piece), { encoding: "base64" });
  }
}
