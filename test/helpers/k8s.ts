/**
 * Kubernetes and prometheus-operator manifests checked against their schemas
 * (@kubernetes-models/*, generated from the OpenAPI schemas of Kubernetes and the operator's
 * CRDs), strictly: the schemas accept unknown fields (as a lenient API server would, dropping
 * them), so a misspelt `readinesProbe` would pass. The validators read every property their
 * schema knows, so the document is validated through a proxy that records what was read: any
 * field nobody read is unknown to the schema.
 */
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';

interface ModelClass {
  apiVersion: string;
  kind: string;
  prototype: { validate(): void };
}

const MODELS: ModelClass[] = [ConfigMap, Service, Secret, Deployment, CronJob, ServiceMonitor, PrometheusRule] as unknown as ModelClass[];

export interface ManifestProblems {
  kind: string;
  name: string;
  /** Schema violations, as the validator words them. */
  errors: string[];
  /** JSON pointers of fields the schema does not know. */
  unknown: string[];
}

function recording(value: unknown, path: string, read: Set<string>): unknown {
  if (!value || typeof value !== 'object') return value;
  return new Proxy(value as object, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof key !== 'string' || !Object.prototype.hasOwnProperty.call(target, key)) return v;
      const p = `${path}/${key}`;
      read.add(p);
      return recording(v, p, read);
    },
  });
}

function unread(value: unknown, path: string, read: Set<string>, out: string[]): void {
  if (!value || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    const p = `${path}/${key}`;
    if (!read.has(p)) out.push(p);
    else unread((value as Record<string, unknown>)[key], p, read, out);
  }
}

/** Validates one manifest document; throws when its apiVersion/kind is not one we know. */
export function validateManifest(doc: { apiVersion?: string; kind?: string; metadata?: { name?: string } }): ManifestProblems {
  const model = MODELS.find((m) => m.apiVersion === doc.apiVersion && m.kind === doc.kind);
  if (!model) throw new Error(`no schema for apiVersion ${doc.apiVersion} kind ${doc.kind} (known: ${MODELS.map((m) => `${m.apiVersion} ${m.kind}`).join(', ')})`);
  const read = new Set<string>(['/apiVersion', '/kind']);
  const errors: string[] = [];
  try {
    model.prototype.validate.call(recording(doc, '', read));
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  }
  const unknown: string[] = [];
  unread(doc, '', read, unknown);
  return { kind: String(doc.kind), name: String(doc.metadata?.name), errors, unknown };
}
