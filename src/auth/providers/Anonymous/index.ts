/** `walkin/auth/providers/Anonymous`: anonymous sign-in (see ../anonymous.ts). */
export { Anonymous, type AnonymousOptions } from "../anonymous.js";
