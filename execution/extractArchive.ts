/**
 * Unpacks an uploaded .tar.gz into the sandbox, once archivePlan.ts has judged its headers. Just
 * before tar runs, the sandbox is asked what stands at each path the members need (a letter a
 * path), and sandboxJudgement.ts refuses what would go through or onto it. The rest is packed
 * again from the judged headers and unpacked by tar, permission bits and in-tree symlinks kept.
 */

import { createTarPacker, type TarHeader } from "modern-tar";
import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { shellQuote } from "../sandbox/shell";
import { WORKSPACE_ROOT } from "../schemas/ids";
import type { Extracted } from "../schemas/job";
import { decodeTarGz, type ExtractionPlan, headerFingerprint } from "./archivePlan";
import { firstQuestions, judgeMembers, type Standing, secondQuestions } from "./sandboxJudgement";

/** At most this many written paths, and as many refused entries, are listed in the record (all are counted). */
const LISTED_MAX = 1000;

/**
 * Prints, for each NUL-separated path of the list (relative to `$root`, where the script stands),
 * a letter for what stands there: `L` a symlink, `D` a directory, `F` anything else, `-` nothing.
 * Bash builtins only, no fork: one pass however many paths there are; the letters come on lines
 * of their own, a few thousand at a time.
 */
const PROBE_LETTERS: Record<string, Standing> = { L: "symlink", D: "directory", F: "other", "-": "missing" };
const PROBED = "as-probed ";

function probeScript(list: string): string {
  return `mapfile -d '' -t asked < ${list}
rm -f ${list}
letters=
for p in "\${asked[@]}"; do
  if [ -L "$p" ]; then letters+=L; elif [ -d "$p" ]; then letters+=D; elif [ -e "$p" ]; then letters+=F; else letters+=-; fi
  [ \${#letters} -lt 4096 ] || { echo "${PROBED}$letters"; letters=; }
done
echo "${PROBED}$letters"`;
}

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

/** Asks the sandbox what stands at each of `paths` below `dir` (entered as `enterTarget` does), into `known`. */
async function probe(
  sandbox: SandboxPort,
  listPath: string,
  dir: string,
  paths: readonly string[],
  known: Map<string, Standing>,
): Promise<void> {
  await sandbox.writeFile(listPath, new TextEncoder().encode(paths.map((path) => `${path}\0`).join("")));
  const list = shellQuote(listPath);
  const { stdout } = await sandbox.run(`${enterTarget(dir, `rm -f ${list}`)}\n${probeScript(list)}`);
  refuseTarget(stdout, dir);
  const letters = stdout
    .split("\n")
    .filter((line) => line.startsWith(PROBED))
    .map((line) => line.slice(PROBED.length))
    .join("");
  if (letters.length !== paths.length) {
    throw new SandboxOperationError(
      "SANDBOX_ERROR",
      `The sandbox answered for ${letters.length} of ${paths.length} paths of the upload`,
      true,
    );
  }
  for (const [index, path] of paths.entries()) {
    const standing = PROBE_LETTERS[letters.charAt(index)];
    if (!standing) throw new SandboxOperationError("SANDBOX_ERROR", `The sandbox answered "${letters.charAt(index)}" for ${path}`, true);
    known.set(path, standing);
  }
}

/**
 * Checks the planned members against what the sandbox holds under `dir` (made if missing): the
 * members it refuses, by their index in the plan, with the reason. Two rounds at most: the
 * directories the members need (and their symlinks' steps), then the places of files and links
 * whose directories all exist already (in a fresh directory, its top level only).
 */
export async function checkInSandbox(
  sandbox: SandboxPort,
  listPath: string,
  dir: string,
  plan: ExtractionPlan,
): Promise<Map<number, string>> {
  const known = new Map<string, Standing>();
  const of = (path: string) => known.get(path);
  await probe(sandbox, listPath, dir, firstQuestions(plan.members), known);
  const second = secondQuestions(plan.members, of);
  if (second.length > 0) await probe(sandbox, listPath, dir, second, known);
  return judgeMembers(plan.members, of);
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
  const refused = [...plan.refused, ...[...refusedInSandbox].map(([index, reason]) => ({ path: plan.members[index]?.name ?? "", reason }))];
  return {
    entries: plan.entries,
    written: written.slice(0, LISTED_MAX),
    refused: refused.slice(0, LISTED_MAX),
    refusedCount: refused.length,
  };
}
