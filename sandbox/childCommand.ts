/**
 * A job's command as a child process of its own, the way the README promises it runs (`bash -c`),
 * whatever the container's exec does with the text it is given. The shell scripts here are sent
 * through the SDK's plain `exec`:
 *
 * - `startScript` forks a supervisor (a subshell, in a process group of its own) and records its
 *   pid. The supervisor runs `bash -c <command>` in a session of its own with stdout and stderr
 *   in files, waits for it, kills whatever it left behind in its session, and only then writes
 *   the exit status (so the files are final once it exists). A run's files are
 *   `<runs dir>/<run id>.<name>`.
 * - `pollScript` waits briefly for new output or the end, then reports the files' sizes, the exit
 *   status when there is one, and the bytes past the caller's offsets that it still wants (the
 *   middle of an output over the cap is skipped): a little as base64 in the answer, more in a
 *   gzip file for the caller to stream. Exact bytes either way, however many lines they hold.
 * - `endScript` kills the command's session (a cancel, or its deadline).
 *
 * Nothing here enforces a deadline: a command may stop or kill everything in its container, so
 * the caller (the coordinator) keeps the clock and gives up on a container that stops answering.
 */
import { RUN_MARKER_VARIABLE } from "../schemas/job";
import { inSubshell, shellQuote } from "./shell";

/** Where runs keep their files; a fresh container's /tmp is empty. */
const RUNS_DIR = "/tmp/.artifact-sandbox-runs";
/**
 * Ended runs whose files a start removes at once, in one `rm`: an ended run's outputs are
 * emptied when read, and a process start costs milliseconds of CPU in a busy container.
 */
const ENDED_RUNS_KEPT = 16;
/**
 * How the links through which files are read (sdkSandbox.ts) begin: a job's files are read by the
 * job itself, never while another's command starts, so a start removes any left over.
 */
export const READ_LINK_PREFIX = "/tmp/.read-";
/** The runs' wake-up FIFO: a supervisor writes to it when its command has ended. */
const TICK = `${RUNS_DIR}/.tick`;
/** Makes the FIFO unless it is one (a job may have removed it, or put a plain file there). */
const MAKE_TICK = `{ [ -p ${TICK} ] || { rm -f ${TICK}; mkfifo ${TICK}; } 2>/dev/null; }`;
/** How often the poll script looks for output while it waits. */
const POLL_TICK_SECONDS = 0.02;
/** Ticks a poll lets a burst of output (more than fits inline) run on while it grows, so it comes in one answer. */
const BURST_TICKS = 10;

/**
 * `reap SID [RUN]`: kills every live process of session or process group SID, and process SID
 * itself (a run's child puts its pid on record just before it makes that session; a supervisor
 * leads a process group, its child in it until the child makes its session), and, given the run's
 * id, every process whose environment (as it was when the process started) holds that run's
 * marker: what the command started in a session of its own (`setsid -f`, a daemon), unless it
 * cleared or overwrote its environment or runs as another user. Rescans (a fork may escape one scan) until none is
 * left. Each sweep stops them all before killing them, so no shell of the command sees its child
 * die and reports it ("Killed") into the job's output. Pure bash over /proc, so it needs no
 * procps in the image.
 */
