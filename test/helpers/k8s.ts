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

/**
 * Fields the operator's CRDs have that the installed models predate, each with the form its
 * value must have: a match is checked here instead of reported unknown. `keep_firing_for` is
 * in the PrometheusRule CRD since prometheus-operator 0.66 (Prometheus 2.42's field); the
 * models that have it (@kubernetes-models/prometheus-operator 5 and later) are ES modules only.
 */
const NEWER_THAN_MODELS: { kind: string; pointer: RegExp; value: RegExp; what: string }[] = [
  { kind: 'PrometheusRule', pointer: /^\/spec\/groups\/\d+\/rules\/\d+\/keep_firing_for$/, value: /^(\d+(ms|s|m|h|d|w|y))+$/, what: 'a Prometheus duration' },
];

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
  const notRead: string[] = [];
  unread(doc, '', read, notRead);
  const unknown: string[] = [];
  for (const pointer of notRead) {
    const newer = NEWER_THAN_MODELS.find((n) => n.kind === doc.kind && n.pointer.test(pointer));
    if (!newer) {
      unknown.push(pointer);
      continue;
    }
    const v = pointer.split('/').slice(1).reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);
    if (typeof v !== 'string' || !newer.value.test(v)) errors.push(`${pointer} must be ${newer.what}, got ${JSON.stringify(v)}`);
  }
  return { kind: String(doc.kind), name: String(doc.metadata?.name), errors, unknown };
}
