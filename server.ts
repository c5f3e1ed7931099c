// Vercel's zero-config Hono entry for this repository's example app (examples/vercel.ts). Vercel
// serves the default export of the first of app, index, server, src/app, src/index, src/server
// (.ts, .js, ...) that imports "hono", so no api/ directory, rewrite or handle() is needed.
import type { Hono } from "hono";
import app from "./examples/vercel.js";

/** What Vercel's Hono runtime calls for every request: the app's own fetch, with the request. */
type VercelEntry = { fetch(request: Request): ReturnType<Hono["fetch"]> };

export default app satisfies VercelEntry;
