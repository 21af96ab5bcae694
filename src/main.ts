#!/usr/bin/env bun
// tapio-collectors entry point: see src/cli/ for the commands.
import { main } from "./cli/main.ts";

process.exit(await main(process.argv.slice(2)));