const REAP_FUNCTION = `reap() {
  local sid=$1 marker= round p line entry
  local -a f pids environment
  [ -n "\${2:-}" ] && marker=${RUN_MARKER_VARIABLE}=$2
  for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    pids=()
    for p in /proc/[0-9]*; do
      { read -r line < "$p/stat"; } 2>/dev/null || continue
      f=(\${line##*) })
      [ "\${f[0]}" != Z ] || continue
      if [ "\${f[3]}" = "$sid" ] || [ "\${f[2]}" = "$sid" ] || [ "\${p#/proc/}" = "$sid" ]; then pids+=("\${p#/proc/}"); continue; fi
      [ -n "$marker" ] || continue
      { mapfile -d '' -t environment < "$p/environ"; } 2>/dev/null || continue
      for entry in "\${environment[@]}"; do
        if [ "$entry" = "$marker" ]; then pids+=("\${p#/proc/}"); break; fi
      done
    done
    [ "\${#pids[@]}" -eq 0 ] && return 0
    kill -STOP "\${pids[@]}" 2>/dev/null
    kill -KILL "\${pids[@]}" 2>/dev/null
    sleep 0.01
  done
}
# reap_recorded FILE: reaps the pid on record in FILE (a run's .pid or .supervisor), and what its
# command left with the run's marker, unless its run has ended: then nothing is left to kill, and
# the pid may be another process's by now.
reap_recorded() {
  local recorded= run_file=\${1%.*}
  [ -e "$1" ] && [ ! -e "$run_file.exit" ] || return 0
  IFS= read -r recorded < "$1"
  reap "$recorded" "\${run_file##*/}"
}`;

/**
 * The supervisor's text, run in a subshell the start forks (no new bash to load), with `run` (the
 * run's path prefix), `command_text` and `cwd` set and `export_env` defined by the start. The
 * job's environment is exported only in the child, after what the child needs was set aside in
 * its positional parameters, and bash comes by absolute path: a job's PATH or a variable named
 * like ours changes nothing here. Builtins wherever they do: a trivial job should cost few processes.
 */
const SUPERVISOR = `stdin_file=/dev/null
[ -e "$run.stdin" ] && stdin_file=$run.stdin
hash setsid 2>/dev/null
setsid_path=\${BASH_CMDS[setsid]}
if { [ -d "$cwd" ] || mkdir -p -- "$cwd" 2>/dev/null; } && cd -- "$cwd" 2>/dev/null; then
  (
    # Its pid (the command's session, setsid keeping it) is on record before the command runs.
    echo "$BASHPID" > "$run.pid"
    set -- "$setsid_path" "$BASH" "$command_text"
    export_env
    export ${RUN_MARKER_VARIABLE}="\${run##*/}"
    exec "$1" "$2" -c "$3"
  ) < "$stdin_file" > "$run.stdout" 2> "$run.stderr" &
  child=$!
  wait "$child"
  status=$?
  reap "$child" "\${run##*/}"
else
  printf 'Failed to change directory to %s\\n' "$cwd" > "$run.stderr"
  : > "$run.stdout"
  status=1
fi
echo "$status" > "$run.exit"
# Wakes a poll waiting on the FIFO at once (opened read-write, so this never blocks).
# Only if it is one: opening a missing FIFO would make it a plain file.
[ -p ${TICK} ] && { exec 8<> ${TICK} && printf x >&8; } 2>/dev/null`;

