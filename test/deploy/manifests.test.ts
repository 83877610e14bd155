import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job, type IJob } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret, type ISecret } from 'kubernetes-models/v1/Secret';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

/**
 * The Kubernetes manifests in deploy/k8s: the kustomization that `kubectl apply -k deploy/k8s`
 * applies, each object against the Kubernetes API's schema (the `kubernetes-models` packages:
 * validators generated from Kubernetes' OpenAPI document and the Prometheus Operator's CRDs), then
 * what the service needs from them, across files (probes, drain timing, budget, references, scraping).
 */

const MANIFESTS_DIR = 'deploy/k8s';
const MONITORING_DIR = path.join(MANIFESTS_DIR, 'monitoring');
const KUSTOMIZATION = 'kustomization.yaml';
/** Shows the Secret the service reads; never applied, so a real one is never overwritten. */
const EXAMPLE_SECRET = 'secret.example.yaml';

type Model = new (data: never) => { validate(): void };
const SCHEMAS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

/** What the Kubernetes API schema finds wrong with an object: nothing when it is valid. */
function schemaErrors(object: unknown): string | undefined {
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  const Schema = SCHEMAS[`${String(apiVersion)}/${String(kind)}`];
  if (!Schema) return `no schema for apiVersion ${String(apiVersion)}, kind ${String(kind)}`;
  try {
    new Schema(object as never).validate();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

interface Manifest {
  file: string;
  object: { apiVersion: string; kind: string; metadata: { name: string } };
}

function readDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map(String).join('; ')}`);
    return document.toJS() as unknown;
  });
}

function loadManifests(dir: string, files: string[]): Manifest[] {
  return files.flatMap((file) => readDocuments(path.join(dir, file)).map((object) => ({ file: path.join(dir, file), object: object as Manifest['object'] })));
}

/** The YAML files of a folder (not its subfolders), but its kustomization. */
function yamlFiles(dir: string): string[] {
  return readdirSync(dir).filter((file) => file.endsWith('.yaml') && file !== KUSTOMIZATION).sort();
}

// ---- the kustomizations ----
// No well-kept npm package renders a kustomization (kustomize is Go, inside kubectl), so this
// checks what these two use: which files they list, and that nothing else is in them.

interface Kustomization {
  apiVersion?: unknown;
  kind?: unknown;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  [field: string]: unknown;
}

interface KustomizationRule {
  kind: 'Kustomization' | 'Component';
  apiVersion: string;
  /** The fields it may have: kustomize ignores none silently, but a typo here would drop resources. */
  fields: string[];
  resources: string[];
}

function kustomizationErrors(kustomization: Kustomization, rule: KustomizationRule): string[] {
  const errors: string[] = [];
  if (kustomization.apiVersion !== rule.apiVersion || kustomization.kind !== rule.kind) {
    errors.push(`expected ${rule.apiVersion} ${rule.kind}, got ${String(kustomization.apiVersion)} ${String(kustomization.kind)}`);
  }
  const unknown = Object.keys(kustomization).filter((field) => !rule.fields.includes(field));
  if (unknown.length > 0) errors.push(`unexpected fields: ${unknown.join(', ')}`);
  const listed = kustomization.resources ?? [];
  const missing = rule.resources.filter((file) => !listed.includes(file));
  const extra = listed.filter((file) => !rule.resources.includes(file));
  if (missing.length > 0) errors.push(`does not list ${missing.join(', ')}`);
  if (extra.length > 0) errors.push(`lists ${extra.join(', ')}, which it must not`);
  return errors;
}

const kustomization = readDocuments(path.join(MANIFESTS_DIR, KUSTOMIZATION))[0] as Kustomization;
const monitoringComponent = readDocuments(path.join(MONITORING_DIR, KUSTOMIZATION))[0] as Kustomization;
const DEFAULT_RULE: KustomizationRule = {
  kind: 'Kustomization',
  apiVersion: 'kustomize.config.k8s.io/v1beta1',
  fields: ['apiVersion', 'kind', 'resources', 'images'],
  // Every manifest beside it but the example Secret.
  resources: yamlFiles(MANIFESTS_DIR).filter((file) => file !== EXAMPLE_SECRET),
};
const MONITORING_RULE: KustomizationRule = {
  kind: 'Component',
  apiVersion: 'kustomize.config.k8s.io/v1alpha1',
  fields: ['apiVersion', 'kind', 'resources'],
  resources: yamlFiles(MONITORING_DIR),
};

/** What `kubectl apply -k deploy/k8s` applies. */
const deployed = loadManifests(MANIFESTS_DIR, kustomization.resources ?? []);
const exampleSecret = loadManifests(MANIFESTS_DIR, [EXAMPLE_SECRET]);
const monitoring = loadManifests(MONITORING_DIR, monitoringComponent.resources ?? []);
const manifests = [...deployed, ...exampleSecret, ...monitoring];

function only<T>(kind: string): T {
  const found = manifests.filter((manifest) => manifest.object.kind === kind);
  expect(found, `one ${kind} in ${MANIFESTS_DIR}`).toHaveLength(1);
  return structuredClone(found[0]!.object) as T;
}

describe('deploy/k8s/kustomization.yaml: kubectl apply -k deploy/k8s', () => {
  it('lists every manifest in deploy/k8s but the example Secret, and nothing else', () => {
    expect(kustomizationErrors(kustomization, DEFAULT_RULE)).toEqual([]);
    expect(DEFAULT_RULE.resources).not.toContain(EXAMPLE_SECRET);
    expect(deployed.map(({ object }) => object.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'PodDisruptionBudget', 'Service'],
    );
  });

  it('leaves the ServiceMonitor to the optional monitoring component', () => {
    expect(kustomizationErrors(monitoringComponent, MONITORING_RULE)).toEqual([]);
    expect(monitoring.map(({ object }) => object.kind)).toEqual(['ServiceMonitor']);
  });

  it('sets the image of every container it deploys, in one place', () => {
    const images = deployed.flatMap(({ object }) => (object as IDeployment | IJob).spec?.template?.spec?.containers.map((container) => container.image) ?? []);
    expect(images).toHaveLength(2);
    expect(kustomization.images).toHaveLength(1);
    const { name, ...replacement } = kustomization.images![0]!;
    // kustomize replaces an image whose name (the part before the tag or digest) matches.
    for (const image of images) expect(image!.replace(/[:@][^/]*$/, '')).toBe(name);
    expect(Object.keys(replacement).filter((field) => ['newName', 'newTag', 'digest'].includes(field))).not.toEqual([]);
  });

  // The proof that the check above can fail: each of these breaks the real kustomization.
  const brokenKustomizations: [string, () => Kustomization, string][] = [
    ['the example Secret listed', () => ({ ...kustomization, resources: [...kustomization.resources!, EXAMPLE_SECRET] }), `lists ${EXAMPLE_SECRET}, which it must not`],
    ['a manifest left out', () => ({ ...kustomization, resources: kustomization.resources!.filter((file) => file !== 'pdb.yaml') }), 'does not list pdb.yaml'],
    ['a misspelt field', () => ({ ...kustomization, resource: kustomization.resources }), 'unexpected fields: resource'],
    ['the ServiceMonitor pulled into the defaults', () => ({ ...kustomization, components: ['monitoring'] }), 'unexpected fields: components'],
    ['a Component instead of a Kustomization', () => ({ ...kustomization, kind: 'Component' }), 'expected kustomize.config.k8s.io/v1beta1 Kustomization, got kustomize.config.k8s.io/v1beta1 Component'],
  ];
  it.each(brokenKustomizations)('rejects %s', (_, make, error) => {
    expect(kustomizationErrors(make(), DEFAULT_RULE)).toContain(error);
  });
});

describe('deploy/k8s against the Kubernetes API schemas', () => {
  it.each(manifests.map((manifest) => [`${manifest.file}: ${manifest.object.kind}`, manifest] as const))('%s is valid', (_, { object }) => {
    expect(schemaErrors(object)).toBeUndefined();
  });

  // The proof that the check above can fail: each of these breaks a real manifest.
  const broken: [string, () => unknown, RegExp][] = [
    ['replicas that is not a number', () => ({ ...only<IDeployment>('Deployment'), spec: { ...only<IDeployment>('Deployment').spec!, replicas: 'two' } }), /replicas must be integer/],
    ['a Deployment without a selector', () => withoutSelector(only<IDeployment>('Deployment')), /required property 'selector'|required property selector/],
    ['a probe port that is neither a number nor a name', () => withProbePort(only<IDeployment>('Deployment'), true), /port must be/],
    ['a Service port given as text', () => withServicePort(only<IService>('Service'), 'eighty'), /port must be integer/],
    ['an HPA metric without its type', () => withMetricType(only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler')), /required property 'type'|required property type/],
    ['a Job without a pod template', () => ({ ...only<IJob>('Job'), spec: {} }), /required property 'template'|required property template/],
    ['a pod annotation that is not text', () => withScrapeAnnotation(only<IDeployment>('Deployment'), true), /prometheus\.io~1scrape must be string/],
    ['a ServiceMonitor without a selector', () => ({ ...only<IServiceMonitor>('ServiceMonitor'), spec: { endpoints: only<IServiceMonitor>('ServiceMonitor').spec.endpoints } }), /required property 'selector'|required property selector/],
    ['a ServiceMonitor endpoint port given as a number', () => withMonitorPort(only<IServiceMonitor>('ServiceMonitor'), 8000), /port must be string/],
    ['a ServiceMonitor interval in words', () => withMonitorInterval(only<IServiceMonitor>('ServiceMonitor'), '15 seconds'), /interval must match pattern/],
    ['an unknown kind', () => ({ ...only<IDeployment>('Deployment'), kind: 'Deploymnet' }), /no schema for apiVersion apps\/v1, kind Deploymnet/],
  ];
  it.each(broken)('rejects %s', (_, make, message) => {
    expect(schemaErrors(make())).toMatch(message);
  });
});

describe('deploy/k8s: what the service needs', () => {
  const deployment = only<IDeployment>('Deployment');
  const pod = deployment.spec!.template.spec!;
  const container = pod.containers[0]!;
  const config = only<IConfigMap>('ConfigMap').data!;

  it('probes readiness on /readyz and liveness on /healthz, on a declared port', () => {
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.startupProbe?.httpGet?.path).toBe('/healthz');
    const portNames = container.ports!.map((port) => port.name);
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(portNames).toContain(probe!.httpGet!.port);
    }
    expect(container.ports).toContainEqual({ name: 'http', containerPort: exposedPort() });
  });

  it('runs one process per pod (no supervisor beside it) and leaves the replica count to the autoscaler', () => {
    expect(config['SINGLE_PROCESS']).toBe('true');
    // The supervisor's worker count would mean nothing there, and mislead.
    expect(config['WEB_CONCURRENCY']).toBeUndefined();
    expect(imageEnvironment()['SINGLE_PROCESS']).toBe('true');
    expect(imageEnvironment()['WEB_CONCURRENCY']).toBeUndefined();
    expect(deployment.spec!.replicas).toBeUndefined();
  });

  it('lets a pod drain: a preStop pause, then GRACEFUL_TIMEOUT, both within the grace period', () => {
    const command = container.lifecycle?.preStop?.exec?.command ?? [];
    expect(command[0]).toBe('sleep');
    const pause = Number(command[1]);
    expect(pause).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pause + Number(config['GRACEFUL_TIMEOUT']));
  });

  it('runs as the image’s non-root user on a read-only root, with resource requests and limits', () => {
    for (const template of [pod, only<IJob>('Job').spec!.template.spec!]) {
      expect(template.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: imageUser() });
      expect(template.containers[0]!.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      const { requests, limits } = template.containers[0]!.resources!;
      expect(requests).toHaveProperty('cpu');
      expect(requests).toHaveProperty('memory');
      expect(limits).toHaveProperty('memory');
    }
  });

  it('gets its settings from the ConfigMap and its database URLs from the Secret', () => {
    const secret = only<ISecret>('Secret');
    const keys = Object.keys(secret.stringData ?? {});
    for (const template of [pod, only<IJob>('Job').spec!.template.spec!]) {
      const { envFrom, env } = template.containers[0]!;
      expect(envFrom).toEqual([{ configMapRef: { name: only<IConfigMap>('ConfigMap').metadata!.name } }]);
      const databaseUrl = env!.find((variable) => variable.name === 'DATABASE_URL')!.valueFrom!.secretKeyRef!;
      expect(databaseUrl.name).toBe(secret.metadata!.name);
      expect(keys).toContain(databaseUrl.key);
    }
    // The Secret in the repository is an example: a real credential must never be committed here.
    for (const value of Object.values(secret.stringData ?? {})) expect(value).toContain('CHANGE-ME');
    expect(secret.data).toBeUndefined();
  });

  it('migrates with a one-shot Job of the same image, straight to PostgreSQL', () => {
    const job = only<IJob>('Job').spec!.template.spec!;
    expect(job.restartPolicy).toBe('Never');
    expect(job.containers[0]!.image).toBe(container.image);
    expect(job.containers[0]!.command).toEqual(['node', 'dist/db/cli.js', 'migrate']);
    const url = job.containers[0]!.env!.find((variable) => variable.name === 'DATABASE_URL')!.valueFrom!.secretKeyRef!.key;
    expect(url).toBe('MIGRATION_DATABASE_URL');
  });

  it('routes the Service, the PodDisruptionBudget and the autoscaler to the Deployment', () => {
    const labels = deployment.spec!.template.metadata!.labels!;
    expect(deployment.spec!.selector.matchLabels).toEqual(labels);
    const service = only<IService>('Service').spec!;
    expect(labels).toMatchObject(service.selector!);
    expect(container.ports!.map((port) => port.name)).toContain(service.ports![0]!.targetPort);
    expect(labels).toMatchObject(only<IPodDisruptionBudget>('PodDisruptionBudget').spec!.selector!.matchLabels!);
    const autoscaler = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler').spec!;
    expect(autoscaler.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name });
    expect(autoscaler.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('lets Prometheus find every pod: scrape annotations on the pod template, a ServiceMonitor on the Service', () => {
    const annotations = deployment.spec!.template.metadata!.annotations;
    expect(annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(exposedPort()), 'prometheus.io/path': '/metrics' });
    const service = only<IService>('Service');
    const monitor = only<IServiceMonitor>('ServiceMonitor').spec;
    expect(service.metadata!.labels).toMatchObject(monitor.selector.matchLabels!);
    expect(monitor.endpoints).toHaveLength(1);
    const [endpoint] = monitor.endpoints;
    // A ServiceMonitor names the Service's port; the Service routes it to the pods' port.
    expect(service.spec!.ports!.map((port) => port.name)).toContain(endpoint!.port);
    expect(endpoint!.path).toBe('/metrics');
    // Prometheus refuses a scrape timeout longer than the interval.
    expect(seconds(endpoint!.scrapeTimeout!)).toBeLessThan(seconds(endpoint!.interval!));
  });

  it('fits the connection budget at the most replicas: PostgreSQL’s default 100 connections, 3 reserved', () => {
    const maxReplicas = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler').spec!.maxReplicas;
    // The supervisor checks the same sum, but only for its own pod (README: the connection budget).
    const connections = maxReplicas * Number(config['DB_POOL_MAX']) + 5;
    expect(connections).toBeLessThanOrEqual(100 - 3);
  });
});

// ---- the Dockerfile's side of the contract ----

function dockerfileValue(instruction: string): string {
  const line = readFileSync('Dockerfile', 'utf8').split('\n').findLast((candidate) => candidate.startsWith(`${instruction} `));
  if (!line) throw new Error(`no ${instruction} in the Dockerfile`);
  return line.slice(instruction.length + 1).trim();
}

/** The variables of the runtime stage's ENV instruction (the last one), continued lines included. */
function imageEnvironment(): Record<string, string> {
  const text = readFileSync('Dockerfile', 'utf8');
  const instruction = [...text.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)].at(-1)?.[1];
  if (!instruction) throw new Error('no ENV in the Dockerfile');
  return Object.fromEntries(
    instruction
      .replaceAll('\\\n', ' ')
      .split(/\s+/)
      .filter(Boolean)
      .map((pair) => pair.split('=', 2) as [string, string]),
  );
}

function imageUser(): number {
  return Number(dockerfileValue('USER').split(':')[0]);
}

function exposedPort(): number {
  return Number(dockerfileValue('EXPOSE'));
}

// ---- broken variants ----

function withoutSelector(deployment: IDeployment): unknown {
  delete (deployment.spec as { selector?: unknown }).selector;
  return deployment;
}

function withProbePort(deployment: IDeployment, port: unknown): unknown {
  deployment.spec!.template.spec!.containers[0]!.readinessProbe!.httpGet!.port = port as number;
  return deployment;
}

function withServicePort(service: IService, port: unknown): unknown {
  service.spec!.ports![0]!.port = port as number;
  return service;
}

function withScrapeAnnotation(deployment: IDeployment, value: unknown): unknown {
  deployment.spec!.template.metadata!.annotations!['prometheus.io/scrape'] = value as string;
  return deployment;
}

function withMonitorPort(monitor: IServiceMonitor, port: unknown): unknown {
  monitor.spec.endpoints[0]!.port = port as string;
  return monitor;
}

function withMonitorInterval(monitor: IServiceMonitor, interval: string): unknown {
  monitor.spec.endpoints[0]!.interval = interval;
  return monitor;
}

/** A Prometheus duration in whole seconds ("15s"), the only form these manifests use. */
function seconds(duration: string): number {
  const match = /^(\d+)s$/.exec(duration);
  if (!match) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(match[1]);
}

function withMetricType(autoscaler: IHorizontalPodAutoscaler): unknown {
  delete (autoscaler.spec!.metrics![0] as { type?: string }).type;
  return autoscaler;
}
