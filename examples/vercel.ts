import { createVercelApp } from "../src/platforms/vercel.js";
import { exampleJobs } from "./jobs.js";

/** The example deployment on Vercel: api/index.ts serves it, vercel.json's crons call its routes. */
export default createVercelApp(exampleJobs());
