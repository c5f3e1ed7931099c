// Vercel serves every function under api/; vercel.json rewrites every path here, so the example app
// answers /cron/<job> (what vercel.json's crons call), /schedules and /dispatch.
import { handle } from "hono/vercel";
import app from "../examples/vercel.js";

export default handle(app);
