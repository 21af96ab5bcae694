#!/usr/bin/env bun
// tapio-collectors entry point: see src/cli/ for the commands.
// No top-level await: the bytecode compiler of build.ts does not accept it.
import { main } from "./cli/main.ts";

void main(process.argv.slice(2)).then((code) => process.exit(code));
