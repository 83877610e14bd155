import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
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
 * The Kubernetes manifests in deploy/k8s: each object against the Kubernetes API's schema (the
 * `kubernetes-models` package: validators generated from Kubernetes' OpenAPI document), then
 * what the service needs from them, across files (probes, drain timing, budget, references).
 */

const MANIFESTS_DIR = 'deploy/k8s';

type Model = new (data: never) => { validate(): void };
const SCHEMAS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
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

function loadManifests(): Manifest[] {
  return readdirSync(MANIFESTS_DIR)
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(MANIFESTS_DIR, file), 'utf8')).map((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map(String).join('; ')}`);
        return { file, object: document.toJS() as Manifest['object'] };
      }),
    );
}

const manifests = loadManifests();

function only<T>(kind: string): T {
  const found = manifests.filter((manifest) => manifest.object.kind === kind);
  expect(found, `one ${kind} in ${MANIFESTS_DIR}`).toHaveLength(1);
  return structuredClone(found[0]!.object) as T;
}

describe('deploy/k8s against the Kubernetes API schemas', () => {
  it('holds the objects the service needs', () => {
    expect(manifests.map(({ object }) => object.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'PodDisruptionBudget', 'Secret', 'Service'],
    );
  });

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

  it('runs one process per pod and leaves the replica count to the autoscaler', () => {
    expect(config['WEB_CONCURRENCY']).toBe('1');
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

  it('fits the connection budget at the most replicas: PostgreSQL’s default 100 connections, 3 reserved', () => {
    const maxReplicas = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler').spec!.maxReplicas;
    // The supervisor checks the same sum, but only for its own pod (README: the connection budget).
    const connections = maxReplicas * Number(config['WEB_CONCURRENCY']) * Number(config['DB_POOL_MAX']) + 5;
    expect(connections).toBeLessThanOrEqual(100 - 3);
  });
});

// ---- the Dockerfile's side of the contract ----

function dockerfileValue(instruction: string): string {
  const line = readFileSync('Dockerfile', 'utf8').split('\n').findLast((candidate) => candidate.startsWith(`${instruction} `));
  if (!line) throw new Error(`no ${instruction} in the Dockerfile`);
  return line.slice(instruction.length + 1).trim();
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

function withMetricType(autoscaler: IHorizontalPodAutoscaler): unknown {
  delete (autoscaler.spec!.metrics![0] as { type?: string }).type;
  return autoscaler;
}
