/**
 * Unpacks an uploaded .tar.gz into the sandbox, once archivePlan.ts has judged its headers. What
 * the sandbox already holds is checked there, just before tar runs, entry by entry: a path
 * through a symlink that leads out of the directory, or through a file; a symlink whose target
 * leads out of it; a hard link to an entry the check refused. The rest is packed again from the
 * judged headers and unpacked by tar, permission bits and in-tree symlinks kept.
 */

import { createTarPacker, type TarHeader } from "modern-tar";
import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { shellQuote } from "../sandbox/shell";
import { WORKSPACE_ROOT } from "../schemas/ids";
import type { Extracted } from "../schemas/job";
import { decodeTarGz, type ExtractionPlan, headerFingerprint, type PlannedMember } from "./archivePlan";

/** At most this many written paths are listed in the record (all are counted). */
const LISTED_MAX = 1000;

/** Why the sandbox's check refused a member, by the code its script prints. */
const SANDBOX_REFUSALS = {
  symlink: "goes through a symlink already in the sandbox",
  outside: "symlink points outside the directory",
  "not-dir": "something in the sandbox that is not a directory stands where it needs one",
  "is-dir": "a directory in the sandbox stands where the archive has a file or link",
  "link-target": "hard link to an entry that was not unpacked",
} as const;

function isSandboxRefusal(code: string): code is keyof typeof SANDBOX_REFUSALS {
  return code in SANDBOX_REFUSALS;
}

/** How a member's kind is spelled in the list the sandbox's check reads. */
const KIND_LETTERS: Record<PlannedMember["kind"], string> = { directory: "d", file: "f", symlink: "s", link: "h" };

/**
 * The sandbox's check, in bash builtins only (never a fork: an archive may hold thousands of
 * entries). No entry goes through a symlink already in the sandbox, wherever it leads: tar runs
 * after the check, and the archive may re-point a link that another one resolves through.
 * `check_path KIND PATH`: every part of PATH that exists below `$root` (its last too for a
 * directory entry, since tar would set the mode of whatever it is) is a directory, not a symlink;
 * a file or link entry finds no directory where it goes. `follow FROM TARGET`: where TARGET read
 * from directory FROM leads, as text (`landed`), through no symlink of the sandbox and never above
 * `$root`. Each sets `refusal` to a SANDBOX_REFUSALS code when it fails. Memo keys start with
 * `/`, so none is ever bash's `@` or `*`.
 */
const SANDBOX_CHECK = `declare -A checked unpacked
check_path() {
  local kind=$1 prefix= last i IFS=/
  local -a parts=()
  # PATH comes without empty or "." segments (archivePlan.ts): split on "/" at once, globbing off.
  set -f
  parts=($2)
  set +f
  last=\${#parts[@]}
  [ "$kind" = d ] || last=$((last - 1))
  for ((i = 0; i < last; i++)); do
    prefix=\${prefix:+$prefix/}\${parts[i]}
    [ -n "\${checked["/$prefix"]:-}" ] && continue
    if [ -L "$root/$prefix" ]; then
      refusal=symlink
      return 1
    elif [ -d "$root/$prefix" ]; then
      checked["/$prefix"]=1
    elif [ -e "$root/$prefix" ]; then
      refusal=not-dir
      return 1
    else
      return 0
    fi
  done
  if [ "$kind" != d ] && [ -n "$2" ] && [ -d "$root/$2" ] && [ ! -L "$root/$2" ]; then refusal=is-dir; return 1; fi
  return 0
}
follow() {
  local cur=$1 rest=$2 segment
  while [ -n "$rest" ]; do
    segment=\${rest%%/*}
    if [[ $rest == */* ]]; then rest=\${rest#*/}; else rest=; fi
    case $segment in
      "" | .) continue ;;
      ..) [ "$cur" = "$root" ] && { refusal=outside; return 1; }; cur=\${cur%/*} ;;
      *)
        [ -L "$cur/$segment" ] && { refusal=symlink; return 1; }
        cur=$cur/$segment ;;
    esac
  done
  landed=$cur
}
check_member() {
  local kind=$1 path=$2 target=$3 parent=
  check_path "$kind" "$path" || return 1
  case $kind in
    s)
      [[ $path == */* ]] && parent=\${path%/*}
      follow "$root" "$parent" && follow "$landed" "$target"
      ;;
    h) [ -n "\${unpacked["/$target"]:-}" ] || { refusal=link-target; return 1; } ;;
  esac
}`;

/** Printed instead of unpacking when the target directory itself leads out of the workspace, or is not a directory. */
const TARGET_OUTSIDE = "as-target-outside";
const TARGET_NOT_DIRECTORY = "as-target-not-directory";

/** Makes `dir` (in the workspace, followed physically) and cds there as `$root`, or prints why not and exits. */
function enterTarget(dir: string, cleanUp: string): string {
  const target = shellQuote(dir);
  // The deepest part of the directory that exists before mkdir must stay in the workspace too.
  return `workspace=${shellQuote(WORKSPACE_ROOT)}
inside_workspace() { [ "$PWD" = "$workspace" ] || [[ $PWD == "$workspace"/* ]]; }
existing=${target}
while [ -n "$existing" ] && [ ! -e "$existing" ] && [ "$existing" != "$workspace" ]; do existing=\${existing%/*}; done
give_up() { ${cleanUp}; echo "$1"; exit 0; }
cd -P -- "$existing" 2>/dev/null || give_up ${TARGET_NOT_DIRECTORY}
inside_workspace || give_up ${TARGET_OUTSIDE}
{ mkdir -p -- ${target} && cd -P -- ${target}; } 2>/dev/null || give_up ${TARGET_NOT_DIRECTORY}
inside_workspace || give_up ${TARGET_OUTSIDE}
root=$PWD`;
}

