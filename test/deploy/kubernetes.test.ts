/**
 * The Kubernetes and Prometheus-operator objects we ship (docs/deploy/kubernetes/) are checked
 * against their schemas, strictly (no field the schema does not know), and against each
 * other: the ServiceMonitor finds the Service, the Service finds the daemon's pods and port,
 * the PrometheusRule carries exactly the rules file's groups, and the scrape-config snippet
 * passes `promtool check config` with the rules and keeps the daemon's container port.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { requireBinary } from '../helpers/binaries';
import { validateManifest } from '../helpers/k8s';

const ROOT = join(__dirname, '..', '..');
const K8S = join(ROOT, 'docs', 'deploy', 'kubernetes');
const SCRAPE_SNIPPET = 'prometheus-scrape-config.yaml';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const manifests: { file: string; doc: Obj }[] = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml') && f !== SCRAPE_SNIPPET)
  .flatMap((file) => parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => ({ file, doc: d.toJS() as Obj })));
const find = (kind: string, name?: string) => manifests.map((m) => m.doc).filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
const one = (kind: string, name?: string) => {
  const all = find(kind, name);
  expect({ kind, name, count: all.length }).toEqual({ kind, name, count: 1 });
  return all[0];
};
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

test('every object shipped validates against the Kubernetes and prometheus-operator schemas, with no unknown field', () => {
  const kinds = manifests.map((m) => m.doc.kind).sort();
  expect(kinds).toEqual(['ConfigMap', 'CronJob', 'Deployment', 'PrometheusRule', 'Service', 'ServiceMonitor']);
  for (const { file, doc } of manifests) {
    expect({ file, ...validateManifest(doc) }).toEqual({ file, kind: doc.kind, name: doc.metadata.name, errors: [], unknown: [] });
  }
});

test('the strict validation catches a misspelt field and a wrong type (it is not vacuous)', () => {
  const dep = structuredClone(one('Deployment')) as Obj;
  const c = dep.spec.template.spec.containers[1];
  c.readinesProbe = c.readinessProbe;
  delete c.readinessProbe;
  c.ports[0].containerPort = '9464';
  const p = validateManifest(dep);
  expect(p.unknown).toEqual(['/spec/template/spec/containers/1/readinesProbe']);
  expect(p.errors.join('\n')).toContain('containerPort must be integer');
  const sm = structuredClone(one('ServiceMonitor')) as Obj;
  sm.spec.endpoints[0].intervall = '30s';
  sm.spec.endpoints[0].scrapeTimeout = 'soon';
  const q = validateManifest(sm);
  expect(q.unknown).toEqual(['/spec/endpoints/0/intervall']);
  expect(q.errors.join('\n')).toMatch(/scrapeTimeout must match pattern/);
  // keep_firing_for, newer than the models, is still checked: a rule's, and only there
  const pr = structuredClone(one('PrometheusRule')) as Obj;
  pr.spec.groups[0].rules[0].keep_firing_for = 'a while';
  pr.spec.groups[0].keep_firing_for = '5m';
  const r = validateManifest(pr);
  expect(r.unknown).toEqual(['/spec/groups/0/keep_firing_for']);
  expect(r.errors.join('\n')).toContain('/spec/groups/0/rules/0/keep_firing_for must be a Prometheus duration');
});

test('ServiceMonitor → Service → the daemon container: selectors, port names and config refer to what exists', () => {
  const sm = one('ServiceMonitor');
  const svc = one('Service', 'aegis-audit');
  const dep = one('Deployment');
  expect(matches(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
  for (const e of sm.spec.endpoints) expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(e.port);
  expect(matches(svc.spec.selector, dep.spec.template.metadata.labels)).toBe(true);
  expect(matches(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels)).toBe(true);
  const daemon = (dep.spec.template.spec.containers as Obj[]).find((c) => c.name === 'aegis-audit') as Obj;
  expect(daemon.args).toEqual(['daemon', '--config', '/etc/aegis-audit/audit.yaml']);
  const metricsPort = (daemon.ports as Obj[]).find((p) => p.name === 'metrics') as Obj;
  for (const p of svc.spec.ports) expect([metricsPort.name, metricsPort.containerPort]).toContain(p.targetPort);
  expect(dep.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(metricsPort.containerPort));
  expect(daemon.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  expect(daemon.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  // volumes the containers mount exist, and the ConfigMap they name is shipped
  for (const pod of [dep.spec.template.spec, one('CronJob').spec.jobTemplate.spec.template.spec] as Obj[]) {
    const volumes = new Set((pod.volumes as Obj[]).map((v) => v.name));
    for (const c of pod.containers as Obj[]) for (const m of c.volumeMounts ?? []) expect(volumes).toContain(m.name);
    for (const v of pod.volumes as Obj[]) if (v.configMap) expect(find('ConfigMap', v.configMap.name)).toHaveLength(1);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  }
  // the daemon listens where the Service sends traffic
  const cm = one('ConfigMap', 'aegis-audit-config');
  expect((parse(cm.data['audit.yaml']) as Obj).server.listen).toBe(`0.0.0.0:${metricsPort.containerPort}`);
});

test('the PrometheusRule carries exactly the groups of alerts/aegis-compliance.rules.yml', () => {
  const rule = one('PrometheusRule');
  const file = parse(readFileSync(join(ROOT, 'alerts', 'aegis-compliance.rules.yml'), 'utf8')) as Obj;
  expect(rule.spec.groups).toEqual(file.groups);
  expect(rule.spec.groups.flatMap((g: Obj) => g.rules).length).toBeGreaterThan(30);
  // the ServiceMonitor and the PrometheusRule carry the same selector label for the operator
  expect(rule.metadata.labels.release).toBe(one('ServiceMonitor').metadata.labels.release);
});

/** What Prometheus' Kubernetes service discovery accepts (configuration docs, kubernetes_sd_config), and the meta labels role "pod" sets. */
const K8S_SD_FIELDS = new Set(['role', 'namespaces', 'selectors', 'api_server', 'kubeconfig_file', 'attach_metadata', 'basic_auth', 'authorization', 'oauth2', 'follow_redirects', 'enable_http2', 'tls_config', 'proxy_url']);
const K8S_SD_ROLES = ['node', 'service', 'pod', 'endpoints', 'endpointslice', 'ingress'];
const POD_META_LABELS = /^__meta_kubernetes_(namespace|pod_(name|ip|label_.+|labelpresent_.+|annotation_.+|annotationpresent_.+|container_(init|name|id|image|port_name|port_number|port_protocol)|ready|phase|node_name|host_ip|uid|controller_kind|controller_name))$/;

