import { methodNotAllowed } from "../http.js";
import { openApiDocument } from "../openapi.js";
import type { CronAppPlugin } from "../plugin.js";

export type { CronAppPlugin } from "../plugin.js";

/**
 * `GET /openapi.json`, behind the bearer: the app's OpenAPI 3.1 document, listing the routes of
 * the features the app was given. Its own subpath keeps the JSON Schema conversion (valibot and
 * `@valibot/to-json-schema`) out of Workers that do not serve it.
 *
 * @example
 * createWorker(jobs, { plugins: [openApi()] })
 */
export function openApi(): CronAppPlugin {
  return Object.freeze({
    feature: "openapi",
    mount(app, { deployment, requireSecret, features }) {
      const document = openApiDocument({ schedules: deployment.dynamic !== undefined });
      if (!features.has("dashboard")) {
        const paths = document.paths as Record<string, unknown>;
        for (const path of Object.keys(paths)) {
          if (path === "/dashboard" || path.startsWith("/dashboard/")) delete paths[path];
        }
      }
      app.get("/openapi.json", requireSecret, (c) => c.json(document));
      app.all("/openapi.json", (c) => methodNotAllowed(c, "GET"));
    },
  } satisfies CronAppPlugin);
}
