/** `walkin/auth/providers/ConvexCredentials`: sign-in by the app's own `authorize` (see ../convexCredentials.ts). Named and default export, as Convex Auth's. */
import { ConvexCredentials } from "../convexCredentials.js";

export { ConvexCredentials, type ConvexCredentialsConfig } from "../convexCredentials.js";
export default ConvexCredentials;
