/**
 * Unpacks an uploaded .tar.gz into the sandbox. Its entries are checked here first, streamed
 * from R2 (headers only, never a whole file): an absolute name, a `..` segment, a link that
 * points outside the target directory, or a device or FIFO is refused and listed; the rest is
 * unpacked inside the sandbox by tar, modes and in-tree symlinks kept.
 */
import { createTarDecoder, type TarHeader } from "modern-tar";
import type { SandboxPort } from "../sandbox/port";
import type { Extracted } from "../schemas/job";

/** At most this many written paths are listed in the record (all are counted). */
const LISTED_MAX = 1000;

export interface ExtractionPlan {
  /** Member names exactly as in the archive, for tar's list of what to extract. */
  members: string[];
  extracted: Extracted;
}

/** Why an entry may not be unpacked, or undefined when it may. */
export function refusal(header: Pick<TarHeader, "name" | "type" | "linkname">): string | undefined {
  const name = header.name;
  if (name.startsWith("/")) return "absolute path";
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) return "path contains '..'";
  const type = header.type ?? "file";
  if (type === "symlink" || type === "link") {
    const target = header.linkname ?? "";
    if (target.startsWith("/")) return `${type === "symlink" ? "symlink" : "hard link"} to an absolute path`;
    // A symlink resolves from its own directory; a hard link names another member of the archive.
    const base = type === "symlink" ? segments.slice(0, -1) : [];
    if (escapes([...base, ...target.split("/")])) return `${type === "symlink" ? "symlink" : "hard link"} points outside the directory`;
    return undefined;
  }
  if (type !== "file" && type !== "directory") return `unsupported entry type ${type}`;
  return undefined;
}

/** Whether a relative path walks above its starting directory. */
function escapes(segments: string[]): boolean {
  let depth = 0;
  for (const segment of segments) {
    if (segment === "..") depth--;
    else if (segment !== "" && segment !== ".") depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** Reads the archive's headers (skipping every body) and decides entry by entry. */
export async function planExtraction(archive: ReadableStream<Uint8Array>): Promise<ExtractionPlan> {
  const members: string[] = [];
  const written: string[] = [];
  const refused: Extracted["refused"] = [];
  let entries = 0;
  const tar = archive.pipeThrough(new DecompressionStream("gzip")).pipeThrough(createTarDecoder());
  for await (const entry of tar) {
    entries++;
    await entry.body.cancel();
    const reason = refusal(entry.header);
    if (reason) {
      refused.push({ path: entry.header.name, reason });
      continue;
    }
    members.push(entry.header.name);
    if (written.length < LISTED_MAX) written.push(entry.header.name.replace(/^\.\//, ""));
  }
  return { members, extracted: { entries, written, refused } };
}

/** Unpacks the planned members of the archive (already in the sandbox at `archivePath`) into `dir`. */
export async function unpackInSandbox(sandbox: SandboxPort, archivePath: string, dir: string, members: string[]): Promise<void> {
  const listPath = `${archivePath}.members`;
  await sandbox.writeFile(listPath, new TextEncoder().encode(members.map((member) => `${member}\0`).join("")));
  const quote = (value: string) => `'${value.replaceAll("'", `'"'"'`)}'`;
  // --no-recursion: a listed directory brings only itself, never a refused entry below it.
  await sandbox.run(
    `mkdir -p -- ${quote(dir)} && tar -xzpf ${quote(archivePath)} -C ${quote(dir)} --no-same-owner --no-recursion --null --verbatim-files-from -T ${quote(listPath)}; status=$?; rm -f ${quote(archivePath)} ${quote(listPath)}; exit $status`,
  );
}
