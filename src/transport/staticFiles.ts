/**
 * Static files for `walkin dev`/`walkin serve` of a built front end: GET and HEAD only, paths
 * confined to the directory, and the single-page-app fallback: a path that names no file and
 * has no file extension (a client-side route like /rooms/42) gets index.html; a missing
 * /assets/app.js stays a 404, so a broken build is not masked by HTML. Hidden files (a path
 * segment starting with a dot, but `.well-known`) are a 404 too.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { extname, join, resolve, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
};

/** Serves `pathname` from `root`; false if there is nothing to serve (the caller answers 404). */
export async function serveStatic(root: string, pathname: string, method: "GET" | "HEAD", response: ServerResponse): Promise<boolean> {
  const base = resolve(root);
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  if (decoded.includes("\0")) return false;
  // Hidden files and folders are never served, as static servers commonly ignore them:
  // `--static .`, or a build that copies its project's dotfiles, would otherwise hand out .env,
  // .git or .walkin (the database). `.well-known` (RFC 8615) holds files meant to be public.
  if (decoded.split("/").some((segment) => segment.startsWith(".") && segment !== ".well-known")) return false;
  const target = resolve(base, `.${decoded}`);
  if (target !== base && !target.startsWith(base + sep)) return false;
  const file = (await fileAt(target)) ?? (await fileAt(join(target, "index.html"))) ?? (extname(decoded) === "" ? await fileAt(join(base, "index.html")) : null);
  if (!file) return false;
  response.writeHead(200, {
    "Content-Type": TYPES[extname(file.path).toLowerCase()] ?? "application/octet-stream",
    "Content-Length": file.size,
    "Cache-Control": file.path.endsWith(".html") ? "no-cache" : "public, max-age=0",
  });
  if (method === "HEAD") {
    response.end();
    return true;
  }
  // pipeline, not pipe: a client that leaves mid-download (a closed tab, a skipped video)
  // destroys the file stream with the response, closing its descriptor; pipe() only paused
  // it, so every abandoned download kept a file open for as long as the server ran. A read
  // error cuts the response the same way (its headers are out already).
  await pipeline(createReadStream(file.path), response).catch(() => {});
  return true;
}

async function fileAt(path: string): Promise<{ path: string; size: number } | null> {
  try {
    const info = await stat(path);
    return info.isFile() ? { path, size: info.size } : null;
  } catch {
    return null;
  }
}
