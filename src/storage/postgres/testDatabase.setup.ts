/** Vitest global setup of the "postgres" project: the run's own database (see testDatabase.ts). */
import { setupRunDatabase } from "./testDatabase.js";

export default async function setup(): Promise<() => Promise<void>> {
  return setupRunDatabase();
}
