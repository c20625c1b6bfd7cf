/**
 * Unpacks an uploaded .tar.gz into the sandbox, once archivePlan.ts has judged its headers. What
 * the sandbox already holds is checked there, just before tar runs, entry by entry: a path
 * through a symlink that leads out of the directory, or through a file; a symlink whose target
 * leads out of it as the kernel would follow it; a hard link to an entry the check refused. The
 * rest is unpacked by tar, modes and in-tree symlinks kept.
 */
import { SandboxOperationError, type SandboxPort } from "../sandbox/port";
import { shellQuote } from "../sandbox/shell";
import { WORKSPACE_ROOT } from "../schemas/ids";
import type { Extracted } from "../schemas/job";
import type { ExtractionPlan, PlannedMember } from "./archivePlan";

/** At most this many written paths are listed in the record (all are counted). */
const LISTED_MAX = 1000;

/** Why the sandbox's check refused a member, by the code its script prints. */
const SANDBOX_REFUSALS = {
  outside: "leads outside the directory through a symlink already in the sandbox",
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
 * entries). `check_path KIND PATH`: every part of PATH that exists below `$root` (its last too
 * for a directory entry, since tar would set the mode of whatever it leads to) is a directory
 * that, followed as the kernel follows it (`cd -P`), stays below `$root`; and a file or link
 * entry finds no directory where it goes. `follow FROM TARGET`: where TARGET read from directory
 * FROM leads, symlinks already in the sandbox followed and what does not exist taken as written
 * (`landed`); fails once it leaves `$root`, or at a symlink it cannot follow (dangling, or to a
 * file). Each sets `refusal` to a SANDBOX_REFUSALS code when it fails. Memo keys start with `/`,
 * so none is ever bash's `@` or `*`.
 */
const SANDBOX_CHECK = `declare -A checked unpacked
below_root() { [ "$1" = "$root" ] || [[ $1 == "$root"/* ]]; }
check_path() {
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
    [ -n "\${checked["/$prefix"]:-}" ] && continue
    if [ -d "$root/$prefix" ]; then
      { cd -P -- "$root/$prefix" 2>/dev/null && below_root "$PWD"; } || { refusal=outside; return 1; }
      checked["/$prefix"]=1
    elif [ -e "$root/$prefix" ] || [ -L "$root/$prefix" ]; then
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
        if [ -d "$cur/$segment" ]; then
          cd -P -- "$cur/$segment" 2>/dev/null || { refusal=outside; return 1; }
          cur=$PWD
        elif [ -L "$cur/$segment" ]; then
          refusal=outside
          return 1
        else
          cur=$cur/$segment
        fi ;;
    esac
    below_root "$cur" || { refusal=outside; return 1; }
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

/**
 * Unpacks the planned members of the archive (already in the sandbox at `archivePath`) into
 * `dir`, after the sandbox's own check of each; what the record says of the archive.
 */
export async function unpackInSandbox(sandbox: SandboxPort, archivePath: string, dir: string, plan: ExtractionPlan): Promise<Extracted> {
  const listPath = `${archivePath}.members`;
  // Four fields a member, each ending in NUL: its kind, its name in the archive, its path, its target.
  const fields = plan.members.map((member) => `${KIND_LETTERS[member.kind]}\0${member.name}\0${member.path}\0${member.target}\0`);
  await sandbox.writeFile(listPath, new TextEncoder().encode(fields.join("")));
  const [archive, list, target] = [shellQuote(archivePath), shellQuote(listPath), shellQuote(dir)];
  // The directory, and the deepest part of it that exists before mkdir, must stay in the
  // workspace followed physically. Each refusal comes back as "<member index> <code>". An empty
  // list would make tar unpack every member, so tar runs only when some member is left.
  // --no-recursion: a listed directory brings only itself, never a refused entry below it.
  const script = `${SANDBOX_CHECK}
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
while IFS= read -r -d '' kind && IFS= read -r -d '' name && IFS= read -r -d '' path && IFS= read -r -d '' link_target; do
  refusal=
  if check_member "$kind" "$path" "$link_target"; then
    accepted+=("$name")
    unpacked["/$path"]=1
  else
    echo "$index $refusal"
  fi
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
  const refusedHere = new Map<number, string>();
  for (const line of stdout.split("\n")) {
    const [index, code] = line.trim().split(" ");
    if (index !== undefined && code !== undefined && /^\d+$/.test(index) && isSandboxRefusal(code)) {
      refusedHere.set(Number(index), SANDBOX_REFUSALS[code]);
    }
  }
  // The directory itself ("./") is no path of its own.
  const written = plan.members
    .filter((member, index) => !refusedHere.has(index) && member.path !== "")
    .map((member) => member.name.replace(/^\.\//, ""));
  return {
    entries: plan.entries,
    written: written.slice(0, LISTED_MAX),
    refused: [...plan.refused, ...[...refusedHere].map(([index, reason]) => ({ path: plan.members[index]?.name ?? "", reason }))],
  };
}
