/**
 * Execution sessions as the SDK sees them: a named cwd + env (+ default command timeout) that
 * commands and relative file paths run against. Unlike the real container there is no persistent
 * shell per session, so `cd`/`export` inside a command do not carry over to the next one.
 */
import { statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { AgentError, ErrorCode } from "./errors.ts";
import type { EnvMap, SessionCreateRequest } from "./schemas.ts";

/** The SDK's marker for "run without a session" (packages/shared/src/internal.ts). */
export const DISABLE_SESSION_TOKEN = "__DISABLE_SESSION__";
/** The session a request without `sessionId` runs in. */
export const DEFAULT_SESSION_ID = "default";

export type Session = {
  id: string;
  cwd: string;
  env: Record<string, string>;
  commandTimeoutMs: number | undefined;
};

/** Where and how one command runs, after session and request options are merged. */
export type ExecutionTarget = {
  /** The session id to report back, or undefined when sessionless. */
  sessionId: string | undefined;
  cwd: string;
  /** True when `cwd` came from the request: a missing directory then fails the command, as `cd` would. */
  cwdRequested: boolean;
  env: Record<string, string>;
  timeoutMs: number | undefined;
};

export function definedEnv(env: EnvMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env ?? {})) if (typeof value === "string") out[key] = value;
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly defaultCwd: string,
    /** The container-wide default (the real container's COMMAND_TIMEOUT_MS). */
    private readonly defaultCommandTimeoutMs: number | undefined,
  ) {}

  create(request: SessionCreateRequest & { id: string }): Session {
    if (this.sessions.has(request.id)) {
      throw new AgentError(ErrorCode.SESSION_ALREADY_EXISTS, `Session '${request.id}' already exists`, {
        sessionId: request.id,
        containerPlacementId: null,
      });
    }
    const session: Session = {
      id: request.id,
      cwd: request.cwd ?? this.defaultCwd,
      env: definedEnv(request.env),
      commandTimeoutMs: request.commandTimeoutMs,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  delete(sessionId: string): void {
    if (!this.sessions.delete(sessionId)) {
      throw new AgentError(ErrorCode.INTERNAL_ERROR, `Session '${sessionId}' not found`, { sessionId, originalError: "Session not found" });
    }
  }

  /** Like the real container, executing in an unknown session creates it. */
  private getOrCreate(sessionId: string, cwd: string | undefined): Session {
    return this.sessions.get(sessionId) ?? this.create({ id: sessionId, cwd });
  }

  /** Merges session and per-command options the way the container's session shell does. */
  target(sessionId: string | undefined, request: { cwd?: string; env?: EnvMap; timeoutMs?: number }): ExecutionTarget {
    const requestEnv = definedEnv(request.env);
    if (sessionId === DISABLE_SESSION_TOKEN) {
      return {
        sessionId: undefined,
        cwd: request.cwd ?? this.defaultCwd,
        cwdRequested: request.cwd !== undefined,
        env: requestEnv,
        timeoutMs: request.timeoutMs,
      };
    }
    const session = this.getOrCreate(sessionId ?? DEFAULT_SESSION_ID, request.cwd);
    // A session whose start directory is missing starts in $HOME, as the real session shell does.
    const sessionCwd = isDirectory(session.cwd) ? session.cwd : (process.env.HOME ?? "/");
    return {
      sessionId: session.id,
      cwd: request.cwd ?? sessionCwd,
      cwdRequested: request.cwd !== undefined,
      env: { ...session.env, ...requestEnv },
      timeoutMs: request.timeoutMs ?? session.commandTimeoutMs ?? this.defaultCommandTimeoutMs,
    };
  }

  /** Relative file paths resolve against the session's working directory. */
  resolvePath(sessionId: string | undefined, path: string): string {
    if (isAbsolute(path)) return path;
    const session = sessionId === undefined || sessionId === DISABLE_SESSION_TOKEN ? undefined : this.sessions.get(sessionId);
    return resolve(session?.cwd ?? this.defaultCwd, path);
  }
}
