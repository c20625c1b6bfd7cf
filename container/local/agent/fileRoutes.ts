/**
 * The file routes of the container API. Relative paths resolve against the session's cwd; answers
 * echo the path as the client sent it, like the real container.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AgentContext, RouteHandler } from "./context.ts";
import { deleteSandboxFile, makeSandboxDirectory, moveSandboxPath, readSandboxFile, sandboxPathExists, writeSandboxFile } from "./files.ts";
import { readJsonBody, sendJson, timestamp } from "./http.ts";
import { listSandboxFiles } from "./listFiles.ts";
import { streamSandboxFile } from "./readStream.ts";
import { ListFilesRequest, MkdirRequest, MoveRequest, PathRequest, ReadFileRequest, RenameRequest, WriteFileRequest } from "./schemas.ts";

const handleWrite: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, WriteFileRequest);
  await writeSandboxFile(sessions.resolvePath(body.sessionId, body.path), body.path, body.content, body.encoding);
  sendJson(res, 200, { success: true, path: body.path, timestamp: timestamp() });
};

const handleRead: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, ReadFileRequest);
  const { content, metadata } = await readSandboxFile(sessions.resolvePath(body.sessionId, body.path), body.path, body.encoding);
  sendJson(res, 200, { success: true, path: body.path, content, timestamp: timestamp(), ...metadata });
};

const handleReadStream: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, PathRequest);
  await streamSandboxFile(res, sessions.resolvePath(body.sessionId, body.path), body.path);
};

const handleDelete: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, PathRequest);
  await deleteSandboxFile(sessions.resolvePath(body.sessionId, body.path), body.path);
  sendJson(res, 200, { success: true, path: body.path, timestamp: timestamp() });
};

async function move(res: ServerResponse, context: AgentContext, sessionId: string | undefined, from: string, to: string): Promise<void> {
  await moveSandboxPath(context.sessions.resolvePath(sessionId, from), context.sessions.resolvePath(sessionId, to), from);
  sendJson(res, 200, { success: true, path: from, newPath: to, timestamp: timestamp() });
}

const handleRename: RouteHandler = async (req: IncomingMessage, res, context) => {
  const body = await readJsonBody(req, RenameRequest);
  await move(res, context, body.sessionId, body.oldPath, body.newPath);
};

const handleMove: RouteHandler = async (req, res, context) => {
  const body = await readJsonBody(req, MoveRequest);
  await move(res, context, body.sessionId, body.sourcePath, body.destinationPath);
};

const handleMkdir: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, MkdirRequest);
  const recursive = body.recursive ?? false;
  await makeSandboxDirectory(sessions.resolvePath(body.sessionId, body.path), body.path, recursive);
  sendJson(res, 200, { success: true, path: body.path, recursive, timestamp: timestamp() });
};

const handleExists: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, PathRequest);
  const exists = await sandboxPathExists(sessions.resolvePath(body.sessionId, body.path));
  sendJson(res, 200, { success: true, path: body.path, exists, timestamp: timestamp() });
};

const handleListFiles: RouteHandler = async (req, res, { sessions }) => {
  const body = await readJsonBody(req, ListFilesRequest);
  const files = await listSandboxFiles(sessions.resolvePath(body.sessionId, body.path), body.path, body.options ?? {});
  sendJson(res, 200, { success: true, path: body.path, files, count: files.length, timestamp: timestamp() });
};

export const fileRoutes: Record<string, RouteHandler> = {
  "POST /api/write": handleWrite,
  "POST /api/read": handleRead,
  "POST /api/read/stream": handleReadStream,
  "POST /api/delete": handleDelete,
  "POST /api/rename": handleRename,
  "POST /api/move": handleMove,
  "POST /api/mkdir": handleMkdir,
  "POST /api/exists": handleExists,
  "POST /api/list-files": handleListFiles,
};