test('the scrape-config snippet passes promtool check config with the rules, and keeps the daemon container port', () => {
  requireBinary('/usr/bin/promtool', 'prometheus');
  const snippet = parse(readFileSync(join(K8S, SCRAPE_SNIPPET), 'utf8')) as { scrape_configs: Obj[] };
  expect(snippet.scrape_configs).toHaveLength(1);
  const job = snippet.scrape_configs[0];
  // Debian's Prometheus is built without Kubernetes service discovery (promtool rejects the
  // field), so that one block is checked here against the documented fields, and promtool
  // checks everything else with the block swapped for a static target.
  expect(job.kubernetes_sd_configs).toHaveLength(1);
  const sd = job.kubernetes_sd_configs[0] as Obj;
  expect(Object.keys(sd).filter((k) => !K8S_SD_FIELDS.has(k))).toEqual([]);
  expect(K8S_SD_ROLES).toContain(sd.role);
  expect(sd.role).toBe('pod');
  for (const rc of job.relabel_configs as Obj[]) for (const l of rc.source_labels ?? []) expect({ l, pod: POD_META_LABELS.test(l) }).toEqual({ l, pod: true });
  const { kubernetes_sd_configs: _sd, ...rest } = job;
  const dir = mkdtempSync(join(tmpdir(), 'aegis-scrape-'));
  try {
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '30s', evaluation_interval: '30s' },
        rule_files: [join(ROOT, 'alerts', 'aegis-compliance.rules.yml')],
        scrape_configs: [{ ...rest, static_configs: [{ targets: ['127.0.0.1:9464'] }] }],
      }),
    );
    const r = spawnSync('/usr/bin/promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The keep rule matches the daemon's container and port as the Deployment names them.
  const keep = (job.relabel_configs as Obj[]).find((x) => x.action === 'keep') as Obj;
  const dep = one('Deployment');
  const daemon = (dep.spec.template.spec.containers as Obj[]).find((c) => c.name === 'aegis-audit') as Obj;
  const values: Record<string, string> = { __meta_kubernetes_pod_container_name: daemon.name, __meta_kubernetes_pod_container_port_name: 'metrics' };
  const joined = (keep.source_labels as string[]).map((l) => values[l]).join(keep.separator ?? ';');
  expect(new RegExp(`^(?:${keep.regex})$`).test(joined)).toBe(true);
  expect(new RegExp(`^(?:${keep.regex})$`).test(['audit', 'metrics'].join(';'))).toBe(false);
});
