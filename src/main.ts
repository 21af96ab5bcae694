#!/usr/bin/env bun
// tapio-collectors entry point: see src/cli/ for the commands.
// No top-level await: the bytecode compiler of build.ts does not accept it.
import { applyRuntimeSettings } from "./runtime-settings.ts";

// First, before the agent's modules load: it may execute the agent again.
applyRuntimeSettings();
void import("./cli/main.ts").then(({ main }) => main(process.argv.slice(2))).then((code) => process.exit(code));
