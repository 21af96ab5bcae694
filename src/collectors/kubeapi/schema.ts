import * as v from "valibot";
import { bool, duration, integer, nonEmptyString, strictObject, text } from "../../config/kit.ts";
import { isHttpUrl, maxResponseBytesSchema } from "../common/k8s-client.ts";
import { SERVICE_ACCOUNT_DIR } from "../kubelet/schema.ts";
import { nodeNameSchema } from "../common/node-name.ts";

/**
 * In a pod, Kubernetes sets KUBERNETES_SERVICE_HOST and _PORT to the API
 * server's service address (as client-go's in-cluster config reads them);
 * elsewhere the cluster DNS name is the best guess.
 */
export function defaultApiServer(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return "https://kubernetes.default.svc";
  const port = env.KUBERNETES_SERVICE_PORT || "443";
  return `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export const kubeapiConfigSchema = v.pipe(
  v.optional(
    strictObject({
      /** the API server; default from KUBERNETES_SERVICE_HOST/PORT, else https://kubernetes.default.svc */
      api_server: v.optional(text("an http(s) URL like https://kubernetes.default.svc", isHttpUrl), () => defaultApiServer()),
      /** bearer token, re-read for every request (projected tokens rotate) */
      token_file: v.optional(nonEmptyString(), `${SERVICE_ACCOUNT_DIR}/token`),
      /** CA that signed the API server's certificate */
      ca_file: v.optional(nonEmptyString(), `${SERVICE_ACCOUNT_DIR}/ca.crt`),
      /** this node: its pods and events are watched (see common/node-name.ts for the default) */
      node_name: nodeNameSchema(),
      /** also watch core/v1 Events about this node and its pods */
      events: v.optional(bool(), true),
      /** items per page of a list */
      page_size: v.optional(integer(1, 10_000), 500),
      /** how long one request (a list page) may take */
      timeout: v.optional(duration({ positive: true }), "30s"),
      /** the most one response body (or watch line) may hold; a larger one is refused and counted as a parse error */
      max_response_bytes: maxResponseBytesSchema(),
      /** the API server ends each watch after about this long and the collector starts the next */
      watch_timeout: v.optional(duration({ positive: true }), "5m"),
      /** the wait before reconnecting a watch, doubling from initial up to max while it keeps failing */
      reconnect_backoff: v.nullish(
        strictObject({
          initial: v.optional(duration({ positive: true }), "500ms"),
          max: v.optional(duration({ positive: true }), "30s"),
        }),
        {},
      ),
    }),
    {},
  ),
  v.check((c) => c.reconnect_backoff.initial.ms <= c.reconnect_backoff.max.ms, "reconnect_backoff.initial must not be longer than reconnect_backoff.max"),
);

export type KubeapiConfig = v.InferOutput<typeof kubeapiConfigSchema>;
