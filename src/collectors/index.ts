// The built-in collectors. Adding one is: a folder under src/collectors/ with
// its schema, code and README, and one line here.
import { CollectorRegistry } from "../orchestrator/registry.ts";
import { syntheticFactory } from "./synthetic/index.ts";
import { kubeletFactory } from "./kubelet/index.ts";
import { kubeapiFactory } from "./kubeapi/index.ts";
import { processFactory } from "./process/index.ts";
import { networkFactory } from "./network/index.ts";
import { dnsFactory } from "./dns/index.ts";
import { kernelFactory } from "./kernel/index.ts";
import { memoryFactory } from "./memory/index.ts";
import { execFactory } from "./exec/index.ts";
import { ingestFactory } from "./ingest/index.ts";

export function builtinRegistry(): CollectorRegistry {
  return new CollectorRegistry()
    .register(syntheticFactory)
    .register(kubeletFactory)
    .register(kubeapiFactory)
    .register(processFactory)
    .register(networkFactory)
    .register(dnsFactory)
    .register(kernelFactory)
    .register(memoryFactory)
    .register(execFactory)
    .register(ingestFactory);
}
