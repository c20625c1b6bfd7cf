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

type EntryHeader = Pick<TarHeader, "name" | "type" | "linkname">;

/**
 * The tree the archive would make, as far as links go: where each planned symlink points,
 * resolved, so that a path through one (`a -> .` then `a/b -> ..`) is judged by where it lands.
 */
class PlannedLinks {
  private readonly links = new Map<string, string[]>();

  /** Where a path lands below the directory (its segments), or undefined when it leaves it. */
  resolve(segments: string[], hops = 0): string[] | undefined {
    const landed: string[] = [];
    for (const segment of segments) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (landed.length === 0) return undefined;
        landed.pop();
        continue;
      }
      landed.push(segment);
      const target = this.links.get(landed.join("/"));
      if (target) {
        if (hops > 40) return undefined;
        const followed = this.resolve(target, hops + 1);
        if (!followed) return undefined;
        landed.splice(0, landed.length, ...followed);
      }
    }
    return landed;
  }

  add(at: string[], target: string[]): void {
    this.links.set(at.join("/"), target);
  }
}

function segmentsOf(path: string): string[] {
  return path.split("/").filter((segment) => segment !== "" && segment !== ".");
}

/** Why an entry may not be unpacked (judged with the links planned before it), or undefined. */
function refusal(header: EntryHeader, links: PlannedLinks): string | undefined {
  if (header.name.startsWith("/")) return "absolute path";
  const segments = segmentsOf(header.name);
  if (segments.includes("..")) return "path contains '..'";
  const type = header.type ?? "file";
  const parent = links.resolve(segments.slice(0, -1));
  if (!parent) return "lands outside the directory through a symlink";
  if (type === "file" || type === "directory") return undefined;
  if (type !== "symlink" && type !== "link") return `unsupported entry type ${type}`;
  const kind = type === "symlink" ? "symlink" : "hard link";
  const target = header.linkname ?? "";
  if (target.startsWith("/")) return `${kind} to an absolute path`;
  // A symlink resolves from its own directory; a hard link names another member of the archive.
  const resolved = links.resolve(type === "symlink" ? [...parent, ...target.split("/")] : target.split("/"));
  if (!resolved) return `${kind} points outside the directory`;
  if (type === "symlink") links.add([...parent, segments.at(-1) ?? ""], resolved);
  return undefined;
}

/**
 * Reads the archive's headers (skipping every body) and decides entry by entry. tar extracts by
 * name, so a path that appears more than once (a file, then a symlink of the same name) is
 * refused in every one of its entries: none of them could be told apart.
 */
export async function planExtraction(archive: ReadableStream<Uint8Array>): Promise<ExtractionPlan> {
  const headers: EntryHeader[] = [];
  const tar = archive.pipeThrough(new DecompressionStream("gzip")).pipeThrough(createTarDecoder());
  for await (const entry of tar) {
    await entry.body.cancel();
    headers.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname });
  }
  const seen = new Map<string, number>();
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    seen.set(path, (seen.get(path) ?? 0) + 1);
  }
  const links = new PlannedLinks();
  const members: string[] = [];
  const written: string[] = [];
  const refused: Extracted["refused"] = [];
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    const reason = (seen.get(path) ?? 0) > 1 && path !== "" ? "appears more than once in the archive" : refusal(header, links);
    if (reason) {
      refused.push({ path: header.name, reason });
      continue;
    }
    members.push(header.name);
    if (written.length < LISTED_MAX) written.push(header.name.replace(/^\.\//, ""));
  }
  return { members, extracted: { entries: headers.length, written, refused } };
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