export interface ChildCommand {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

/** A run's files are this path with `.<name>` after it. */
export function runPrefix(runId: string): string {
  return `${RUNS_DIR}/${runId}`;
}

/** Where a command's stdin is written before it starts (the container makes the directory). */
export function stdinPath(runId: string): string {
  return `${runPrefix(runId)}.stdin`;
}

/** `export_env`: exports the job's variables (names are validated by the job schema; values are quoted, so any text is safe). */
function exportEnvFunction(env: Record<string, string>): string {
  const exports = Object.entries(env).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  return `export_env() {\n${exports.join("\n")}\n:\n}`;
}

/**
 * What one poll asks for. Per stream, the bytes from `at` on: the first `headRoom` of them are
 * all wanted (the kept head is not full yet), past those only the last `tailBytes` of what is
 * there (the rest could never be kept, so it is skipped unread). Wanted bytes up to
 * `inlineBytes` per stream come in the answer as base64; more go into a gzip file beside the
 * run's for the caller to stream (`readFileStream`): an exec's answer is one string, slow to
 * move in bulk through either container server, and a `.gz` is streamed as base64 whatever it
 * holds, where a plain file that looks like text is decoded as UTF-8 (not byte for byte).
 */
export interface PollRequest {
  stdout: { at: number; headRoom: number };
  stderr: { at: number; headRoom: number };
  tailBytes: number;
  inlineBytes: number;
  /** How long the poll waits in the sandbox for new output or the end. */
  waitMs: number;
}

/**
 * Starts the command (and, in the same round trip, waits like `pollScript` for its first output
 * or its end). A stdin for it is written to `stdinPath(runId)` first. Prints `as-start-failed`
 * when the runs' directory could not be made.
 */
export function startScript(runId: string, child: ChildCommand, first: PollRequest): string {
  const start = [
    REAP_FUNCTION,
    `cd -- ${RUNS_DIR} 2>/dev/null || { mkdir -p -- ${RUNS_DIR} && cd -- ${RUNS_DIR}; } 2>/dev/null || { echo as-start-failed; exit 0; }`,
    // One wake-up FIFO for the container's runs, made once: each process costs milliseconds.
    `{ ${MAKE_TICK}; [ -p ${TICK} ]; } || { echo as-start-failed; exit 0; }`,
    // The gzip slices of earlier runs have been read by now, and so has every file read through
    // a link (READ_LINK_PREFIX: a read whose stream was cancelled leaves its link). Ended runs'
    // files (their outputs emptied when read) go too, a batch at a time.
    "shopt -s nullglob",
    `stale=(*.gz ${READ_LINK_PREFIX}*.gz); ended=(*.exit)`,
    // Each run's .exit goes last: an rm cut short must never leave a pid on record without it (reap would take it for live).
    `if [ \${#ended[@]} -ge ${ENDED_RUNS_KEPT} ]; then for e in "\${ended[@]}"; do for f in "\${e%.exit}".*; do [ "$f" = "$e" ] || stale+=("$f"); done; done; stale+=("\${ended[@]}"); fi`,
    `[ \${#stale[@]} -eq 0 ] || rm -f -- "\${stale[@]}"`,
    "shopt -u nullglob",
    `run=${shellQuote(runPrefix(runId))}`,
    `command_text=${shellQuote(child.command)}`,
    `cwd=${shellQuote(child.cwd)}`,
    exportEnvFunction(child.env),
    // Forked, in a process group of its own (job control on for this one fork), its output
    // nowhere: the exec returns at once. Its pid is on record when the exec answers, for a
    // takeover to end it (endAllScript). It stays in the exec's session: a container server
    // that killed the exec's session (our agent at an exec's timeout) would end it too, so the
    // runner keeps its own clock and never relies on an exec's timeout.
    "set -m",
    `(\n${SUPERVISOR}\n) < /dev/null > /dev/null 2>&1 &`,
    `echo "$!" > "$run.supervisor"`,
    "set +m",
  ].join("\n");
  // One subshell for both: a fork costs milliseconds in a busy container.
  return inSubshell(`${start}\n${pollBody(runId, first)}`);
}

/**
 * Reports, after waiting up to `waitMs` for anything new: a line `as-status <stdout size>
 * <stderr size> <exit status or ->`, then one line per stream, `<head> <skipped> <tail> <data>`:
 * `head` wanted bytes from the offset, `skipped` bytes left out, then the `tail` bytes up to the
 * size, where `data` is `=<base64>`, or `@<path>` of one gzip file, or two of them, for the head
 * part and the tail part, holding both parts. A little new
 * output is answered at once (live logs); more is let grow for a few ticks, so that a burst comes
 * in one answer, with the command's end when it ends meanwhile. A poll removes the gzip files of
 * the one before (read by then). Once the command has ended, its outputs are emptied (a later
 * start removes the run's files); the final answer is kept, and a poll after it (its answer was
 * lost on the way) gets the same answer again, with the same gzip files, which stay until the
 * next run's start. Prints `as-missing` when there is no such run, or when its end was answered to
 * another poll.
 */
export function pollScript(runId: string, request: PollRequest): string {
  return inSubshell(pollBody(runId, request));
}

function pollBody(runId: string, request: PollRequest): string {
  const ticks = Math.max(0, Math.floor(request.waitMs / 1000 / POLL_TICK_SECONDS));
  // Waiting costs no process: a timed read on the runs' FIFO ticks, and a file's mtime against a
  // marker's tells of new output; the sizes are looked at again every tenth tick all the same,
  // since a write in the marker's own clock tick leaves its mtime equal, not newer.
  const script = `run=${shellQuote(runPrefix(runId))}
{ cd -- ${RUNS_DIR} && [ -e "$run.supervisor" ]; } 2>/dev/null || { echo as-missing; exit 0; }
# Prints the kept final answer, unless the file is cut short (its writing failed: a full disk).
print_answer() {
  local line
  local -a lines=()
  while IFS= read -r line; do
    if [ "$line" = as-end ]; then printf '%s\n' "\${lines[@]}"; return 0; fi
    lines+=("$line")
  done < "$run.final"
  return 1
} 2>/dev/null
out_at=${request.stdout.at}; err_at=${request.stderr.at}
# The end was answered already (the outputs are emptied by then): to the same poll, that answer
# again, its gzip files still there; to any other, none.
if [ -s "$run.answered" ]; then
  IFS= read -r asked < "$run.answered"
  if [ "$asked" = "$out_at $err_at" ]; then print_answer || echo as-missing; else echo as-missing; fi
  exit 0
fi
shopt -s nullglob; old=("$run".*.gz); [ \${#old[@]} -eq 0 ] || rm -f -- "\${old[@]}"; shopt -u nullglob
out_room=${request.stdout.headRoom}; err_room=${request.stderr.headRoom}
tail_keep=${request.tailBytes}; inline_max=${request.inlineBytes}
look() {
  status=-
  [ -s "$run.exit" ] && { IFS= read -r status < "$run.exit" || true; }
  out_size=0; err_size=0
  # stat is a process of its own: not run for a command that has written nothing.
  if [ -s "$run.stdout" ] || [ -s "$run.stderr" ]; then
    local -a sizes
    sizes=($(stat -c %s -- "$run.stdout" "$run.stderr" 2>/dev/null))
    out_size=\${sizes[0]:-0}; err_size=\${sizes[1]:-0}
  fi
  news=$(( (out_size > out_at ? out_size - out_at : 0) + (err_size > err_at ? err_size - err_at : 0) ))
}
look
if [ ${ticks} -gt 0 ] && [ "$status" = - ] && { [ "$news" -eq 0 ] || [ "$news" -gt "$inline_max" ]; }; then
  # A job may have removed or replaced the FIFO: made again; failing that, a pipe nobody writes.
  ${MAKE_TICK}
  if [ -p ${TICK} ]; then exec 9<> ${TICK}; else exec 9< <(exec sleep ${Math.ceil(request.waitMs / 1000) + 1}); fi
  : > "$run.polled"
  tick=0; burst=0
  while [ "$tick" -lt ${ticks} ] && [ ! -s "$run.exit" ]; do
    read -t ${POLL_TICK_SECONDS} -n 1 -u 9 _ || true
    tick=$((tick + 1))
    # Ended: the look after the loop sees it all (a look that finds output costs a stat process).
    [ -s "$run.exit" ] && break
    if [ "$run.stdout" -nt "$run.polled" ] || [ "$run.stderr" -nt "$run.polled" ] || [ $((tick % 10)) -eq 0 ]; then
      : > "$run.polled"
      before=$news
      look
      # New output ends the wait when it is little, when it stopped growing, or when a burst has run on long enough.
      if [ "$news" -gt 0 ] && { [ "$news" -le "$inline_max" ] || [ "$news" -eq "$before" ] || [ $((++burst)) -ge ${BURST_TICKS} ]; }; then break; fi
    elif [ "$news" -gt 0 ]; then
      break
    fi
  done
  exec 9<&-
  look
fi
range() { [ "$3" -le 0 ] || dd if="$1" bs=65536 skip="$2" count="$3" iflag=skip_bytes,count_bytes status=none; }
slice() {
  local name=$1 size=$2 at=$3 room=$4 pending first rest skipped last file
  pending=$((size > at ? size - at : 0))
  first=$((pending < room ? pending : room))
  rest=$((pending - first))
  skipped=$((rest > tail_keep ? rest - tail_keep : 0))
  last=$((rest - skipped))
  if [ $((first + last)) -eq 0 ]; then
    echo "0 $skipped 0 ="
  elif [ $((first + last)) -le "$inline_max" ]; then
    printf '%s %s %s =' "$first" "$skipped" "$last"
    # From the start, nothing skipped: one bounded read (a process that left the command's
    # session may still be writing to the file), two processes instead of three.
    if [ "$at" -eq 0 ] && [ "$skipped" -eq 0 ]; then
      head -c "$first" -- "$name" | base64 -w0
    else
      { range "$name" "$at" "$first"; range "$name" $((at + first + skipped)) "$last"; } | base64 -w0
    fi
    echo
  else
    # Head and tail compressed side by side (a container has more than one core), each in a file of its own.
    file=$name-$at.gz
    if [ "$first" -gt 0 ] && [ "$last" -gt 0 ]; then
      range "$name" "$at" "$first" | gzip -1 > "$file" 2>/dev/null &
      range "$name" $((at + first + skipped)) "$last" | gzip -1 > "$file.tail.gz" 2>/dev/null
      tail_status=$?
      if wait "$!" && [ "$tail_status" -eq 0 ]; then echo "$first $skipped $last @$file @$file.tail.gz"; return; fi
    else
      if { range "$name" "$at" "$first"; range "$name" $((at + first + skipped)) "$last"; } | gzip -1 > "$file" 2>/dev/null; then
        echo "$first $skipped $last @$file"
        return
      fi
    fi
    # A gzip file could not be written whole (a full disk): the bytes come in the answer, slower but exact.
    rm -f -- "$file" "$file.tail.gz"
    printf '%s %s %s =' "$first" "$skipped" "$last"
    { range "$name" "$at" "$first"; range "$name" $((at + first + skipped)) "$last"; } | base64 -w0
    echo
  fi
}
answer() {
  echo "as-status $out_size $err_size $status"
  slice "$run.stdout" "$out_size" "$out_at" "$out_room"
  slice "$run.stderr" "$err_size" "$err_at" "$err_room"
}
if [ "$status" = - ]; then
  answer
else
  # The end is answered from a file, kept for a repeated poll. Once that is sure, the outputs, read
  # whole, are emptied (the space is free at once; rm, a process, removes them with a later batch).
  { answer; echo as-end; } > "$run.final" 2>/dev/null
  if ! print_answer; then
    answer
  elif echo "$out_at $err_at" 2>/dev/null > "$run.answered" && [ -s "$run.answered" ]; then
    : > "$run.stdout"; : > "$run.stderr"; [ ! -e "$run.stdin" ] || : > "$run.stdin"
  else
    # Not kept (a full disk): a repeated poll reads the outputs again, so they stay.
    rm -f -- "$run.answered"
  fi
fi
# The answer is what counts, not whether the last housekeeping step worked.
true`;
  return script;
}

/** Kills the command's whole session; the supervisor then records its exit status as usual. */
export function endScript(runId: string): string {
  const script = `${REAP_FUNCTION}
run=${shellQuote(runPrefix(runId))}
reap_recorded "$run.pid"
true`;
  return inSubshell(script);
}

/**
 * Kills the command's session and removes the run's files: for a run given up on this side (a
 * fault mid-run), whose output nobody will read.
 */
export function discardScript(runId: string): string {
  const script = `${REAP_FUNCTION}
run=${shellQuote(runPrefix(runId))}
# The supervisor first, with a child of its own that has not started the command yet.
reap_recorded "$run.supervisor"
reap_recorded "$run.pid"
rm -f -- "$run".*
true`;
  return inSubshell(script);
}

/**
 * Kills every run's session and removes every run's files: for a runner taking over from one that
 * died, when nothing else runs in the sandbox. Supervisors go first, with any child of theirs
 * that has not started its command yet; a child that has is on record by then. Unwrapped: meant
 * for the port's `run`.
 */
export function endAllScript(): string {
  return `${REAP_FUNCTION}
for pid_file in ${RUNS_DIR}/*.supervisor; do reap_recorded "$pid_file"; done
# Listed only now: a child may have put its pid on record while its supervisor was being ended.
for pid_file in ${RUNS_DIR}/*.pid; do reap_recorded "$pid_file"; done
rm -rf -- ${RUNS_DIR}
true`;
}

/** What a poll brought of one stream: its bytes past the offset, the middle left out. */
export interface StreamSlice {
  /** Bytes from the offset on, all kept. */
  headBytes: number;
  /** Bytes after those, left out unread. */
  skippedBytes: number;
  /** Bytes after those, up to the size the poll saw. */
  tailBytes: number;
  /** Both parts, in the answer or in gzip files (one, or one per part) to stream and join in order. */
  data: { kind: "inline"; bytes: Uint8Array } | { kind: "gzip"; paths: string[] };
}

export type PollReport =
  | { kind: "missing" }
  | {
      kind: "report";
      stdoutSize: number;
      stderrSize: number;
      /** The exit status once the command (and everything it left in its session) has ended. */
      exitCode: number | null;
      stdout: StreamSlice;
      stderr: StreamSlice;
    };

export class PollReportError extends Error {
  override readonly name = "PollReportError";
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const SLICE_LINE = /^(\d+) (\d+) (\d+) ([=@])(.*)$/;

function parseSlice(line: string | undefined): StreamSlice {
  const match = SLICE_LINE.exec(line ?? "");
  if (!match) throw new PollReportError(`Unreadable output slice from the sandbox: ${(line ?? "(none)").slice(0, 200)}`);
  const [, head, skipped, tail, kind, rest] = match;
  const slice = { headBytes: Number(head), skippedBytes: Number(skipped), tailBytes: Number(tail) };
  if (kind === "@") return { ...slice, data: { kind: "gzip", paths: `@${rest ?? ""}`.split(" ").map((path) => path.slice(1)) } };
  const bytes = decodeBase64(rest ?? "");
  if (bytes.byteLength !== slice.headBytes + slice.tailBytes) {
    throw new PollReportError(`An output slice of ${bytes.byteLength} bytes where ${slice.headBytes + slice.tailBytes} were reported`);
  }
  return { ...slice, data: { kind: "inline", bytes } };
}

/** Parses what `pollScript` (or `startScript`) printed. */
export function parsePollReport(stdout: string): PollReport {
  const lines = stdout.split("\n");
  const statusAt = lines.findIndex((line) => line.startsWith("as-status ") || line === "as-missing" || line === "as-start-failed");
  const statusLine = lines[statusAt];
  if (statusLine === "as-missing") return { kind: "missing" };
  if (statusLine === "as-start-failed" || statusLine === undefined) {
    throw new PollReportError(`The sandbox could not start the command (${statusLine ?? "no status in its answer"})`);
  }
  const [, stdoutSize, stderrSize, exit] = statusLine.split(" ");
  const sizes = [Number(stdoutSize), Number(stderrSize)];
  if (!sizes.every(Number.isSafeInteger)) throw new PollReportError(`Unreadable status from the sandbox: ${statusLine}`);
  const exitCode = exit === "-" || exit === undefined ? null : Number(exit);
  if (exitCode !== null && !Number.isSafeInteger(exitCode)) throw new PollReportError(`Unreadable exit status: ${statusLine}`);
  return {
    kind: "report",
    stdoutSize: sizes[0] ?? 0,
    stderrSize: sizes[1] ?? 0,
    exitCode,
    stdout: parseSlice(lines[statusAt + 1]),
    stderr: parseSlice(lines[statusAt + 2]),
  };
}
