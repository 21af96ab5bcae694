// Where a Worker's script is. From source it sits beside the module that
// starts it; in the compiled binary build.ts bundles it (WORKER_ENTRYPOINTS)
// at /$bunfs/root/<its path under src/, as .js>, while import.meta.url still
// names the source file, which a user's machine does not have.
import { BUNDLE_ROOT, isCompiled } from "../../compiled.ts";

/** `srcPath`: the script's path under src/ (`collectors/kernel/kmsg-watch-worker.ts`); `beside`: the same file relative to the caller's import.meta.url. */
export function workerScript(srcPath: string, beside: URL): string {
  return isCompiled() ? `${BUNDLE_ROOT}/${srcPath.replace(/\.ts$/, ".js")}` : beside.href;
}
