// Whether this process is the compiled binary (build.ts): Bun serves the
// bundled modules from its embedded file system, /$bunfs/root/.

/** Where the compiled binary's bundled files are. */
export const BUNDLE_ROOT = "/$bunfs/root";

/** True in the compiled binary, false when run from source (`bun src/main.ts`). */
export function isCompiled(): boolean {
  return Bun.main.startsWith(`${BUNDLE_ROOT}/`);
}
