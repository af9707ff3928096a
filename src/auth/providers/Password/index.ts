/** `walkin/auth/providers/Password`: email and password sign-in (see ../password.ts). */
export { Password, consoleCodeSender, type CodeSender, type PasswordOptions } from "../password.js";
