// @ts-check
// The one lint and format config (`npm run lint`, part of `npm test`). Rules are
// typescript-eslint's recommended set plus formatting rules of @stylistic that the code follows;
// `npm run lint -- --fix` applies the fixable ones.
import stylistic from "@stylistic/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "**/node_modules/", "**/_generated/", "e2e/artifacts/", "**/.walkin/", ".exp/"] },
  ...tseslint.configs.recommended,
  {
    plugins: { "@stylistic": stylistic },
    rules: {
      // 180 columns of code. Long string, template and regex literals and URLs are exempt: an
      // error message reads better whole than cut into concatenated pieces.
      "@stylistic/max-len": ["error", { code: 180, tabWidth: 2, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
      "@stylistic/semi": ["error", "always"],
      "@stylistic/quotes": ["error", "double", { avoidEscape: true, allowTemplateLiterals: "always" }],
      "@stylistic/comma-dangle": [
        "error",
        // `<T,>` is how a .tsx file writes a generic arrow function.
        { arrays: "only-multiline", objects: "only-multiline", imports: "only-multiline", exports: "only-multiline", functions: "only-multiline", enums: "only-multiline", tuples: "only-multiline", generics: "ignore" },
      ],
      "@stylistic/indent": ["error", 2, { SwitchCase: 1, ignoredNodes: ["TemplateLiteral *", "TSUnionType", "TSIntersectionType", "ConditionalExpression *", "TSConditionalType", "TSConditionalType *"] }],
      "@stylistic/no-trailing-spaces": "error",
      "@stylistic/eol-last": "error",
      "@stylistic/no-multiple-empty-lines": ["error", { max: 2, maxBOF: 0, maxEOF: 1 }],
      "@stylistic/brace-style": ["error", "1tbs", { allowSingleLine: true }],
      "@stylistic/arrow-parens": ["error", "always"],
      "@stylistic/keyword-spacing": "error",
      "@stylistic/space-infix-ops": "error",
      // `any` is used at typed boundaries (builders, validators) on purpose.
      "@typescript-eslint/no-explicit-any": "off",
      // `{}` is the empty-args type of function references.
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
      "@typescript-eslint/no-unused-expressions": ["error", { allowTernary: true, allowShortCircuit: true }],
      // The engine hands itself to a host interface under the name `engine`.
      "@typescript-eslint/no-this-alias": ["error", { allowedNames: ["engine"] }],
      // `let stop; … stop = subscribe(() => stop?.())`: read in a callback before it is assigned.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Type tests declare values only to take their types, and state expectations as expressions.
    files: ["**/*.test-d.ts"],
    rules: { "@typescript-eslint/no-unused-vars": "off", "@typescript-eslint/no-unused-expressions": "off" },
  },
);
