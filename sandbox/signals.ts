/**
 * Names the signal that killed a command. The SDK's container reports only an exit status, taken
 * from its shell (`$?`), which gives a command killed by signal n the status 128 + n; so does
 * the local agent. A command that itself exits with such a status reads the same.
 */

/** Linux's signal numbers 1-31 (x86-64 and arm64 share them). */
const LINUX_SIGNALS = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
] as const;

const SIGNAL_EXIT_BASE = 128;

/** The signal an exit status 128 + n stands for, or null for any other status. */
export function signalFromExitCode(exitCode: number | null): string | null {
  if (exitCode === null || exitCode <= SIGNAL_EXIT_BASE) return null;
  return LINUX_SIGNALS[exitCode - SIGNAL_EXIT_BASE - 1] ?? null;
}
