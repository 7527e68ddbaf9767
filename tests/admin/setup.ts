/**
 * Loads every Convex module the harness's backend runs before a file's tests start. The bridge
 * checks each call against the public functions of all of them, so the first view rendered would
 * otherwise wait for the whole of convex/ to be transformed and imported: seconds on a busy machine,
 * counted against testing-library's one-second wait for the view's first answer.
 */
import { modules } from "../harness";

await Promise.all(Object.values(modules).map((load) => load()));
