/**
 * Unpacks an uploaded .tar.gz into the sandbox. Its entries are checked here first, streamed
 * from R2 (headers only, never a whole file): an absolute name, a `..` segment, a link that
 * points outside the target directory, a path through a symlink tar only makes at the end, or a
 * device or FIFO is refused and listed. What is already in the sandbox is checked there, just
 * before tar runs: a path through a symlink that leads out of the directory, or through a file,
 * is refused and listed too. The rest is unpacked inside the sandbox by tar, modes and in-tree
 * symlinks kept.
 */
import { createTarDecoder, type TarHeader } from "modern-tar";
import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { shellQuote } from "../sandbox/shell";
import { WORKSPACE_ROOT } from "../schemas/ids";
import type { Extracted } from "../schemas/job";

/** At most this many written paths are listed in the record (all are counted). */
const LISTED_MAX = 1000;

export interface PlannedMember {
  /** The member's name exactly as in the archive, for tar's list of what to extract. */
  name: string;
  /** A directory entry: the sandbox's check looks at the path itself, not only at its parents. */
  directory: boolean;
}

export interface ExtractionPlan {
  members: PlannedMember[];
  /** Entries in the archive. */
  entries: number;
  /** Entries refused from their headers alone. */
  refused: Extracted["refused"];
}

type EntryHeader = Pick<TarHeader, "name" | "type" | "linkname">;

type Landing = { inside: string[] } | { outside: true } | { delayed: true };

/**
 * The tree the archive would make, as far as links go: where each planned symlink points,
 * resolved, so that a path through one (`a -> .` then `a/b -> ..`) is judged by where it lands.
 * GNU tar makes a symlink whose target holds `..` only once everything else is unpacked (a
 * placeholder file stands in until then), so nothing can be written through one.
 */
class PlannedLinks {
  private readonly links = new Map<string, { target: string[]; delayed: boolean }>();

  /** Where a path lands below the directory (its segments); `throughDelayed` says whether a path through a delayed link counts. */
  resolve(segments: string[], throughDelayed: boolean, hops = 0): Landing {
    const landed: string[] = [];
    for (const segment of segments) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (landed.length === 0) return { outside: true };
        landed.pop();
        continue;
      }
      landed.push(segment);
      const link = this.links.get(landed.join("/"));
      if (!link) continue;
      if (link.delayed && !throughDelayed) return { delayed: true };
      if (hops > 40) return { outside: true };
      const followed = this.resolve(link.target, throughDelayed, hops + 1);
      if (!("inside" in followed)) return followed;
      landed.splice(0, landed.length, ...followed.inside);
    }
    return { inside: landed };
  }

  add(at: string[], target: string[], delayed: boolean): void {
    this.links.set(at.join("/"), { target, delayed });
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
  const parent = links.resolve(segments.slice(0, -1), false);
  if ("delayed" in parent) return "goes through a symlink in the archive whose target contains '..' (tar makes those last)";
  if ("outside" in parent) return "lands outside the directory through a symlink";
  if (type === "file" || type === "directory") return undefined;
  if (type !== "symlink" && type !== "link") return `unsupported entry type ${type}`;
  const kind = type === "symlink" ? "symlink" : "hard link";
  const target = header.linkname ?? "";
  if (target.startsWith("/")) return `${kind} to an absolute path`;
  // A symlink resolves from its own directory; a hard link names another member of the archive.
  const resolved = links.resolve(type === "symlink" ? [...parent.inside, ...target.split("/")] : target.split("/"), type === "symlink");
  if ("delayed" in resolved) return "hard link through a symlink in the archive whose target contains '..' (tar makes those last)";
  if ("outside" in resolved) return `${kind} points outside the directory`;
  if (type === "symlink") links.add([...parent.inside, segments.at(-1) ?? ""], resolved.inside, target.split("/").includes(".."));
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
  const members: PlannedMember[] = [];
  const refused: Extracted["refused"] = [];
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    const reason = (seen.get(path) ?? 0) > 1 && path !== "" ? "appears more than once in the archive" : refusal(header, links);
    if (reason) refused.push({ path: header.name, reason });
    else members.push({ name: header.name, directory: header.type === "directory" });
  }
  return { members, entries: headers.length, refused };
}

/** Why the sandbox's check refused a member, by the code its script prints. */
const SANDBOX_REFUSALS = {
  outside: "lands outside the directory through a symlink already in the sandbox",
  "not-dir": "something in the sandbox that is not a directory stands where it needs one",
} as const;

function isSandboxRefusal(code: string): code is keyof typeof SANDBOX_REFUSALS {
  return code in SANDBOX_REFUSALS;
}

/**
 * `check_member KIND PATH` (KIND `d` for a directory entry): whether every part of PATH that
 * already exists below `$root` is a directory that, followed physically (`cd -P`), stays below
 * `$root`; sets `refusal` to a SANDBOX_REFUSALS code otherwise. A directory entry's own path
 * counts too (tar would set the mode of whatever it leads to); another entry's own path does not
 * (tar replaces what is there). Directories found good are remembered. Builtins only, never a
 * fork: an archive may hold thousands of entries.
 */
