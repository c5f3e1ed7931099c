// Vercel's zero-config Hono entry for this repository's example app (examples/vercel.ts). Vercel
// serves the default export of the first of app, index, server, src/app, src/index, src/server
// (.ts, .js, ...) that imports "hono", hence that import: no api/ directory, rewrite or handle().
import "hono";
import app from "./examples/vercel.js";

export default app;