function refuseTarget(stdout: string, dir: string): void {
  if (stdout.includes(TARGET_NOT_DIRECTORY)) {
    throw new SandboxOperationError(
      "PATH_REFUSED",
      `${dir} is not, or could not be made, a directory in the sandbox; nothing was unpacked`,
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
}

/**
 * Checks the planned members against what the sandbox holds under `dir` (made if missing): the
 * members it refuses, by their index in the plan, with the reason.
 */
export async function checkInSandbox(
  sandbox: SandboxPort,
  listPath: string,
  dir: string,
  plan: ExtractionPlan,
): Promise<Map<number, string>> {
  // Four fields a member, each ending in NUL: its kind, its name, its path, its target.
  const fields = plan.members.map((member) => `${KIND_LETTERS[member.kind]}\0${member.name}\0${member.path}\0${member.target}\0`);
  await sandbox.writeFile(listPath, new TextEncoder().encode(fields.join("")));
  const list = shellQuote(listPath);
  // Each refusal comes back as "<member index> <code>".
  const script = `${SANDBOX_CHECK}
${enterTarget(dir, `rm -f ${list}`)}
index=0
while IFS= read -r -d '' kind && IFS= read -r -d '' name && IFS= read -r -d '' path && IFS= read -r -d '' link_target; do
  refusal=
  if check_member "$kind" "$path" "$link_target"; then unpacked["/$path"]=1; else echo "$index $refusal"; fi
  index=$((index + 1))
done < ${list}
rm -f ${list}`;
  const { stdout } = await sandbox.run(script);
  refuseTarget(stdout, dir);
  const refused = new Map<number, string>();
  for (const line of stdout.split("\n")) {
    const [index, code] = line.trim().split(" ");
    if (index !== undefined && code !== undefined && /^\d+$/.test(index) && isSandboxRefusal(code))
      refused.set(Number(index), SANDBOX_REFUSALS[code]);
  }
  return refused;
}

/**
 * The archive again, holding only the entries in `accepted` (their places among the archive's
 * entries), as a fresh .tar.gz of modern-tar's own headers: tar in the sandbox then reads exactly
 * what was judged, however the upload's own headers could be read (two parsers, one archive).
 * Modes keep their permission bits only (no setuid, setgid or sticky bit).
 */
export function repackAccepted(
  archive: ReadableStream<Uint8Array>,
  plan: ExtractionPlan,
  accepted: ReadonlySet<number>,
): ReadableStream<Uint8Array> {
  const { readable, controller } = createTarPacker();
  void (async () => {
    let entry = 0;
    for await (const { header, body } of decodeTarGz(archive)) {
      if (headerFingerprint(header) !== plan.fingerprints[entry]) throw new Error("The uploaded archive read differently the second time");
      if (!accepted.has(entry++)) {
        await body.cancel();
        continue;
      }
      const type = header.type === "directory" || header.type === "symlink" || header.type === "link" ? header.type : "file";
      const size = type === "file" ? header.size : 0;
      const repacked: TarHeader = {
        name: header.name,
        type,
        size,
        mode: (header.mode ?? 0o644) & 0o777,
        mtime: header.mtime ?? new Date(0),
      };
      if (type === "symlink" || type === "link") repacked.linkname = header.linkname ?? "";
      const sink = controller.add(repacked);
      if (size > 0) await body.pipeTo(sink);
      else {
        await body.cancel();
        await sink.close();
      }
    }
    if (entry !== plan.entries) throw new Error("The uploaded archive read differently the second time");
    controller.finalize();
  })().catch((error: unknown) => controller.error(error));
  return readable.pipeThrough(new CompressionStream("gzip"));
}

/** Unpacks a repacked archive (already in the sandbox at `archivePath`) into `dir`. */
export async function unpackInSandbox(sandbox: SandboxPort, archivePath: string, dir: string): Promise<void> {
  const archive = shellQuote(archivePath);
  const script = `${enterTarget(dir, `rm -f ${archive}`)}
tar -xzpf ${archive} -C "$root" --no-same-owner
status=$?
rm -f ${archive}
exit $status`;
  refuseTarget((await sandbox.run(script)).stdout, dir);
}

/** What the record says of the archive: what was written, and every entry refused with why. */
export function extractedRecord(plan: ExtractionPlan, refusedInSandbox: ReadonlyMap<number, string>): Extracted {
  // The directory itself ("./") is no path of its own.
  const written = plan.members
    .filter((member, index) => !refusedInSandbox.has(index) && member.path !== "")
    .map((member) => member.name.replace(/^\.\//, ""));
  return {
    entries: plan.entries,
    written: written.slice(0, LISTED_MAX),
    refused: [...plan.refused, ...[...refusedInSandbox].map(([index, reason]) => ({ path: plan.members[index]?.name ?? "", reason }))],
  };
}