const CHECK_MEMBER = `declare -A checked
check_member() {
  local kind=$1 rest=$2 prefix= segment last i
  local -a parts=()
  while [ -n "$rest" ]; do
    segment=\${rest%%/*}
    if [[ $rest == */* ]]; then rest=\${rest#*/}; else rest=; fi
    [ -z "$segment" ] || [ "$segment" = . ] || parts+=("$segment")
  done
  last=\${#parts[@]}
  [ "$kind" = d ] || last=$((last - 1))
  for ((i = 0; i < last; i++)); do
    prefix=\${prefix:+$prefix/}\${parts[i]}
    [ -n "\${checked[$prefix]:-}" ] && continue
    if [ -d "$root/$prefix" ]; then
      cd -P -- "$root/$prefix" 2>/dev/null || { refusal=outside; return 1; }
      if [ "$PWD" != "$root" ] && [[ $PWD != "$root"/* ]]; then cd -- "$root"; refusal=outside; return 1; fi
      cd -- "$root"
      checked[$prefix]=1
    elif [ -e "$root/$prefix" ] || [ -L "$root/$prefix" ]; then
      refusal=not-dir
      return 1
    else
      return 0
    fi
  done
  return 0
}`;

/** Printed instead of unpacking when the target directory itself leads out of the workspace, or is not a directory. */
const TARGET_OUTSIDE = "as-target-outside";
const TARGET_NOT_DIRECTORY = "as-target-not-directory";

/**
 * Unpacks the planned members of the archive (already in the sandbox at `archivePath`) into
 * `dir`, after the sandbox's own check of each; what the record says of the archive.
 */
export async function unpackInSandbox(sandbox: SandboxPort, archivePath: string, dir: string, plan: ExtractionPlan): Promise<Extracted> {
  const listPath = `${archivePath}.members`;
  await sandbox.writeFile(
    listPath,
    new TextEncoder().encode(plan.members.map((member) => `${member.directory ? "d" : "f"}${member.name}\0`).join("")),
  );
  const [archive, list, target] = [shellQuote(archivePath), shellQuote(listPath), shellQuote(dir)];
  // The directory, and the deepest part of it that exists before mkdir, must stay in the
  // workspace followed physically. Each refusal comes back as "<member index> <code>". An empty
  // list would make tar unpack every member, so tar runs only when some member is left.
  // --no-recursion: a listed directory brings only itself, never a refused entry below it.
  const script = `${CHECK_MEMBER}
workspace=${shellQuote(WORKSPACE_ROOT)}
inside_workspace() { [ "$PWD" = "$workspace" ] || [[ $PWD == "$workspace"/* ]]; }
existing=${target}
while [ -n "$existing" ] && [ ! -e "$existing" ] && [ "$existing" != "$workspace" ]; do existing=\${existing%/*}; done
give_up() { rm -f ${archive} ${list}; echo "$1"; exit 0; }
cd -P -- "$existing" 2>/dev/null || give_up ${TARGET_NOT_DIRECTORY}
inside_workspace || give_up ${TARGET_OUTSIDE}
{ mkdir -p -- ${target} && cd -P -- ${target}; } 2>/dev/null || give_up ${TARGET_NOT_DIRECTORY}
inside_workspace || give_up ${TARGET_OUTSIDE}
root=$PWD; index=0; accepted=()
while IFS= read -r -d '' record; do
  refusal=
  if check_member "\${record:0:1}" "\${record:1}"; then accepted+=("\${record:1}"); else echo "$index $refusal"; fi
  index=$((index + 1))
done < ${list}
status=0
if [ \${#accepted[@]} -gt 0 ]; then
  printf '%s\\0' "\${accepted[@]}" > ${list}
  tar -xzpf ${archive} -C "$root" --no-same-owner --no-recursion --null --verbatim-files-from -T ${list}
  status=$?
fi
rm -f ${archive} ${list}
exit $status`;
  const { stdout } = await sandbox.run(script);
  if (stdout.includes(TARGET_NOT_DIRECTORY)) {
    throw new SandboxOperationError(
      "PATH_REFUSED",
      `${dir} is not a directory in the sandbox (a file stands on its way); nothing was unpacked`,
      false,
    );
  }
  if (stdout.includes(TARGET_OUTSIDE)) {
    throw new SandboxOperationError(
      "PATH_REFUSED",
      `${dir} leads outside ${WORKSPACE_ROOT} through a symlink in the sandbox; nothing was unpacked`,
      false,
    );
  }
  const refusedHere = new Map<number, string>();
  for (const line of stdout.split("\n")) {
    const [index, code] = line.trim().split(" ");
    if (index !== undefined && code !== undefined && /^\d+$/.test(index) && isSandboxRefusal(code)) {
      refusedHere.set(Number(index), SANDBOX_REFUSALS[code]);
    }
  }
  // "./" (the directory itself) is no path of its own.
  const written = plan.members
    .filter((_, index) => !refusedHere.has(index))
    .map((member) => member.name.replace(/^\.\//, ""))
    .filter((name) => name !== "");
  return {
    entries: plan.entries,
    written: written.slice(0, LISTED_MAX),
    refused: [...plan.refused, ...[...refusedHere].map(([index, reason]) => ({ path: plan.members[index]?.name ?? "", reason }))],
  };
}
